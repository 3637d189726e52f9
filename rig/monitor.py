"""`rig monitor`: read every instrument without changing anything."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

from instruments.roles import Instrument
from rig.clock import Clock
from rig.config import RigConfig
from rig.errors import RigError
from rig.sampler import Sample, Sampler, row


def open_read_only(config: RigConfig) -> tuple[Sampler, dict[str, Instrument]]:
    """Open and identify each instrument without taking remote control (nothing is written)."""
    from rig.session import make_instrument

    instruments = {name: make_instrument(cfg) for name, cfg in config.instruments.items()}
    with ThreadPoolExecutor(max_workers=max(1, len(instruments))) as pool:
        errors = list(pool.map(_open_quietly, instruments.values()))
    failed = [e for e in errors if e]
    if failed:
        for inst in instruments.values():
            inst.close()
        raise RigError("; ".join(failed))
    return Sampler(instruments, Clock(1.0), 1.0, lambda s: None), instruments


def _open_quietly(inst: Instrument) -> str | None:
    from instruments.errors import InstrumentError

    try:
        inst.open(prepare=False)
        return None
    except InstrumentError as exc:
        return str(exc)


def reading_rows(sample: Sample) -> list[tuple[str, str, str]]:
    """(instrument, quantity, value) for every polled quantity, plus errors."""
    rows: list[tuple[str, str, str]] = []
    for column, value in row(sample).items():
        name, _, quantity = column.partition(".")
        text = ("open" if math.isnan(value) else f"{value:.6g}") if isinstance(value, float) else str(value)
        rows.append((name, quantity, text))
    for name, error in sample.errors.items():
        rows.append((name, "error", str(error)))
    return rows
