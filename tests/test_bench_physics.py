"""The simulated bench's physics against independent references: numerical integration of the thermal
ODE, the analytic first-order step response (through the fixture over Modbus TCP), and the CP/PP
divider formulas written out here rather than imported."""

from __future__ import annotations

import math

import pytest

from instruments.roles import Connector, CpMode, LoadMode, VehicleState
from instruments.sim.bench import SimulatedBench
from instruments.sim.model import BenchParameters
from instruments.sim.thermal import LaggedSensor, ThermalNode
from rig.clock import Clock
from rig.session import Rig


def euler(t_end: float, deriv, y0: float, h: float = 1e-3) -> float:
    y, t = y0, 0.0
    while t < t_end - 1e-12:
        step = min(h, t_end - t)
        y += step * deriv(t, y)
        t += step
    return y


def test_thermal_node_matches_numerical_integration_of_its_ode() -> None:
    node = ThermalNode(r_th=0.8, tau=300.0, temperature=25.0)
    power, ambient = 48.6, 25.0
    node.advance(120.0, power, ambient)  # one big step: closed form
    reference = euler(120.0, lambda t, y: (ambient + power * 0.8 - y) / 300.0, 25.0, h=0.01)
    assert node.temperature == pytest.approx(reference, rel=1e-5)


def test_lagged_sensor_matches_numerical_integration_of_the_cascade() -> None:
    node_tau, sensor_tau, start, steady = 300.0, 20.0, 25.0, 63.9
    sensor = LaggedSensor(tau=sensor_tau, coupling=1.0, lagged=25.0)
    sensor.advance(90.0, start, steady, node_tau)

    def node(t: float) -> float:
        return steady + (start - steady) * math.exp(-t / node_tau)

    reference = euler(90.0, lambda t, y: (node(t) - y) / sensor_tau, 25.0, h=0.005)
    assert sensor.lagged == pytest.approx(reference, rel=1e-5)


def test_contact_temperature_follows_the_first_order_step_response(bench: SimulatedBench, sim_rig: Rig) -> None:
    """900 A through the inlet: the rise seen over Modbus tracks rise_ss * (1 - exp(-t/tau)) within 1 %.

    The instant the current started is bracketed by the last sample without current and the first
    with it; the measured rise must lie within 1 % of the analytic curve somewhere in that bracket.
    """
    p: BenchParameters = bench.model.params
    rise_ss = 900.0**2 * p.contact_resistance_ohm * p.contact_r_th_k_per_w  # 38.88 K
    seen: list[tuple[float, float]] = []
    sim_rig.listeners.append(lambda kind, s: seen.append((s.time_s, s.fixture.inlet_current))
                         if kind == "sample" and s.fixture is not None else None)
    path = sim_rig.path_for(voltage=10, current=900)
    sim_rig.connect(path)
    sim_rig.source(path, volts=8, current_limit=945)
    sim_rig.sink(path, LoadMode.CC, 900)
    sim_rig.wait_for(lambda s: s.fixture.inlet_current > 899, 10, "900 A")
    first_on = next(t for t, i in seen if i > 899)
    last_off = max(t for t, i in seen if t < first_on)
    for hold in (150, 300, 600, 1200):  # 0.5 to 4 time constants
        sim_rig.wait(hold - (sim_rig.clock.now() - first_on))
        sample = sim_rig.sample()
        measured = sample.fixture.contact_temp_dc_plus - p.ambient_c
        # The fixture is read a moment after the sample's timestamp: allow 0.5 s on the late side.
        low = rise_ss * (1 - math.exp(-(sample.time_s - first_on) / p.contact_tau_s))
        high = rise_ss * (1 - math.exp(-(sample.time_s + 0.5 - last_off) / p.contact_tau_s))
        assert sample.fixture.inlet_current == pytest.approx(900, abs=0.01)
        assert low * 0.99 <= measured <= high * 1.01, f"{measured:.3f} K not in [{low:.3f}, {high:.3f}] K"


# Vehicle-side CP loads and the EVSE-side 1 kΩ source with a 0.7 V diode (J1772 Annex A circuit).
def _cp_high(r_vehicle: float) -> float:
    return 0.7 + (12 - 0.7) * r_vehicle / (r_vehicle + 1000)


@pytest.mark.parametrize(("state", "expected_high"), [
    (VehicleState.A, 12.0),
    (VehicleState.B, _cp_high(2740)),
    (VehicleState.C, _cp_high(1 / (1 / 2740 + 1 / 1300))),
    (VehicleState.D, _cp_high(1 / (1 / 2740 + 1 / 270))),
    (VehicleState.E, 0.0),
])
def test_cp_levels_follow_the_divider(sim_rig: Rig, state: VehicleState, expected_high: float) -> None:
    sim_rig.fixture.set_pilot(CpMode.PWM, 50.0)
    sim_rig.fixture.set_vehicle_state(state)
    f = sim_rig.sample().fixture
    assert f.cp_high == pytest.approx(expected_high, abs=0.011)  # register resolution 10 mV
    assert f.cp_low == pytest.approx(0.0 if state is VehicleState.E else -12.0, abs=0.011)


def test_cp_state_f_is_minus_12_v(sim_rig: Rig) -> None:
    sim_rig.fixture.set_pilot(CpMode.NEGATIVE)
    sim_rig.fixture.set_vehicle_state(VehicleState.B)
    f = sim_rig.sample().fixture
    assert (f.cp_high, f.cp_low) == (pytest.approx(-12.0), pytest.approx(-12.0))


@pytest.mark.parametrize(("connector", "r_connector"), [
    (Connector.UNPLUGGED, None), (Connector.LATCHED, 150.0), (Connector.BUTTON_PRESSED, 480.0),
])
def test_pp_voltage_follows_the_divider(sim_rig: Rig, connector: Connector, r_connector: float | None) -> None:
    r_down = 2700.0 if r_connector is None else 1 / (1 / 2700 + 1 / r_connector)
    sim_rig.fixture.set_connector(connector)
    assert sim_rig.sample().fixture.pp_voltage == pytest.approx(5 * r_down / (330 + r_down), abs=0.0011)


class ManualClock(Clock):
    """A clock the test moves by hand, for exact checks of the model's dynamics."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.t = 0.0

    def now(self) -> float:
        return self.t


def test_bus_discharges_exponentially_once_the_supply_is_off() -> None:
    clock = ManualClock()
    model = SimulatedBench(clock=clock).model  # the model only: no servers needed
    supply = model.paths["hv"].supplies[0]
    supply.voltage_set, supply.current_set, supply.output = 800.0, 2.0, True
    model.advance()
    assert model.paths["hv"].bus_voltage == pytest.approx(800.0)
    supply.output = False
    model.solve()
    clock.t += model.params.bus_discharge_tau_s
    model.advance()
    assert model.paths["hv"].bus_voltage == pytest.approx(800.0 * math.exp(-1))
    clock.t += model.params.bus_discharge_tau_s * math.log(800.0 * math.exp(-1) / 60.0)
    model.advance()
    assert model.paths["hv"].bus_voltage == pytest.approx(60.0)
