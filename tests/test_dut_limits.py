"""The DUT's tier and rating narrow every setpoint; a refused setpoint never reaches an instrument."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from instruments.errors import SetpointRefused
from instruments.sim.bench import SimulatedBench
from rig.clock import Clock
from rig.config import RigConfig
from rig.errors import DutRefused
from rig.limits import Dut, check_dut, effective_limits
from rig.profile import load_profile
from rig.session import Rig


@pytest.fixture
def rig_500(bench: SimulatedBench, clock: Clock) -> Iterator[Rig]:
    config: RigConfig = bench.config()
    ceilings, live = effective_limits(config, load_profile(), Dut("SN-500", 500, 900.0))
    with Rig(config, clock=clock, ceilings=ceilings, limits=live) as rig:
        yield rig


def voltage_commands(bench: SimulatedBench, name: str) -> list[str]:
    return [line for line in bench.servers[name].dialect.log if "VOLT" in line.upper() and "?" not in line]


def test_1000_v_on_a_500_v_dut_is_refused_before_anything_is_sent(bench: SimulatedBench, rig_500: Rig) -> None:
    path = rig_500.path_for(voltage=500, current=1)
    with pytest.raises(SetpointRefused, match=r"voltage 1000 V refused: above the 500 V limit \(DUT tier 500 V"):
        rig_500.source(path, volts=1000, current_limit=1)
    with pytest.raises(SetpointRefused, match="above the 500 V limit"):
        path.supply.set_voltage(1000)
    assert voltage_commands(bench, "psu_hv") == [], "a voltage setting (or OVP) reached the supply"


def test_500_v_tier_uses_the_550_v_over_voltage_trip(rig_500: Rig) -> None:
    assert rig_500.limits.max_voltage.value == 550
    assert "tier.500.overvoltage_trip" in rig_500.limits.max_voltage.source
    assert rig_500.ceilings.current.value == pytest.approx(945)


def test_dut_descriptions_the_profile_cannot_test_are_refused() -> None:
    profile = load_profile()
    with pytest.raises(DutRefused, match="--tier: expected one of 500, 1000"):
        check_dut(Dut("X", 800, 900), profile)
    with pytest.raises(DutRefused, match="--rated-current: expected a current > 0 A"):
        check_dut(Dut("X", 500, 0), profile)
