"""Live limits, checked on every sample.

The effective limit of each quantity is the tightest of the rig config, the DUT (tier and rated
current) and the profile; each carries its source so a trip says which limit it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from instruments.errors import InstrumentFault
from instruments.roles import Bound, FixtureReading
from rig.sampler import Sample


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


def trip_reason(sample: Sample, limits: LiveLimits) -> str | None:
    """Why this sample must end in the safe state, or None. One line, naming what and which limit."""
    faults = [str(error) for error in sample.errors.values() if isinstance(error, InstrumentFault)]
    if faults:  # every lost instrument named, not only the first
        return f"instrument fault: {'; '.join(faults)}"
    fixture = sample.fixture
    if fixture is not None and (reason := chain_reason(fixture)):
        return reason
    for name, reading in [*sample.supplies().items(), *sample.loads().items()]:
        if reading.protection:  # the unit protected itself: whatever made it do so, the bench is in doubt
            return f"instrument protection: {name} {reading.protection} latched"
    energised = sample.energised
    if fixture is not None and energised and fixture.sensor_open:
        return f"temperature sensor open: {', '.join(sorted(fixture.sensor_open))} (temperature unknown)"
    t = limits.max_temperature
    if fixture is not None:
        for label, value in (("DC+ contact", fixture.contact_temp_dc_plus),
                             ("DC- contact", fixture.contact_temp_dc_minus),
                             ("inlet sensor 1", fixture.inlet_sensor_1),
                             ("inlet sensor 2", fixture.inlet_sensor_2)):
            if not math.isnan(value) and value > t.value:
                return f"over-temperature: {label} {value:.1f} °C > {t.value:g} °C ({t.source})"
    v, i = limits.max_voltage, limits.max_current
    voltages = [(f"{n} voltage", r.voltage) for n, r in sample.supplies().items()]
    currents = [(f"{n} current", r.current) for n, r in sample.supplies().items()]
    if fixture is not None:
        voltages.append(("inlet voltage", fixture.inlet_voltage))
        currents.append(("inlet current", abs(fixture.inlet_current)))
    for label, value in voltages:
        if value > v.value:
            return f"over-voltage: {label} {value:.1f} V > {v.value:g} V ({v.source})"
    for label, value in currents:
        if value > i.value:
            return f"over-current: {label} {value:.1f} A > {i.value:g} A ({i.source})"
    return None
