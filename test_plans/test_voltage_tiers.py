"""Voltage tiers: the 500 V and 1000 V DC configurations of a NACS inlet, applied at light load."""

from __future__ import annotations

import pytest

from rig.steps import energise

TIERS = [pytest.param(500, id="500V"), pytest.param(1000, id="1000V", marks=pytest.mark.tier(1000))]


@pytest.mark.parametrize("tier", TIERS)
def test_tier_voltage_at_light_load(rig, profile, check, tier: int) -> None:
    """Apply the tier's voltage through the inlet with a light CC load, let it settle, and check that
    the inlet sees the setpoint and that the supply's and the fixture's measurements agree.

    Profile: tier.<V>.voltage, voltage.light_load_current, voltage.settle_time;
    limits voltage.inlet_deviation (%) and voltage.measurement_agreement (V).
    A 500 V DUT is never driven to 1000 V: that case is skipped before anything is energised.
    """
    volts = profile.value(f"tier.{tier}.voltage")
    path = energise(rig, volts, profile.value("voltage.light_load_current"))
    rig.wait(profile.value("voltage.settle_time"))
    sample = rig.sample()
    inlet = sample.fixture.inlet_voltage
    supply = path.supply.measure()
    assert abs(sample.fixture.inlet_current - profile.value("voltage.light_load_current")) < 0.5, \
        f"light load not flowing: {sample.fixture.inlet_current:.2f} A"
    check("voltage.inlet_deviation", (inlet - volts) / volts * 100, name=f"voltage.inlet_deviation[{tier}V]")
    check("voltage.measurement_agreement", supply.voltage - inlet, name=f"voltage.measurement_agreement[{tier}V]")
