"""Emergency shutdown: with current flowing, pressing E-stop or opening the interlock loop stops the
current within the limit and brings the bus below 60 V."""

from __future__ import annotations

import pytest

from rig.steps import energise

TRIGGERS = [
    pytest.param("estop", "E-stop pressed", id="e-stop"),
    pytest.param("interlock", "interlock loop open", id="interlock"),
]


@pytest.mark.parametrize(("trigger", "reason"), TRIGGERS)
def test_emergency_shutdown(rig, profile, check, prompt, trigger: str, reason: str) -> None:
    """Energise the high-voltage path at the shutdown test voltage and current, then let the fixture's
    test relay press E-stop (or break the interlock loop). The fixture times, from the event, the
    inlet current falling below the threshold and the inlet voltage falling below 60 V; the rig must
    also detect the trip and reach its safe state.

    Profile: shutdown.test_voltage, shutdown.test_current, shutdown.current_threshold;
    limits shutdown.current_time (ms), shutdown.voltage_time (ms).
    """
    prompt(f"The fixture will {'press the E-stop' if trigger == 'estop' else 'open the interlock loop'} "
           "with current flowing. Enclosure closed and everyone clear of the bench?")
    amps = profile.value("shutdown.test_current")
    energise(rig, profile.value("shutdown.test_voltage"), amps)
    rig.fixture.set_shutdown_threshold(profile.value("shutdown.current_threshold"))
    rig.wait(profile.value("voltage.settle_time"))
    assert rig.sample().fixture.inlet_current == pytest.approx(amps, rel=0.02), "test current not flowing"
    with rig.expect_trip(reason):
        rig.fixture.actuate(estop=trigger == "estop", open_interlock=trigger == "interlock")
        timed = rig.wait_for(lambda s: s.fixture.shutdown_current_ms is not None
                             and s.fixture.shutdown_voltage_ms is not None, 10, "the fixture to time the shutdown")
        after = rig.wait_for(lambda s: rig.trip is not None and not s.fixture.contactors_closed, 10,
                             "the rig to trip and open the contactors")
    assert reason in (rig.trip or ""), f"rig tripped for {rig.trip!r}, expected {reason!r}"
    check("shutdown.current_time", timed.fixture.shutdown_current_ms, name=f"shutdown.current_time[{trigger}]")
    check("shutdown.voltage_time", timed.fixture.shutdown_voltage_ms, name=f"shutdown.voltage_time[{trigger}]")
    assert after.fixture.inlet_voltage < profile.value("safe.voltage")
    assert not any(r.output_on for r in after.supplies().values())
