"""Parallel groups: the high-current path's three supplies and two loads driven as one role."""

from __future__ import annotations

import pytest

from instruments.errors import InstrumentLost
from instruments.groups import ParallelLoad, ParallelSupply
from instruments.roles import LoadMode, Rating
from instruments.sim.bench import SimulatedBench
from rig.session import Rig


def test_group_rating_and_sharing(bench: SimulatedBench, sim_rig: Rig) -> None:
    supply, load = sim_rig.paths["hc"].supply, sim_rig.paths["hc"].load
    assert isinstance(supply, ParallelSupply) and isinstance(load, ParallelLoad)
    assert supply.rating == Rating(80, 1350, 45000)
    assert load.rating == Rating(150, 1200, 12000)
    supply.set_current_limit(945)
    load.set_mode(LoadMode.CC, 900)
    assert [u.current_set for u in bench.model.paths["hc"].supplies] == pytest.approx([315, 315, 315])
    assert [u.level for u in bench.model.paths["hc"].loads] == pytest.approx([450, 450])


def test_a_group_is_never_left_half_on(bench: SimulatedBench, sim_rig: Rig) -> None:
    supply = sim_rig.paths["hc"].supply
    supply.set_voltage(8)
    supply.set_current_limit(300)
    sim_rig.sampler.stop()  # else the sampler may see the lost unit first and trip the rig (a race)
    bench.kill("psu_hc3")
    with pytest.raises(InstrumentLost, match="psu_hc3"):
        supply.output_on()
    assert [u.output for u in bench.model.paths["hc"].supplies[:2]] == [False, False]
