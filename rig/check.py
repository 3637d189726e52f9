"""``rig check``: is every instrument there, the right model, in calibration, and what can it do?

Opens each instrument concurrently, identifies it, asks which optional features its firmware has
(queries only) and closes it again. It takes no remote control and writes no setting: a refused probe
leaves only an error in the unit's queue, which the next session clears. A missing optional feature
is listed with what covers for it; one the rig config requires (``require``) makes the unit fatal.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from instruments.capabilities import Capability
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
    #: "ok" | "wrong model" | "missing" | "capability missing" | "calibration expired" | "calibration due soon"
    status: str
    detail: str = ""
    capabilities: dict[str, Capability] = field(default_factory=dict)

    @property
    def fatal(self) -> bool:
        return self.status in ("wrong model", "missing", "capability missing")

    @property
    def lacking(self) -> list[Capability]:
        return [c for c in self.capabilities.values() if c.present is False]


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
    from rig.session import lacking_required, make_instrument

    inst = make_instrument(cfg)
    try:
        identity = inst.open(prepare=False)  # read-only: no remote control, no setting written
    except WrongInstrument as exc:
        inst.close()
        return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, "", "wrong model", str(exc))
    except InstrumentError as exc:
        inst.close()
        return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, "", "missing", str(exc))
    try:
        capabilities = dict(inst.probe_capabilities())
    except InstrumentError as exc:  # it identified: a failing probe is not a missing instrument
        return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, str(identity), "capability missing",
                        f"probing optional features failed: {exc}")
    finally:
        inst.close()
    lacking = lacking_required(cfg, capabilities)
    if lacking:
        return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, str(identity), "capability missing",
                        "; ".join(lacking), capabilities)
    status, detail = calibration_status(cfg, today) or ("ok", "")
    return CheckRow(cfg.name, cfg.role, cfg.driver, cfg.resource, str(identity), status, detail, capabilities)


def check_rig(config: RigConfig, today: dt.date | None = None) -> list[CheckRow]:
    today = today or dt.date.today()
    with ThreadPoolExecutor(max_workers=max(1, len(config.instruments))) as pool:
        return list(pool.map(lambda c: check_instrument(c, today), config.instruments.values()))
