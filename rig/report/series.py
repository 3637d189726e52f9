"""What the samples of a run show: instruments by role, temperature columns, the temperature limit and
trip lines, and the test phases (which test the bench was in, when).

Instruments are found by their column suffixes (``<supply>.output``, ``<load>.input``,
``<fixture>.temp_dc_plus_c``...) or run.json's roles, never by fixed names, so any rig's run reads.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rig.report.run import Run

RISE_LIMIT = "endurance.temperature_rise"  # profile key of the temperature-rise limit (K above ambient)
AMBIENT = "temp_ambient_c"
TEMPERATURE_LABELS = {
    "temp_dc_plus_c": "DC+ contact",
    "temp_dc_minus_c": "DC− contact",
    "temp_inlet_1_c": "inlet sensor 1",
    "temp_inlet_2_c": "inlet sensor 2",
    AMBIENT: "ambient",
}
NO_LIMIT_LINE = (f"No limit line: the run has no ambient reading, or no {RISE_LIMIT} limit (neither measured, nor "
                 "in run.json, nor in an unchanged profile file named by run.json).")


@dataclass(frozen=True)
class Bench:
    """Instrument names found in samples.csv, by role."""

    supplies: list[str]
    loads: list[str]
    fixtures: list[str]


def bench(run: Run) -> Bench:
    """Roles from the column suffixes ``rig.sampler.columns`` writes (or run.json's instrument roles)."""
    from rig.sampler import FIXTURE_COLUMNS

    names = list(dict.fromkeys(c.rsplit(".", 1)[0] for c in run.samples.header if "." in c))
    fixture_only = set(FIXTURE_COLUMNS) - {"voltage_v", "current_a"}
    instruments = run.meta.get("instruments")
    declared = instruments if isinstance(instruments, dict) else {}

    def role(name: str) -> str:
        entry = declared.get(name)
        if isinstance(entry, dict) and entry.get("role") in ("supply", "load", "fixture"):
            return str(entry["role"])
        if run.samples.has(f"{name}.output"):
            return "supply"
        if run.samples.has(f"{name}.input"):
            return "load"
        return "fixture" if any(run.samples.has(f"{name}.{k}") for k in fixture_only) else ""

    return Bench(*([n for n in names if role(n) == r] for r in ("supply", "load", "fixture")))


def temperature_columns(run: Run) -> list[tuple[str, str]]:
    """(column, label) of every contact and inlet temperature, ambient excluded."""
    out = []
    fixtures = bench(run).fixtures
    for column in run.samples.header:
        name, _, key = column.rpartition(".")
        if name in fixtures and key.startswith("temp_") and key.endswith("_c") and key != AMBIENT:
            label = TEMPERATURE_LABELS.get(key, key.removeprefix("temp_").removesuffix("_c").replace("_", " "))
            out.append((column, label if len(fixtures) == 1 else f"{name} {label}"))
    return out


def ambient_column(run: Run) -> str | None:
    return next((f"{f}.{AMBIENT}" for f in bench(run).fixtures if run.samples.has(f"{f}.{AMBIENT}")), None)


# --- limit and trip lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemperatureLimit:
    ambient_c: float
    rise_k: float
    source: str  # where the rise limit came from, for the label

    @property
    def value_c(self) -> float:
        return self.ambient_c + self.rise_k


@dataclass(frozen=True)
class TripLevel:
    """A level at which the rig trips (run.json ``effective_limits.trip_*``)."""

    value: float
    source: str


def trip_level(run: Run, name: str) -> TripLevel | None:
    """``trip_temperature`` (°C), ``trip_voltage`` (V) or ``trip_current`` (A) as the run used it."""
    limits = run.meta.get("effective_limits")
    entry = limits.get(name) if isinstance(limits, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("value"), int | float):
        return TripLevel(float(entry["value"]), str(entry.get("source", "")))
    return None


def temperature_limit(run: Run) -> TemperatureLimit | None:
    """Ambient + the temperature-rise limit: from the run's own measurement, else run.json's
    ``limits`` table, else the profile file run.json names (if its hash still matches). The ambient is
    the median over the samples of the test that measured the rise (else over the whole run)."""
    rise = _rise_limit(run)
    column = ambient_column(run)
    if rise is None or column is None:
        return None
    high, source, test = rise
    tests = run.samples.text.get("test", [])
    values = run.samples.numbers(column)
    in_test = [v for v, t in zip(values, tests, strict=False) if t == test and math.isfinite(v)]
    ambient = _median(in_test or [v for v in values if math.isfinite(v)])
    return None if ambient is None else TemperatureLimit(ambient, high, source)


def _rise_limit(run: Run) -> tuple[float, str, str] | None:
    """(high K, source text, test) of the temperature-rise limit."""
    for r in reversed(run.results):
        if r.limit == RISE_LIMIT and r.high is not None:
            where = f"as measured by {r.test.rsplit('::', 1)[-1]}"
            return r.high, f"{RISE_LIMIT} {where}: {r.source} (confidence {r.confidence})", r.test
    limits = run.meta.get("limits")
    entry = limits.get(RISE_LIMIT) if isinstance(limits, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("high"), int | float):
        return float(entry["high"]), f"{RISE_LIMIT} from run.json: {entry.get('source', 'no source given')}", ""
    return _rise_from_profile(run)


def _rise_from_profile(run: Run) -> tuple[float, str, str] | None:
    profile = run.meta.get("profile")
    if not isinstance(profile, dict) or not profile.get("path") or not profile.get("sha256"):
        return None
    path = Path(str(profile["path"]))
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() != profile["sha256"]:
            return None  # the file changed since the run: its limits are not the run's
        from rig.profile import load_profile

        limit = load_profile(path).limits.get(RISE_LIMIT)
    except (OSError, ValueError):
        return None
    if limit is None or limit.high is None:
        return None
    return limit.high, f"{RISE_LIMIT} from profile {path.name}: {limit.source} (confidence {limit.confidence})", ""


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- time and phases --------------------------------------------------------------------------------


def time_order(run: Run) -> list[int]:
    """Sample indices by rig time: a sample taken on demand can be written after a later periodic one."""
    t = run.samples.numbers("time_s")
    return sorted((i for i in range(len(t)) if math.isfinite(t[i])), key=t.__getitem__)


@dataclass(frozen=True)
class Phase:
    test: str
    start_s: float
    end_s: float


def phases(run: Run) -> list[Phase]:
    """Stretches of rig time the bench spent in one test (samples between tests belong to none)."""
    t = run.samples.numbers("time_s")
    tests = run.samples.text.get("test", [])
    out: list[Phase] = []
    current, start, last = "", 0.0, 0.0
    for i in time_order(run):
        node = tests[i] if i < len(tests) else ""
        if node != current:
            if current:
                out.append(Phase(current, start, last))
            current, start = node, t[i]
        last = t[i]
    if current:
        out.append(Phase(current, start, last))
    return out
