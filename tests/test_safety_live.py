"""Live limits checked on every sample: each excursion trips the rig into the safe state, fails the
plan step with the reason, and the trip is recorded. Also: a lost instrument mid-run, and hardware
protections programmed and read back before any output is enabled."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from instruments.roles import LoadMode
from instruments.sim.bench import SimulatedBench
from rig.clock import Clock
from rig.errors import RigError, SafetyTrip
from rig.limits import Dut, effective_limits
from rig.profile import load_profile
from rig.session import Rig
from tests.safe_bench import wait_until


@pytest.fixture
def dut_rig(bench: SimulatedBench, clock: Clock) -> Iterator[Rig]:
    """A rig limited for a 500 V DUT rated 40 A: trips at 550 V, 44 A, 90 °C."""
    config = bench.config()
    ceilings, live = effective_limits(config, load_profile(), Dut("SN-LIVE", 500, 40.0))
    with Rig(config, clock=clock, ceilings=ceilings, limits=live) as rig:
        yield rig


def energised(rig: Rig, volts: float = 400.0, amps: float = 20.0):
    path = rig.path_for(volts, amps)
    rig.connect(path)
    rig.source(path, volts, current_limit=min(amps * 1.05, rig.ceilings.current.value))
    rig.sink(path, LoadMode.CC, amps)
    rig.wait(1.0)
    return path


def sample_until_a_trip(rig: Rig, samples: int = 200) -> None:
    """Take samples as a plan does until one raises SafetyTrip: counted in samples, not in (rig) time,
    so a busy machine that slows the sampler cannot end the wait before the bench has been looked at."""
    for _ in range(samples):
        rig.sample()
    raise AssertionError(f"no trip in {samples} samples")


def assert_bench_safe(bench: SimulatedBench) -> None:
    with bench.model.lock:
        bench.model.advance()
        assert not any(s.delivering for p in bench.model.paths.values() for s in p.supplies)
        assert not any(ld.sinking for p in bench.model.paths.values() for ld in p.loads)
        assert not bench.model.fixture.contactor_closed
        assert all(p.bus_voltage < 60 for p in bench.model.paths.values())


def _over_voltage(bench: SimulatedBench) -> None:
    unit = bench.model.paths["hv"].supplies[0]
    unit.voltage_set = 600.0  # the unit's OVP (programmed at 550 V) trips first: the hardware layer


def _over_voltage_unprotected(bench: SimulatedBench) -> None:
    unit = bench.model.paths["hv"].supplies[0]
    unit.ovp = 1650.0  # its OVP raised at the front panel: only the software limit is left
    unit.voltage_set = 600.0


def _over_current(bench: SimulatedBench) -> None:
    bench.model.paths["hv"].supplies[0].current_set = 60.0  # knobs turned on both units: OCP trips
    bench.model.paths["hv"].loads[0].level = 50.0


def _over_current_unit_trips(bench: SimulatedBench) -> None:
    """The knobs turned, and the unit's OCP (44 A) latches at once; the bus then discharges through the
    load for a few model milliseconds, 50 A that the fixture would measure too. The test holds the
    model's lock meanwhile, so no reading is taken before that transient is over: the layer that acts
    is the unit's, and so must be the one the trip names (not a race with the software limit)."""
    _over_current(bench)
    bench.model.solve()
    deadline = time.monotonic() + 5.0
    while bench.model.inlet_current > 44.0 and time.monotonic() < deadline:
        time.sleep(0.001)
        bench.model.advance()


def _over_current_unprotected(bench: SimulatedBench) -> None:
    bench.model.paths["hv"].supplies[0].ocp = 66.0
    _over_current(bench)


def _over_temperature(bench: SimulatedBench) -> None:
    bench.model.params.ambient_c = 95.0
    for contact in bench.model.contacts.values():
        contact.node.temperature = 95.0


PERTURB: dict[str, tuple[Callable[[SimulatedBench], None], str]] = {
    "over-voltage, unit OVP": (_over_voltage, "instrument protection: psu_hv OVP latched"),
    # The fixture measures the same bus at the inlet as the supply does: the software limit trips on
    # whichever of the two readings the rig checks first (a sample can straddle the change).
    "over-voltage, software": (_over_voltage_unprotected, "over-voltage: (inlet|psu_hv) voltage 600.0 V > 550 V"),
    "over-current, unit OCP": (_over_current_unit_trips, "instrument protection: psu_hv OCP latched"),
    "over-current, software": (_over_current_unprotected, "over-current: (inlet|psu_hv) current 50.0 A > 44 A"),
    "over-temperature": (_over_temperature, r"over-temperature: DC\+ contact 95.0 °C > 90 °C"),
    "interlock": (lambda b: b.inject("interlock_open"), "interlock loop open"),
    "e-stop": (lambda b: b.inject("estop"), "E-stop pressed"),
    "open thermocouple": (lambda b: b.inject("open_thermocouple=DC-"), "temperature sensor open: DC-"),
}


@pytest.mark.parametrize("case", list(PERTURB))
def test_live_limit_trips_to_the_safe_state(bench: SimulatedBench, dut_rig: Rig, case: str) -> None:
    perturb, reason = PERTURB[case]  # a regular expression (the literal text, but for the software cases)
    energised(dut_rig)
    with bench.model.lock:
        bench.model.advance()
        perturb(bench)
        bench.model.solve()
    with pytest.raises(SafetyTrip, match=reason):
        sample_until_a_trip(dut_rig)
    assert dut_rig.trip is not None and re.search(reason, dut_rig.trip)
    assert dut_rig.safe_reports[-1].ok, dut_rig.safe_reports[-1].lines()
    assert_bench_safe(bench)
    with pytest.raises(SafetyTrip):  # nothing is energised again until the trip is cleared
        dut_rig.source(dut_rig.path_for(400, 1), 400, 1)


def test_trip_limits_name_their_source(dut_rig: Rig) -> None:
    assert dut_rig.limits.max_voltage.value == 550
    assert dut_rig.limits.max_current.value == pytest.approx(44.0)
    assert dut_rig.limits.max_temperature.value == 90
    assert "endurance.abort_temperature" in dut_rig.limits.max_temperature.source


def test_a_lost_instrument_mid_run_trips_and_the_rest_is_made_safe(bench: SimulatedBench, sim_rig: Rig) -> None:
    path = sim_rig.path_for(8, 900)
    sim_rig.connect(path)
    sim_rig.source(path, 8, 945)
    sim_rig.sink(path, LoadMode.CC, 900)
    sim_rig.wait(1.0)
    bench.kill("load_hc2")
    with pytest.raises(SafetyTrip, match="instrument fault: load_hc2"):
        sim_rig.wait(600)
    report = sim_rig.safe_reports[-1]
    assert report.unreachable == ["load_hc2 load input off"], report.lines()
    assert any(step.name == "heartbeat withheld" for step in report.steps)
    with bench.model.lock:
        bench.model.advance()
        assert not any(s.delivering for s in bench.model.paths["hc"].supplies)
        assert not bench.model.fixture.contactor_closed
    # The hardware finishes the job: without heartbeats the fixture trips within its timeout (2 s).
    wait_until(lambda: bench.model.fixture.heartbeat_tripped, 3.0, "the fixture's heartbeat watchdog")
    with pytest.raises(RigError, match="cannot re-arm: the heartbeat was withheld"):
        sim_rig.rearm()


def test_protections_are_programmed_and_read_back_before_the_output_is_enabled(
        bench: SimulatedBench, dut_rig: Rig) -> None:
    log = bench.servers["psu_hv"].dialect.log
    start = len(log)
    energised(dut_rig)
    lines = list(log)[start:]
    on = lines.index("OUTP ON")
    assert lines.index("SOUR:VOLT:PROT 550") < on and lines.index("SOUR:CURR:PROT 44") < on
    assert lines.index("SOUR:VOLT:PROT?;:SOUR:CURR:PROT?") < on
    unit = bench.model.paths["hv"].supplies[0]
    assert (unit.ovp, unit.ocp) == (550.0, 44.0)


def test_a_protection_that_does_not_read_back_stops_before_output_on(
        bench: SimulatedBench, dut_rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit that silently keeps an old OVP level (e.g. a front-panel limit) must not be enabled."""
    from instruments.roles import SupplyProtection

    path = dut_rig.path_for(400, 1)
    dut_rig.connect(path)
    monkeypatch.setattr(type(path.supply), "read_protection", lambda self: SupplyProtection(1650.0, 44.0))
    with pytest.raises(RigError, match="OVP reads back 1650 V; expected 550 V"):
        dut_rig.source(path, 400, 1)
    assert "OUTP ON" not in bench.servers["psu_hv"].dialect.log


def test_the_sampler_watches_between_tests_too(bench: SimulatedBench, sim_rig: Rig) -> None:
    """Nothing energised, no plan running: an E-stop is still noticed and recorded."""
    bench.inject("estop")
    wait_until(lambda: sim_rig.trip is not None, 5.0, "the sampler to notice the E-stop")
    # Named by the fixture: by its own reading, or, when a load's inhibit (INH) arrives first in a sample
    # (readings are checked as they arrive), by the fresh fixture reading the rig takes to name the cause.
    assert sim_rig.trip == "E-stop pressed"  # named by its cause, whichever reading showed it first


def test_simulators_listen_on_loopback_only_by_default(bench: SimulatedBench) -> None:
    assert all(server.host == "127.0.0.1" and "127.0.0.1" in server.resource for server in bench.servers.values())
    assert bench.fixture.resource.startswith("modbus+tcp://127.0.0.1:")


def test_the_sampler_keeps_polling_on_its_own(bench: SimulatedBench, sim_rig: Rig) -> None:
    count = sim_rig.sampler.count
    time.sleep(0.3)
    assert sim_rig.sampler.count > count  # the sampler thread is alive and polling


def test_a_session_that_fails_while_opening_still_ends_safe_with_its_threads_stopped(
        bench: SimulatedBench, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from instruments.errors import InstrumentFault

    def broken_watchdog(self, timeout_s: float) -> None:
        raise InstrumentFault(self.name, "watchdog delay reads back 0 s", "OUTP:PROT:WDOG:DEL?")

    monkeypatch.setattr("instruments.drivers.ea_psi.EaPsi.arm_watchdog", broken_watchdog)
    rig = Rig(bench.config(), clock=clock)
    with pytest.raises(InstrumentFault, match="watchdog delay reads back"):
        rig.open()
    assert rig.safe_reports[-1].reason == "session end" and rig.safe_reports[-1].ok
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name in ("sampler", "heartbeat") and t.is_alive()]
    rig.close()  # idempotent


def test_a_trip_after_the_rigs_pool_is_gone_still_ends_in_the_safe_state(bench: SimulatedBench, dut_rig: Rig) -> None:
    """At interpreter exit with a rig still open (a library user's script that never closed it), the
    thread pool refuses new work while the sampler can still trip: the off commands and the safe state
    then run one after another on the tripping thread."""
    energised(dut_rig)
    dut_rig._pool.shutdown(wait=True)
    with bench.model.lock:
        bench.model.advance()
        _over_temperature(bench)
    with pytest.raises(SafetyTrip, match="over-temperature"):
        sample_until_a_trip(dut_rig)
    assert dut_rig.safe_reports[-1].ok, dut_rig.safe_reports[-1].lines()
    assert_bench_safe(bench)
