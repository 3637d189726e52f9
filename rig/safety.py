"""Live limits, checked on every reading as it arrives and on every whole sample.

The effective limit of each quantity is the tightest of the rig config, the DUT (tier and rated
current) and the profile; each carries its source so a trip says which limit it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from instruments.errors import InstrumentError, InstrumentFault
from instruments.roles import Bound, FixtureReading, SupplyReading
from rig.sampler import Reading, Sample


@dataclass(frozen=True)
class LiveLimits:
    max_voltage: Bound  # bus / inlet voltage (V)
    max_current: Bound  # inlet and total supply current (A)
    max_temperature: Bound  # any contact or inlet sensor (°C)


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
    temperature sensor matters only while something is energised)."""
    reasons: list[tuple[int, str]] = []
    for name, error in sample.errors.items():
        reasons += _reading_reasons(name, error, limits)
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
