"""``rig check``: is every instrument there, the right model, and in calibration?

Opens each instrument concurrently, identifies it and closes it again. It changes no output.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from instruments.errors import InstrumentError, WrongInstrument
from rig.config import InstrumentConfig, RigConfig

CALIBRATION_WARNING_DAYS = 30


@dataclass(frozen=True)
class CheckRow:
    name: str
    role: str
    driver: str
    resource: str
    identity: str
    status: str  # "ok" | "wrong model" | "missing" | "calibration expired" | "calibration due soon"
    detail: str = ""

    @property
    def fatal(self) -> bool:
        return self.status in ("wrong model", "missing")


def calibration_status(cfg: InstrumentConfig, today: dt.date) -> tuple[str, str] | None:
    """("calibration expired" | "calibration due soon", detail), or None when fine or not recorded."""
    due = cfg.calibration_due
    if due is None:
        return None
    days = (due - today).days
    if days < 0:
        return "calibration expired", f"calibration was due {due.isoformat()} ({-days} days ago)"
    if days <= CALIBRATION_WARNING_DAYS:
        return "calibration due soon", f"calibration due {due.isoformat()} (in {days} days)"
    return None


def check_instrument(cfg: InstrumentConfig, today: dt.date) -> CheckRow:
    from rig.session import make_instrument

    inst = make_instrument(cfg)
    try:
        identity = inst.open()
    except WrongInstrument as exc:
        return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, "", "wrong model", str(exc))
    except InstrumentError as exc:
        return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, "", "missing", str(exc))
    finally:
        inst.close()
    status, detail = calibration_status(cfg, today) or ("ok", "")
    return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, str(identity), status, detail)


def check_rig(config: RigConfig, today: dt.date | None = None) -> list[CheckRow]:
    today = today or dt.date.today()
    with ThreadPoolExecutor(max_workers=max(1, len(config.instruments))) as pool:
        return list(pool.map(lambda c: check_instrument(c, today), config.instruments.values()))
