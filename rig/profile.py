"""Limits profiles: the numbers plans check against, held as data with their source and confidence.

The standards (SAE J3400, J1772, IEC 61851, UL 2251) are paywalled, so every figure carries where it
came from and how sure we are. A lab that holds the licensed text corrects a value in its own profile
(``--profile FILE``) without touching a plan, and every report says where each limit came from.

    [limits."cp.state_b.high_voltage"]       # a window: low and/or high
    low = 8.36
    high = 9.56
    unit = "V"
    source = "J1772 / IEC 61851-1 state B window as implemented by EVerest and OpenEVSE"
    confidence = "M"

    [parameters."endurance.max_hold"]         # a number a plan uses (test current, hold time...)
    value = 3600
    unit = "s"
    source = "lab procedure"
    confidence = "L"
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.config import ConfigError, printable

DEFAULT_PROFILE = Path(__file__).resolve().parents[1] / "test_plans" / "profiles" / "j3400.toml"
CONFIDENCE = ("H", "M-H", "M", "L", "calc")


@dataclass(frozen=True)
class Limit:
    key: str
    low: float | None
    high: float | None
    unit: str
    source: str
    confidence: str

    def verdict(self, value: float) -> bool:
        """True if ``value`` lies in the window (a NaN never does)."""
        if value != value:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} .. {self.high:g} {self.unit}"
        if self.low is not None:
            return f">= {self.low:g} {self.unit}"
        return f"<= {self.high:g} {self.unit}"


@dataclass(frozen=True)
class Parameter:
    key: str
    value: float
    unit: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    path: str
    sha256: str
    limits: Mapping[str, Limit]
    parameters: Mapping[str, Parameter]

    def limit(self, key: str) -> Limit:
        try:
            return self.limits[key]
        except KeyError:
            raise ConfigError(f"{self.path}: limits.{key}: expected this limit (a plan checks it); "
                              "add it to the profile") from None

    def parameter(self, key: str) -> Parameter:
        try:
            return self.parameters[key]
        except KeyError:
            raise ConfigError(f"{self.path}: parameters.{key}: expected this parameter (a plan uses it); "
                              "add it to the profile") from None

    def value(self, key: str) -> float:
        return self.parameter(key).value


def load_profile(path: str | Path | None = None) -> Profile:
    path = Path(path) if path else DEFAULT_PROFILE
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read limits profile: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML limits profile: {exc}") from None
    return parse_profile(data, str(path), hashlib.sha256(raw).hexdigest())


def _fail(source: str, key: str, expected: str, got: Any = ...) -> ConfigError:
    return ConfigError(f"{printable(source)}: {printable(key)}: expected {printable(expected)}"
                       + ("" if got is ... else f", got {got!r}"))


def _number(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(source, key, "a finite number", value)  # inf is no limit at all
    return float(value)


def _text(source: str, key: str, table: Mapping[str, Any], name: str) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, f"{key}.{name}", "a non-empty string", value if name in table else ...)
    return value


def _entry_common(source: str, key: str, table: Any, allowed: set[str]) -> tuple[str, str, str]:
    if not isinstance(table, Mapping):
        raise _fail(source, key, "a table", table)
    unknown = set(table) - allowed
    if unknown:
        raise _fail(source, f"{key}.{sorted(unknown)[0]}", f"no such key (allowed: {', '.join(sorted(allowed))})")
    confidence = _text(source, key, table, "confidence")
    if confidence not in CONFIDENCE:
        raise _fail(source, f"{key}.confidence", f"one of {', '.join(CONFIDENCE)}", confidence)
    unit = table.get("unit", "")
    if not isinstance(unit, str):
        raise _fail(source, f"{key}.unit", "a string (may be empty)", unit)
    return unit, _text(source, key, table, "source"), confidence


def parse_profile(data: Mapping[str, Any], source: str, sha256: str = "") -> Profile:
    unknown = set(data) - {"profile", "limits", "parameters"}
    if unknown:
        raise _fail(source, sorted(unknown)[0], "no such table (allowed: profile, limits, parameters)")
    head = data.get("profile")
    if not isinstance(head, Mapping):
        raise _fail(source, "profile", "a [profile] table with name and version")
    limits: dict[str, Limit] = {}
    raw_limits = data.get("limits", {})
    if not isinstance(raw_limits, Mapping):
        raise _fail(source, "limits", "a table of limits", raw_limits)
    for key, table in raw_limits.items():
        where = f"limits.{key}"
        unit, src, confidence = _entry_common(source, where, table, {"low", "high", "unit", "source", "confidence"})
        low = _number(source, f"{where}.low", table["low"]) if "low" in table else None
        high = _number(source, f"{where}.high", table["high"]) if "high" in table else None
        if low is None and high is None:
            raise _fail(source, where, "low and/or high")
        if low is not None and high is not None and low > high:
            raise _fail(source, where, "low <= high", (low, high))
        limits[key] = Limit(key, low, high, unit, src, confidence)
    parameters: dict[str, Parameter] = {}
    raw_parameters = data.get("parameters", {})
    if not isinstance(raw_parameters, Mapping):
        raise _fail(source, "parameters", "a table of parameters", raw_parameters)
    for key, table in raw_parameters.items():
        where = f"parameters.{key}"
        unit, src, confidence = _entry_common(source, where, table, {"value", "unit", "source", "confidence"})
        if "value" not in table:
            raise _fail(source, f"{where}.value", "a number")
        parameters[key] = Parameter(key, _number(source, f"{where}.value", table["value"]), unit, src, confidence)
    return Profile(
        name=_text(source, "profile", head, "name"),
        version=str(head.get("version", "")),
        path=source,
        sha256=sha256,
        limits=limits,
        parameters=parameters,
    )
