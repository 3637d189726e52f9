"""Live limits, checked on every reading as it arrives and on every whole sample.

The effective limit of each quantity is the tightest of the rig config, the DUT (tier and rated
current) and the profile; each carries its source so a trip says which limit it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from instruments.errors import InstrumentError, InstrumentFault
from instruments.roles import Bound, FixtureReading, SupplyReading
from rig.sampler import Reading, Sample


@dataclass(frozen=True)
class LiveLimits:
    max_voltage: Bound  # bus / inlet voltage (V)
    max_current: Bound  # inlet and total supply current (A)
    max_temperature: Bound  # any contact or inlet sensor (°C)
    #: While a plan holds a current, the inlet current must stay within this fraction of what was set.
    current_band: Bound = field(default_factory=lambda: Bound(0.2, "default band 20 %"))
    #: Rig seconds after a load comes on before the band applies (slew and settling of the loads).
    current_settle_s: float = 2.0


def tightest(*bounds: Bound | None) -> Bound:
    return min((b for b in bounds if b is not None), key=lambda b: b.value)


def chain_reason(fixture: FixtureReading) -> str | None:
    """Why the fixture's hardware safety chain is broken, or None."""
    if fixture.estop_pressed:
        return "E-stop pressed"
    if not fixture.interlock_closed:
        return "interlock loop open"
    if fixture.heartbeat_tripped:
        return "fixture heartbeat watchdog tripped"
    if not fixture.safety_chain_ok:
        return "fixture safety chain not OK (trip latched)"
    return None


# What a trip names first when several limits are crossed at once, most fundamental first.
_FAULT, _CHAIN, _PROTECTION, _SENSOR_OPEN, _TEMPERATURE, _VOLTAGE, _CURRENT = range(7)


def reading_trip_reason(result: Reading | InstrumentError, limits: LiveLimits, name: str = "") -> str | None:
    """Why this one reading (or the error in its place) must end in the safe state, or None: the
    limits that need no other reading, checked by the sampler as each reading arrives."""
    reasons = _reading_reasons(name, result, limits)
    return min(reasons, key=lambda r: r[0])[1] if reasons else None


def trip_reason(sample: Sample, limits: LiveLimits) -> str | None:
    """Why this sample must end in the safe state, or None. One line, naming what and which limit.

    Every per-reading check (``reading_trip_reason``) plus those that need the whole sample (an open
    temperature sensor matters only while something is energised; every lost instrument is named)."""
    reasons: list[tuple[int, str]] = []
    faults = [str(error) for error in sample.errors.values() if isinstance(error, InstrumentFault)]
    if faults:  # every lost instrument named, not only the first
        reasons.append((_FAULT, f"instrument fault: {'; '.join(faults)}"))
    for name, reading in [*sample.supplies().items(), *sample.loads().items()]:
        reasons += _reading_reasons(name, reading, limits)
    fixture = sample.fixture
    if fixture is not None:
        reasons += _reading_reasons("", fixture, limits)
        if fixture.sensor_open and sample.energised:
            reasons.append((_SENSOR_OPEN, f"temperature sensor open: {', '.join(sorted(fixture.sensor_open))} "
                                          "(temperature unknown)"))
    return min(reasons, key=lambda r: r[0])[1] if reasons else None  # min keeps the first of a rank


def _reading_reasons(name: str, result: Reading | InstrumentError, limits: LiveLimits) -> list[tuple[int, str]]:
    """Each limit this reading crosses, as (rank, reason)."""
    out: list[tuple[int, str]] = []
    v, i, t = limits.max_voltage, limits.max_current, limits.max_temperature
    if isinstance(result, InstrumentError):
        if isinstance(result, InstrumentFault):
            out.append((_FAULT, f"instrument fault: {result}"))
        return out
    if isinstance(result, FixtureReading):
        if reason := chain_reason(result):
            out.append((_CHAIN, reason))
        for label, value in (("DC+ contact", result.contact_temp_dc_plus),
                             ("DC- contact", result.contact_temp_dc_minus),
                             ("inlet sensor 1", result.inlet_sensor_1),
                             ("inlet sensor 2", result.inlet_sensor_2)):
            if not math.isnan(value) and value > t.value:
                out.append((_TEMPERATURE, f"over-temperature: {label} {value:.1f} °C > {t.value:g} °C ({t.source})"))
        if result.inlet_voltage > v.value:
            out.append((_VOLTAGE, f"over-voltage: inlet voltage {result.inlet_voltage:.1f} V > {v.value:g} V "
                                  f"({v.source})"))
        if abs(result.inlet_current) > i.value:
            out.append((_CURRENT, f"over-current: inlet current {abs(result.inlet_current):.1f} A > {i.value:g} A "
                                  f"({i.source})"))
        return out
    if result.protection:  # the unit protected itself: whatever made it do so, the bench is in doubt
        out.append((_PROTECTION, f"instrument protection: {name} {result.protection} latched"))
    if isinstance(result, SupplyReading):  # a load's own readings only repeat the supply's bus
        if result.voltage > v.value:
            out.append((_VOLTAGE, f"over-voltage: {name} voltage {result.voltage:.1f} V > {v.value:g} V ({v.source})"))
        if result.current > i.value:
            out.append((_CURRENT, f"over-current: {name} current {result.current:.1f} A > {i.value:g} A ({i.source})"))
    return out


@dataclass(frozen=True)
class Expected:
    """What the plan set and the bench must keep showing, from rig time ``since``: every sample taken
    after that is checked, so a bench changed from outside (``rig safe``, a front panel, another PC)
    trips the run instead of passing it on readings of a bench that is no longer what the plan set."""

    since: float
    path: str = ""
    selector: int = 0  # contactors closed on this path (0: nothing routed, nothing checked)
    supplies_on: frozenset[str] = field(default_factory=frozenset)
    loads_on: frozenset[str] = field(default_factory=frozenset)
    inlet_current: float | None = None  # A, set (constant-current load); None = not checked
    current_from: float = math.inf  # rig time the current band applies from


def deviation(sample: Sample, expected: Expected, band: Bound) -> str | None:
    """How the bench differs from what the plan set, in one line naming what changed, or None."""
    if sample.time_s < expected.since or not expected.selector:
        return None
    supplies, loads, fixture = sample.supplies(), sample.loads(), sample.fixture
    for name in sorted(expected.supplies_on):
        if name in supplies and not supplies[name].output_on:
            return f"{name} output switched off from outside (path {expected.path} energised by this run)"
    for name in sorted(expected.loads_on):
        if name in loads and not loads[name].input_on:
            return f"{name} input switched off from outside (path {expected.path} energised by this run)"
    if fixture is None:
        return None
    if not fixture.contactors_closed:
        return f"contactors opened from outside (path {expected.path} connected by this run)"
    if fixture.path != expected.selector:
        return f"power path {fixture.path} routed to the inlet, {expected.selector} set by this run"
    want = expected.inlet_current
    if want is not None and sample.time_s >= expected.current_from and \
            abs(fixture.inlet_current - want) > band.value * want:
        return (f"inlet current {fixture.inlet_current:.1f} A, {want:g} A set "
                f"(outside ±{band.value * 100:g} %: {band.source})")
    return None
