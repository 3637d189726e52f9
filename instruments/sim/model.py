"""The physical model behind the simulated bench.

    supplies (parallel) ─ cable ─ inlet DC+/DC- contacts ─ fixture contactors ─ loads (parallel)
                                     │ thermocouples, 4-wire drops, shunt, IMD, CP/PP circuits

Several *power paths* (a supply group and a load group each) can be routed to the inlet by the fixture's
path selector, one at a time: a high-voltage path for the voltage tiers and a high-current path for
endurance, as labs wire them.

Time is the shared rig clock. The model is evaluated lazily: every protocol request first advances the
model to "now", then applies its command and re-solves the operating point. Between changes the state
evolves in closed form (thermal exponentials, bus discharge), so large time steps at a high clock
scale are exact. The one continuous process without a closed form here, a disabled supply's bus
discharging *through* a load, is sub-stepped.

Communication watchdogs (fixture heartbeat, instrument I/O watchdogs) run in real time; see rig.clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from instruments.roles import Connector, CpMode, LoadMode, Rating, VehicleState
from instruments.sim import circuits
from instruments.sim.thermal import LaggedSensor, ThermalNode
from rig.clock import Clock

SAFE_VOLTAGE = 60.0


@dataclass
class BenchParameters:
    """Physical constants of the simulated bench. Faults are injected by changing these."""

    ambient_c: float = 25.0
    contact_resistance_ohm: float = 60e-6  # per DC contact, healthy
    contact_r_th_k_per_w: float = 0.8  # contact to ambient
    contact_tau_s: float = 300.0
    sensor_tau_s: float = 20.0  # the inlet's own sensors lag the contacts...
    sensor_coupling: float = 0.9  # ...and see 90 % of their rise
    cable_resistance_ohm: float = 0.4e-3  # supply side, both conductors
    bus_discharge_tau_s: float = 0.1  # a disabled supply's output (DC link + down-programmer)
    contactor_close_s: float = 0.030
    contactor_open_s: float = 0.020
    iso_dc_plus_ohm: float = 50e6
    iso_dc_minus_ohm: float = 50e6
    cp_resistor_scale: float = 1.0
    cp_frequency_hz: float = 1000.0
    load_knee_v: float = 0.5  # below this a CC/CP load behaves resistively


@dataclass
class PowerUnit:
    """State common to a simulated supply or load."""

    name: str
    rating: Rating
    path: str
    #: Latched protection that holds the output off ("OVP", "OCP", "INH", "WDOG"), or None.
    tripped: str | None = None
    voltage: float = 0.0  # measured at the terminals
    current: float = 0.0
    watchdog_s: float | None = None  # real-time I/O watchdog, where the dialect has one
    last_io: float = field(default_factory=time.monotonic)


@dataclass
class SupplyUnit(PowerUnit):
    voltage_set: float = 0.0
    current_set: float = 0.0
    power_set: float = math.inf
    output: bool = False  # the programmed state
    ovp: float = math.inf
    ocp: float | None = None  # trip level (EA, ITECH)
    ocp_at_limit: bool = False  # Keysight: trip whenever the unit reaches its current limit

    @property
    def delivering(self) -> bool:
        return self.output and self.tripped is None


@dataclass
class LoadUnit(PowerUnit):
    mode: LoadMode = LoadMode.CC
    level: float = 0.0
    input_on: bool = False

    @property
    def sinking(self) -> bool:
        return self.input_on and self.tripped is None

    def demand(self, volts: float, knee: float) -> float:
        """Current this load draws at ``volts`` (continuous, increasing in volts)."""
        if not self.sinking or volts <= 0:
            return 0.0
        if self.mode is LoadMode.CC:
            return self.level * min(1.0, volts / knee)
        if self.mode is LoadMode.CR:
            return volts / self.level if self.level > 0 else 0.0
        if self.mode is LoadMode.CP:
            return self.level / max(volts, knee) * min(1.0, volts / knee)
        # CV: the load clamps the voltage; it sinks whatever holds it at the level (1 mohm slope).
        return max(0.0, (volts - self.level) / 1e-3)


@dataclass
class PowerPath:
    name: str
    selector: int
    supplies: list[SupplyUnit]
    loads: list[LoadUnit]
    bus_voltage: float = 0.0  # supply-side output voltage


@dataclass
class Contact:
    name: str
    node: ThermalNode
    sensor: LaggedSensor
    degradation: float = 1.0  # multiplies the healthy contact resistance


@dataclass
class FixtureState:
    serial: int = 1001
    firmware: int = 102
    contactor_command: bool = False
    contactor_closed: bool = False
    contactor_pending: tuple[float, bool] | None = None  # (time, closed) of the next transition
    path_select: int = 0
    cp_mode: CpMode = CpMode.OFF
    cp_duty: float = 100.0
    vehicle_state: VehicleState = VehicleState.A
    connector: Connector = Connector.UNPLUGGED
    actuators: int = 0
    interlock_wiring_ok: bool = True  # the physical loop (a fault can open it)
    estop_button: bool = False  # the physical button (a fault can press it)
    heartbeat: int = 0
    heartbeat_timeout_s: float = 0.0
    heartbeat_last: float = field(default_factory=time.monotonic)
    heartbeat_tripped: bool = False
    claim_token: int = 0  # the owner's token (map v2); 0 = not claimed
    claim_since: float = 0.0  # time.monotonic() of the claim
    safe_requests: int = 0  # safe requests from other tokens while claimed
    trip_latched: bool = False
    trip_time: float | None = None
    shutdown_threshold_a: float = 5.0
    shutdown_current_ms: float | None = None
    shutdown_voltage_ms: float | None = None
    sensor_open: set[str] = field(default_factory=set)

    @property
    def interlock_closed(self) -> bool:
        return self.interlock_wiring_ok and not self.actuators & 2

    @property
    def estop_pressed(self) -> bool:
        return self.estop_button or bool(self.actuators & 1)

    @property
    def chain_ok(self) -> bool:
        return (self.interlock_closed and not self.estop_pressed and not self.heartbeat_tripped
                and not self.trip_latched)


class FixtureRefused(Exception):
    """The fixture's interlocks forbid a command (answered with Modbus exception 4)."""


class FixtureBusy(Exception):
    """Another session's token holds the fixture's claim (answered with Modbus exception 6)."""


class BenchModel:
    """Supplies, loads, inlet and fixture as one coupled circuit on a shared clock."""

    def __init__(self, paths: list[PowerPath], clock: Clock, params: BenchParameters | None = None) -> None:
        self.paths = {p.name: p for p in paths}
        self.clock = clock
        self.params = params or BenchParameters()
        self.fixture = FixtureState()
        self.lock = threading.RLock()
        p = self.params
        self.contacts = {
            name: Contact(name, ThermalNode(p.contact_r_th_k_per_w, p.contact_tau_s, p.ambient_c),
                          LaggedSensor(p.sensor_tau_s, p.sensor_coupling, p.ambient_c))
            for name in ("DC+", "DC-")
        }
        self.inlet_current = 0.0
        self.inlet_voltage = 0.0
        self.load_voltage = 0.0
        self._t = clock.now()

    # -- lookup ----------------------------------------------------------------------------------

    def units(self) -> Iterator[PowerUnit]:
        for path in self.paths.values():
            yield from path.supplies
            yield from path.loads

    def unit(self, name: str) -> PowerUnit:
        for u in self.units():
            if u.name == name:
                return u
        raise KeyError(name)

    def selected_path(self) -> PowerPath | None:
        for path in self.paths.values():
            if path.selector == self.fixture.path_select:
                return path
        return None

    def contact_resistance(self, contact: Contact) -> float:
        return self.params.contact_resistance_ohm * contact.degradation

    # -- time ------------------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring the model to the clock's now, applying scheduled events exactly when they fall due."""
        with self.lock:
            now = self.clock.now()
            pending = self.fixture.contactor_pending
            while pending is not None and pending[0] <= now:
                self._integrate(pending[0] - self._t)
                self._t = pending[0]
                self.fixture.contactor_closed = pending[1]
                self.fixture.contactor_pending = pending = None
                if self.fixture.trip_latched and not self.fixture.contactor_closed:
                    self._inhibit(LoadUnit)
                self.solve()
            self._integrate(now - self._t)
            self._t = now
            self.solve()
            self._check_watchdogs()

    @property
    def time(self) -> float:
        return self._t

    def _integrate(self, dt: float) -> None:
        if dt <= 0:
            return
        if self._discharging_through_load():
            # The only non-closed-form process: sub-step it (1/50 of the discharge time constant).
            h = self.params.bus_discharge_tau_s / 50
            while dt > 1e-12:
                step = min(h, dt)
                self._evolve(step)
                self._t += step
                dt -= step
                self.solve()
                if not self._discharging_through_load():
                    self._evolve(dt)
                    self._t += dt
                    return
            return
        self._evolve(dt)
        self._t += dt

    def _discharging_through_load(self) -> bool:
        path = self.selected_path()
        return (path is not None and self.fixture.contactor_closed and path.bus_voltage > 0.05
                and not any(s.delivering for s in path.supplies) and any(ld.sinking for ld in path.loads))

    def _evolve(self, dt: float) -> None:
        """Advance continuous state by ``dt`` with the present operating point (``_t`` not moved)."""
        p = self.params
        for path in self.paths.values():
            if not any(s.delivering for s in path.supplies):
                v0 = path.bus_voltage
                path.bus_voltage = v0 * math.exp(-dt / p.bus_discharge_tau_s)
                self._note_voltage_crossing(path, v0, dt)
        for contact in self.contacts.values():
            power = self.inlet_current**2 * self.contact_resistance(contact)
            start = contact.node.temperature
            steady = contact.node.steady_state(power, p.ambient_c)
            contact.node.advance(dt, power, p.ambient_c)
            contact.sensor.advance(dt, start, steady, contact.node.tau)

    def _note_voltage_crossing(self, path: PowerPath, v0: float, dt: float) -> None:
        f = self.fixture
        if (f.trip_time is None or f.shutdown_voltage_ms is not None or path is not self.selected_path()
                or v0 < SAFE_VOLTAGE or path.bus_voltage >= SAFE_VOLTAGE):
            return
        crossing = self._t + self.params.bus_discharge_tau_s * math.log(v0 / SAFE_VOLTAGE)
        f.shutdown_voltage_ms = max(0.0, (min(crossing, self._t + dt) - f.trip_time) * 1000)

    # -- operating point -------------------------------------------------------------------------

    def solve(self) -> None:
        """Operating point of every path for the present state (called after every change)."""
        with self.lock:
            for _ in range(3):  # a protection trip changes the operating point; each unit trips once
                self._trip_supplies_over_voltage()
                self._solve_paths()
                if not self._trip_on_measurements():
                    break
            self._note_current_below_threshold()

    def _solve_paths(self) -> None:
        selected = self.selected_path()
        self.inlet_current = 0.0
        self.load_voltage = 0.0
        for path in self.paths.values():
            self._solve_path(path, connected=path is selected and self.fixture.contactor_closed)
        if selected is not None:
            drop = self.inlet_current * self.params.cable_resistance_ohm
            self.inlet_voltage = max(0.0, selected.bus_voltage - drop)
        else:
            self.inlet_voltage = 0.0

    def _solve_path(self, path: PowerPath, connected: bool) -> None:
        p = self.params
        sources = [s for s in path.supplies if s.delivering]
        loads = [ld for ld in path.loads if ld.sinking]
        r_total = p.cable_resistance_ohm + sum(self.contact_resistance(c) for c in self.contacts.values())
        if sources:
            v_src = max(s.voltage_set for s in sources)
            i_limit = sum(min(s.current_set, s.power_set / max(v_src, 1e-9)) for s in sources)
        else:
            v_src, i_limit = path.bus_voltage, math.inf  # a decaying bus feeds the load as it falls
        current = 0.0
        v_load = 0.0
        if connected and loads and v_src > 0:
            v_load = self._bisect_load_voltage(v_src, i_limit, r_total, loads)
            current = sum(ld.demand(v_load, p.load_knee_v) for ld in loads)
            current = min(current, i_limit)
        if sources:
            path.bus_voltage = v_load + current * r_total if current > 0 else v_src
        for s in path.supplies:
            share = s.current_set / sum(x.current_set for x in sources) if s.delivering and current else 0.0
            s.current = current * share if math.isfinite(current * share) else 0.0
            s.voltage = path.bus_voltage
        for ld in path.loads:
            ld.voltage = v_load if connected else 0.0
            ld.current = ld.demand(v_load, p.load_knee_v) if connected else 0.0
        if connected:
            self.inlet_current = current
            self.load_voltage = v_load

    def _bisect_load_voltage(self, v_src: float, i_limit: float, r_total: float, loads: list[LoadUnit]) -> float:
        """Load voltage where the source's available current equals the loads' demand."""
        knee = self.params.load_knee_v
        lo, hi = 0.0, v_src
        for _ in range(60):
            mid = (lo + hi) / 2
            available = min((v_src - mid) / r_total, i_limit)
            if available > sum(ld.demand(mid, knee) for ld in loads):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    def _trip_supplies_over_voltage(self) -> None:
        for path in self.paths.values():
            for s in path.supplies:
                if s.delivering and s.voltage_set > s.ovp:
                    s.tripped = "OVP"

    def _trip_on_measurements(self) -> bool:
        """Latch over-current / over-voltage protections; True if anything newly tripped."""
        tripped = False
        for path in self.paths.values():
            for s in path.supplies:
                if not s.delivering:
                    continue
                if (s.ocp is not None and s.current > s.ocp) or (
                        s.ocp_at_limit and s.current_set > 0 and s.current >= s.current_set * 0.999):
                    s.tripped, tripped = "OCP", True
            for ld in path.loads:
                if ld.sinking and ld.voltage > ld.rating.voltage * 1.02:
                    ld.tripped, tripped = "OVP", True
                elif ld.sinking and ld.current > ld.rating.current * 1.02:
                    ld.tripped, tripped = "OCP", True
        return tripped

    def _note_current_below_threshold(self) -> None:
        f = self.fixture
        if f.trip_time is not None and f.shutdown_current_ms is None and \
                self.inlet_current < f.shutdown_threshold_a:
            f.shutdown_current_ms = max(0.0, (self._t - f.trip_time) * 1000)

    # -- fixture behaviour -----------------------------------------------------------------------

    def _check_watchdogs(self) -> None:
        """Real-time communication watchdogs: the fixture heartbeat and instrument I/O watchdogs."""
        now = time.monotonic()
        f = self.fixture
        if f.heartbeat_timeout_s > 0 and not f.heartbeat_tripped and now - f.heartbeat_last > f.heartbeat_timeout_s:
            f.heartbeat_tripped = True
            f.claim_token, f.heartbeat_timeout_s = 0, 0.0  # the dead owner's claim ends with its heartbeat
        for unit in self.units():
            if unit.watchdog_s is not None and unit.tripped is None and now - unit.last_io > unit.watchdog_s:
                unit.tripped = "WDOG"
        self.update_safety_chain()

    def update_safety_chain(self) -> None:
        """The hardware chain: a break inhibits every supply at once and opens the contactors; the
        loads are inhibited once the contactors are open. Until then a constant-current load keeps
        drawing from the supplies' discharging output, so the contactors are what stop the current
        (a slow contactor shows up in the shutdown timing, as on a real bench)."""
        f = self.fixture
        broken = not f.interlock_closed or f.estop_pressed or f.heartbeat_tripped
        if broken and not f.trip_latched:
            f.trip_latched = True
            f.trip_time = self._t
            f.shutdown_current_ms = None
            f.shutdown_voltage_ms = None
            self._command_contactors(False)
            self._inhibit(SupplyUnit)
            if not f.contactor_closed:
                self._inhibit(LoadUnit)
            self.solve()

    def _inhibit(self, kind: type[PowerUnit]) -> None:
        for unit in self.units():
            if isinstance(unit, kind) and unit.tripped is None:
                unit.tripped = "INH"

    def clear_protection(self, unit: PowerUnit) -> None:
        """An instrument's protection clear: an inhibit stays while the fixture's chain is broken."""
        with self.lock:
            if unit.tripped == "INH" and not self.fixture.chain_ok:
                return
            unit.tripped = None
            unit.last_io = time.monotonic()
            self.solve()

    def tick(self) -> None:
        """Periodic real-time housekeeping (watchdogs) between requests."""
        self.advance()

    def feed_heartbeat(self, value: int) -> None:
        with self.lock:
            if value != self.fixture.heartbeat:
                self.fixture.heartbeat = value
                self.fixture.heartbeat_last = time.monotonic()

    def arm_heartbeat(self, timeout_s: float) -> None:
        with self.lock:
            self.fixture.heartbeat_timeout_s = timeout_s
            self.fixture.heartbeat_last = time.monotonic()

    # -- ownership (register map v2) -------------------------------------------------------------

    def check_owner(self, token: int) -> None:
        """Owner-only commands: FixtureBusy for another token's live claim, FixtureRefused if unclaimed."""
        self._check_watchdogs()  # a claim whose heartbeat has stopped has ended, even between requests
        owner = self.fixture.claim_token
        if owner == 0:
            raise FixtureRefused("not claimed: claim the fixture first")
        if owner != token:
            raise FixtureBusy(f"claimed by token {owner >> 16:04x}....")

    def claim(self, token: int, timeout_s: float) -> None:
        with self.lock:
            self._check_watchdogs()
            f = self.fixture
            if f.claim_token not in (0, token):
                raise FixtureBusy(f"claimed by token {f.claim_token >> 16:04x}....")
            if f.claim_token != token:
                f.claim_since = time.monotonic()
            f.claim_token = token
            self.arm_heartbeat(timeout_s)

    def release(self, token: int) -> None:
        with self.lock:
            f = self.fixture
            if f.claim_token == 0:
                return
            self.check_owner(token)
            if f.contactor_closed or f.contactor_command or self.inlet_voltage >= SAFE_VOLTAGE:
                raise FixtureRefused("bench energised: the owner's claim (and its watchdog) stays")
            f.claim_token = 0
            self.arm_heartbeat(0.0)

    def request_safe(self, token: int) -> None:
        with self.lock:
            if self.fixture.claim_token not in (0, token):
                self.fixture.safe_requests = (self.fixture.safe_requests + 1) & 0xFFFF

    def command_contactors(self, close: bool) -> None:
        with self.lock:
            f = self.fixture
            if close and not f.chain_ok:
                raise FixtureRefused("safety chain not OK")
            if close and self.selected_path() is None:
                raise FixtureRefused("no power path selected")
            self._command_contactors(close)

    def _command_contactors(self, close: bool) -> None:
        f = self.fixture
        f.contactor_command = close
        if f.contactor_closed == close:
            f.contactor_pending = None
            return
        delay = self.params.contactor_close_s if close else self.params.contactor_open_s
        f.contactor_pending = (self._t + delay, close)

    def select_path(self, selector: int) -> None:
        with self.lock:
            f = self.fixture
            if selector == f.path_select:
                return
            if f.contactor_closed or f.contactor_command:
                raise FixtureRefused("contactors closed")
            if selector != 0 and not any(p.selector == selector for p in self.paths.values()):
                raise FixtureRefused(f"no power path {selector}")
            f.path_select = selector
            self.solve()

    def reset_trip(self) -> None:
        with self.lock:
            f = self.fixture
            if not f.interlock_closed or f.estop_pressed:
                raise FixtureRefused("trip cause still present")
            f.trip_latched = False
            f.heartbeat_tripped = False
            f.heartbeat_last = time.monotonic()

    # -- what the fixture measures ---------------------------------------------------------------

    def cp_measurements(self) -> tuple[float, float, float, float]:
        """(high V, low V, duty %, frequency Hz) of the pilot as the fixture measures it."""
        f = self.fixture
        high, low = circuits.cp_levels(f.cp_mode, f.vehicle_state, self.params.cp_resistor_scale)
        if f.cp_mode is CpMode.PWM and f.vehicle_state is not VehicleState.E:
            return high, low, f.cp_duty, self.params.cp_frequency_hz
        duty = 100.0 if high > 0 else 0.0
        return high, low, duty, 0.0

    def contact_drop_mv(self, name: str) -> float:
        return self.inlet_current * self.contact_resistance(self.contacts[name]) * 1000

    def contact_temperature(self, name: str) -> float:
        return self.contacts[name].node.temperature

    def inlet_sensor_temperature(self, name: str) -> float:
        return self.contacts[name].sensor.reading(self.params.ambient_c)
