"""Continuous-current endurance: contact resistance before, temperature rise at rated current until
thermal steady state, contact resistance after. Run the module whole: the last test compares with the
first."""

from __future__ import annotations

from collections import deque

import pytest

from rig.steps import energise, hold


def contact_resistances(rig, profile) -> dict[str, float]:
    """4-wire millivolt drop across each DC contact at the test current, as resistance (Ω)."""
    amps = profile.value("contact.test_current")
    energise(rig, profile.value("endurance.source_voltage"), amps)
    rig.wait(profile.value("voltage.settle_time"))
    fixture = rig.sample().fixture
    assert fixture.inlet_current == pytest.approx(amps, rel=0.015), f"test current {fixture.inlet_current:.2f} A"
    return {"DC+": fixture.drop_dc_plus_mv / 1000 / fixture.inlet_current,
            "DC-": fixture.drop_dc_minus_mv / 1000 / fixture.inlet_current}


def test_contact_resistance_before_endurance(rig, profile, check, prompt, run_store) -> None:
    """Millivolt drop of DC+ and DC- at the test current, before endurance (the baseline).

    Profile: contact.test_current, endurance.source_voltage; limit contact.resistance (Ω).
    """
    prompt("Fit the 4-wire millivolt leads and the thermocouples on the DC+ and DC- contacts, connect the "
           "high-current cables to the inlet and close the enclosure. Ready?")
    resistances = contact_resistances(rig, profile)
    for pole, ohms in resistances.items():
        check("contact.resistance", ohms, name=f"contact.resistance[{pole} before]")
    run_store["contact_resistance_before"] = resistances


@pytest.mark.endurance
def test_temperature_rise_at_rated_current(rig, profile, dut, check) -> None:
    """Hold the DUT's rated current until thermal steady state (the hottest contact changes less than
    the steady-state delta over the window) or the maximum hold; then the rise of each contact and of
    the inlet's own sensors over ambient must be within the limit. An absolute over-temperature stops
    the test at once (live limit: profile endurance.abort_temperature).

    Profile: dut.rated_current (or --rated-current), endurance.source_voltage, endurance.max_hold,
    endurance.steady_state_window, endurance.steady_state_delta; limits endurance.temperature_rise (K),
    endurance.current_regulation (%).
    """
    amps = dut.rated_current
    window = profile.value("endurance.steady_state_window")
    delta = profile.value("endurance.steady_state_delta")
    energise(rig, profile.value("endurance.source_voltage"), amps)
    history: deque[tuple[float, float]] = deque(maxlen=64)
    steady_at = None
    start = rig.clock.now()
    for sample in hold(rig, profile.value("endurance.max_hold"), every=window / 30,
                       label=f"endurance at {amps:g} A"):
        hottest = sample.fixture.hottest_contact
        history.append((sample.time_s, hottest))
        older = [temp for t, temp in history if t <= sample.time_s - window]
        if older and abs(hottest - older[-1]) < delta:
            steady_at = sample.time_s - start
            break
    fixture = rig.sample().fixture
    rig.note(f"endurance hold {rig.clock.now() - start:.0f} s; " + (
        f"steady state after {steady_at:.0f} s" if steady_at is not None else "maximum hold reached first"))
    for label, temp in (("DC+", fixture.contact_temp_dc_plus), ("DC-", fixture.contact_temp_dc_minus),
                        ("inlet sensor 1", fixture.inlet_sensor_1), ("inlet sensor 2", fixture.inlet_sensor_2)):
        check("endurance.temperature_rise", temp - fixture.ambient_temp, name=f"endurance.temperature_rise[{label}]")
    check("endurance.current_regulation", (fixture.inlet_current - amps) / amps * 100)


def test_contact_resistance_after_endurance(rig, profile, check, run_store) -> None:
    """Millivolt drop again after endurance; each contact's resistance must still be within the limit
    and must not have risen by more than the allowed percentage over the before-endurance baseline.

    Limits: contact.resistance (Ω), contact.resistance_rise (%).
    """
    after = contact_resistances(rig, profile)
    before = run_store.get("contact_resistance_before")
    for pole, ohms in after.items():
        check("contact.resistance", ohms, name=f"contact.resistance[{pole} after]")
        if before:
            check("contact.resistance_rise", (ohms - before[pole]) / before[pole] * 100,
                  name=f"contact.resistance_rise[{pole}]")
    if not before:
        pytest.skip("no before-endurance baseline in this run: run the whole module to compare")
