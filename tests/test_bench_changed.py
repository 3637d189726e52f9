"""A run notices its bench changing under it: every sample is compared with what the plan set, and a
difference trips the rig naming what changed. The changes are made at the simulated units' "front
panels" (their model state), as a technician or another tool would, never through this session."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from instruments.roles import LoadMode
from instruments.sim.bench import SimulatedBench
from instruments.sim.model import BenchModel
from rig.errors import SafetyTrip
from rig.session import Rig


def front_panel(bench: SimulatedBench, change: Callable[[BenchModel], None]) -> None:
    with bench.model.lock:
        bench.model.advance()
        change(bench.model)
        bench.model.solve()


def energised(rig: Rig) -> None:
    path = rig.path_for(400, 10)
    rig.connect(path)
    rig.source(path, 400, 12)
    rig.sink(path, LoadMode.CC, 10)
    rig.wait(rig.limits.current_settle_s)  # past the settling time: the current band applies


def samples_handled_by_the_sampler(rig: Rig, n: int) -> None:
    """Wait (real time, generously) until the sampler thread has taken and handled ``n`` more samples."""
    start = rig.sampler.count
    assert rig.sampler.wait_for_sample(start + n, timeout_s=30) is not None


@pytest.mark.parametrize(("change", "reason"), [
    (lambda m: setattr(m.unit("psu_hv"), "output", False), "psu_hv output switched off from outside"),
    (lambda m: setattr(m.unit("load_hv"), "input_on", False), "load_hv input switched off from outside"),
    (lambda m: setattr(m.unit("load_hv"), "level", 2.0), "inlet current 2.0 A, 10 A set"),
    (lambda m: m._command_contactors(False), "contactors opened from outside"),
], ids=["supply-off", "load-off", "current", "contactors"])
def test_a_bench_changed_from_outside_trips_the_run_naming_what_changed(
        bench: SimulatedBench, sim_rig: Rig, change: Callable[[BenchModel], None], reason: str) -> None:
    energised(sim_rig)
    front_panel(bench, change)
    with pytest.raises(SafetyTrip, match=reason):  # the plan's next reading: refused, never a verdict
        sim_rig.sample()
    assert sim_rig.safe_reports[-1].ok


def test_the_sampler_trips_the_rig_on_its_own_between_plan_steps(bench: SimulatedBench, sim_rig: Rig) -> None:
    energised(sim_rig)
    front_panel(bench, lambda m: setattr(m.unit("psu_hv"), "output", False))
    samples_handled_by_the_sampler(sim_rig, 2)  # the first began after the change, and was handled
    assert sim_rig.trip is not None and "psu_hv output switched off from outside" in sim_rig.trip
    with pytest.raises(SafetyTrip):
        sim_rig.wait(1.0)


def test_an_unchanged_bench_holds_without_a_trip(sim_rig: Rig) -> None:
    energised(sim_rig)
    samples_handled_by_the_sampler(sim_rig, 5)
    for _ in range(5):
        sim_rig.sample()
    assert sim_rig.trip is None


def test_a_plan_that_changes_a_setpoint_itself_is_not_taken_for_a_change_from_outside(sim_rig: Rig) -> None:
    energised(sim_rig)
    path = sim_rig.path_for(400, 10)
    path.load.set_mode(LoadMode.CR, 100)  # the plan, through the driver: 4 A now, not 10
    sim_rig.wait(sim_rig.limits.current_settle_s)
    assert sim_rig.sample().fixture.inlet_current < 5
    samples_handled_by_the_sampler(sim_rig, 3)
    assert sim_rig.trip is None
