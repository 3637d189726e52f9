"""Insulation resistance of the inlet's DC poles to PE, measured at each tier's voltage."""

from __future__ import annotations

import pytest

from rig.steps import energise

TIERS = [pytest.param(500, id="500V"), pytest.param(1000, id="1000V", marks=pytest.mark.tier(1000))]


@pytest.mark.parametrize("tier", TIERS)
def test_insulation_at_tier_voltage(rig, profile, check, tier: int) -> None:
    """With the tier's voltage on the inlet (no load), the fixture's insulation monitor reads DC+ and
    DC- to PE; each must be above the absolute limit and above the ohms-per-volt limit at that voltage.

    Profile: tier.<V>.voltage, voltage.settle_time; limits insulation.resistance (Ω, IEC 61851-23:2023)
    and insulation.ohm_per_volt (Ω/V, IEC 61851-23:2014).
    """
    volts = profile.value(f"tier.{tier}.voltage")
    energise(rig, volts, load_amps=None, current=1.0)
    rig.wait(profile.value("voltage.settle_time"))
    fixture = rig.sample().fixture
    assert fixture.inlet_voltage > 0.95 * volts, f"test voltage not applied: {fixture.inlet_voltage:.1f} V"
    for pole, ohms in (("DC+", fixture.iso_dc_plus_ohm), ("DC-", fixture.iso_dc_minus_ohm)):
        check("insulation.resistance", ohms, name=f"insulation.resistance[{pole} {tier}V]")
        check("insulation.ohm_per_volt", ohms / fixture.inlet_voltage, name=f"insulation.ohm_per_volt[{pole} {tier}V]")
