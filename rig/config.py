"""Rig configuration: one TOML file per physical rig, validated on load.

A config is data, never code: it names drivers from a fixed registry (``instruments.drivers``), it
is parsed with ``tomllib`` and nothing in it is executed. Every problem is reported as one line naming
the file, the key and what was expected. See rigs/example-lab.toml for a commented example.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from instruments import fixture_map
from instruments.drivers import DRIVERS, driver_role
from instruments.modbus import ModbusAddress
from instruments.roles import Rating


class ConfigError(ValueError):
    """A config or profile is malformed; the message is one line: file: key: expected ..., got ..."""


def printable(text: object) -> str:
    """A key or file name for a one-line message: quoted when it holds newlines or control characters."""
    text = str(text)
    return text if text.isprintable() else repr(text)


@dataclass(frozen=True)
class InstrumentConfig:
    name: str
    driver: str
    role: str  # "supply" | "load" | "fixture"
    resource: str
    rating: Rating | None = None  # supplies and loads
    unit_id: int = 1  # fixture (Modbus unit id)
    timeout_s: float | None = None
    calibration_due: dt.date | None = None
    visa_options: Mapping[str, Any] = field(default_factory=dict)
    #: Optional features this rig cannot do without (driver ``OPTIONAL`` keys, e.g. "watchdog"): a unit
    #: lacking one is refused at open and by `rig check` (exit 3) instead of degrading.
    require: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathConfig:
    """A supply group and a load group that the fixture routes to the inlet as one power path."""

    name: str
    selector: int
    supplies: tuple[str, ...]
    loads: tuple[str, ...]


@dataclass(frozen=True)
class SafetyConfig:
    max_voltage: float  # V, rig-wide ceiling for any voltage setpoint
    max_current: float  # A, rig-wide ceiling for any current setpoint
    abort_temperature: float  # °C, any contact or inlet sensor: trip
    safe_voltage: float = 60.0  # V, the bus is "safe" below this
    discharge_timeout: float = 10.0  # rig s to wait for the bus to fall below safe_voltage
    contactor_timeout: float = 2.0  # rig s to wait for contactor feedback
    sample_period: float = 1.0  # rig s between samples
    heartbeat_timeout: float = 2.0  # real s: the fixture opens everything if the PC stops feeding it
    instrument_watchdog: float = 5.0  # real s: instrument I/O watchdogs, where the model has one


@dataclass(frozen=True)
class RigConfig:
    name: str
    source: str  # file path, or "<simulated bench>"
    sha256: str
    instruments: Mapping[str, InstrumentConfig]
    paths: Mapping[str, PathConfig]
    safety: SafetyConfig
    time_scale: float = 1.0  # > 1 only for a simulated bench
    simulated: bool = False  # a simulated bench (`rig sim --write-config` says so): reports mark it
    database_url_env: str | None = None  # [database] url_env: the env variable holding the lab's database URL

    @property
    def fixture(self) -> InstrumentConfig:
        return next(i for i in self.instruments.values() if i.role == "fixture")


# --- loading --------------------------------------------------------------------------------------


def load_config(path: str | Path) -> RigConfig:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rig config: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; expected a TOML rig config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path), hashlib.sha256(raw).hexdigest())


class _Reader:
    """Typed access to a TOML table that names the key in every error."""

    def __init__(self, source: str, table: Mapping[str, Any], where: str) -> None:
        self.source, self.table, self.where = source, table, where

    def fail(self, key: str, expected: str, got: Any = ...) -> ConfigError:
        key_path = f"{self.where}.{key}" if self.where else key
        suffix = "" if got is ... else f", got {got!r}"
        return ConfigError(f"{printable(self.source)}: {printable(key_path)}: expected {printable(expected)}{suffix}")

    def only(self, *allowed: str) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"no such key (allowed: {', '.join(allowed)})")

    def has(self, key: str) -> bool:
        return key in self.table

    def table_of(self, key: str, required: bool = True) -> _Reader:
        value = self.table.get(key, ... if required else {})
        if value is ...:
            raise self.fail(key, "a table")
        if not isinstance(value, Mapping):
            raise self.fail(key, "a table", value)
        return _Reader(self.source, value, f"{self.where}.{key}" if self.where else key)

    def string(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string", value if key in self.table else ...)
        return value

    def number(self, key: str, default: float | None = None, *, minimum: float = 0.0,
               exclusive: bool = True, maximum: float | None = None) -> float:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "a number")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number", value)
        bad_low = value <= minimum if exclusive else value < minimum
        # inf and 1e400 (which TOML reads as inf) are no limit at all: every number must be finite.
        if bad_low or (maximum is not None and value > maximum) or not math.isfinite(value):
            span = f"{'>' if exclusive else '>='} {minimum:g}" + (f" and <= {maximum:g}" if maximum else "")
            raise self.fail(key, f"a finite number {span}", value)
        return float(value)

    def integer(self, key: str, default: int | None = None, *, minimum: int, maximum: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(key, f"an integer from {minimum} to {maximum}", value if key in self.table else ...)
        return value

    def names(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, ...)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a non-empty list of instrument names", value if key in self.table else ...)
        return tuple(value)


def parse_config(data: Mapping[str, Any], source: str, sha256: str = "") -> RigConfig:
    top = _Reader(source, data, "")
    top.only("rig", "safety", "instruments", "paths", "database")
    rig = top.table_of("rig")
    rig.only("name", "time_scale", "simulated")
    simulated = rig.table.get("simulated", False)
    if not isinstance(simulated, bool):
        raise rig.fail("simulated", "true or false", simulated)
    safety = _parse_safety(top.table_of("safety"))
    instruments = _parse_instruments(top.table_of("instruments"))
    paths = _parse_paths(top.table_of("paths"), instruments)
    fixtures = [i.name for i in instruments.values() if i.role == "fixture"]
    if len(fixtures) != 1:
        raise top.fail("instruments", "exactly one instrument with a fixture driver", fixtures)
    return RigConfig(
        name=rig.string("name"),
        source=source,
        sha256=sha256,
        instruments=instruments,
        paths=paths,
        safety=safety,
        time_scale=rig.number("time_scale", 1.0, maximum=1e6),
        simulated=simulated,
        database_url_env=_parse_database(top.table_of("database", required=False)),
    )


# What the hardware can do with a setting, where it is less than "any finite number > 0".
# The fixture's heartbeat watchdog takes whole milliseconds up to its register's range, and 0 means
# "off": a timeout that rounds to 0 ms would switch the hardware backstop off. Below 0.1 s the PC cannot
# feed it reliably (every timeout / 4 over Modbus). Instrument I/O watchdogs take 1 to 3600 s.
HEARTBEAT_RANGE_S = (0.1, fixture_map.BY_NAME["heartbeat_timeout_ms"].write_range[1] / 1000)  # type: ignore[index]
SAFETY_RANGES: dict[str, tuple[float, float]] = {
    "heartbeat_timeout": HEARTBEAT_RANGE_S,
    "instrument_watchdog": (1.0, 3600.0),
    "abort_temperature": (0.0, 250.0),
    "safe_voltage": (0.0, 60.0),
    "discharge_timeout": (0.0, 3600.0),
    "contactor_timeout": (0.0, 60.0),
    "sample_period": (0.0, 3600.0),
}


def _parse_database(t: _Reader) -> str | None:
    """``[database] url_env = "NAME"``: the URL itself (with its password) stays out of the file."""
    t.only("url_env")
    if not t.has("url_env"):
        return None
    name = t.string("url_env")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise t.fail("url_env", "the name of an environment variable (letters, digits, _), not a URL", name)
    return name


def _parse_safety(t: _Reader) -> SafetyConfig:
    keys = SafetyConfig.__dataclass_fields__
    t.only(*keys)
    defaults = {name: f.default for name, f in keys.items()}
    values: dict[str, float] = {}
    for name in keys:
        low, high = SAFETY_RANGES.get(name, (0.0, None))  # type: ignore[arg-type]
        values[name] = t.number(name, None if defaults[name] is MISSING else defaults[name],
                                minimum=low, exclusive=low == 0.0, maximum=high)
    return SafetyConfig(**values)


def _parse_instruments(t: _Reader) -> dict[str, InstrumentConfig]:
    if not t.table:
        raise t.fail("", "at least one instrument")
    out: dict[str, InstrumentConfig] = {}
    for name in t.table:
        it = t.table_of(name)
        driver = it.string("driver")
        if driver not in DRIVERS:
            raise it.fail("driver", f"one of {', '.join(sorted(DRIVERS))}", driver)
        role = driver_role(driver)
        resource = it.string("resource")
        if role == "fixture":
            it.only("driver", "resource", "unit_id", "timeout", "calibration_due")
            try:
                ModbusAddress.parse(resource)
            except ValueError as exc:
                raise it.fail("resource", str(exc)) from None
            rating = None
        else:
            it.only("driver", "resource", "rating", "timeout", "calibration_due", "visa_options", "require")
            if resource.lower().startswith("modbus"):
                raise it.fail("resource", "a VISA resource string (TCPIP::host::port::SOCKET, ...)", resource)
            r = it.table_of("rating")
            r.only("voltage", "current", "power")
            rating = Rating(r.number("voltage"), r.number("current"), r.number("power"))
        due = it.table.get("calibration_due")
        if due is not None and not (isinstance(due, dt.date) and not isinstance(due, dt.datetime)):
            raise it.fail("calibration_due", "a TOML date such as 2027-03-01", due)
        options = it.table.get("visa_options", {})
        if not isinstance(options, Mapping) or not all(k in _VISA_OPTIONS for k in options):
            raise it.fail("visa_options", f"a table with keys among {', '.join(_VISA_OPTIONS)}", options)
        out[name] = InstrumentConfig(
            name=name,
            driver=driver,
            role=role,
            resource=resource,
            rating=rating,
            unit_id=it.integer("unit_id", 1, minimum=0, maximum=247) if role == "fixture" else 1,
            timeout_s=it.number("timeout", maximum=60.0) if it.has("timeout") else None,
            calibration_due=due,
            visa_options=dict(options),
            require=_required(it, driver),
        )
    return out


def _required(it: _Reader, driver: str) -> tuple[str, ...]:
    """``require = ["watchdog", ...]``: features the driver probes at open (only those can be checked)."""
    probed = [f.key for f in getattr(DRIVERS[driver], "OPTIONAL", ()) if f.probe is not None]
    value = it.table.get("require", [])
    allowed = f"one of {', '.join(probed)}" if probed else "nothing (this driver has no optional feature to require)"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise it.fail("require", f"a list of feature names, each {allowed}", value)
    for name in value:
        if name not in probed:
            raise it.fail("require", f"feature names, each {allowed}", name)
    return tuple(value)


_VISA_OPTIONS = ("baud_rate", "data_bits", "parity", "stop_bits", "flow_control")


def _parse_paths(t: _Reader, instruments: Mapping[str, InstrumentConfig]) -> dict[str, PathConfig]:
    if not t.table:
        raise t.fail("", "at least one power path")
    out: dict[str, PathConfig] = {}
    used: set[int] = set()
    for name in t.table:
        p = t.table_of(name)
        p.only("selector", "supplies", "loads")
        selector = p.integer("selector", minimum=1, maximum=4)
        if selector in used:
            raise p.fail("selector", "a selector no other path uses", selector)
        used.add(selector)
        groups = {}
        for key, role in (("supplies", "supply"), ("loads", "load")):
            members = p.names(key)
            for member in members:
                if member not in instruments:
                    raise p.fail(key, f"names of [instruments] entries; {member!r} is not one")
                if instruments[member].role != role:
                    raise p.fail(key, f"{role} instruments; {member!r} is a {instruments[member].role}")
            groups[key] = members
        out[name] = PathConfig(name, selector, groups["supplies"], groups["loads"])
    return out
