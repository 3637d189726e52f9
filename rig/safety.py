"""Live limits, checked on every sample.

The effective limit of each quantity is the tightest of the rig config, the DUT (tier and rated
current) and the profile; each carries its source so a trip says which limit it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from instruments.errors import InstrumentFault
from instruments.roles import Bound, FixtureReading
from rig.sampler import Sample


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


def trip_reason(sample: Sample, limits: LiveLimits) -> str | None:
    """Why this sample must end in the safe state, or None. One line, naming what and which limit."""
    for error in sample.errors.values():
        if isinstance(error, InstrumentFault):
            return f"instrument fault: {error}"
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
