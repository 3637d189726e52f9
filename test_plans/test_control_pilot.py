"""Control pilot (J1772 / IEC 61851-1 Annex A, unchanged in J3400): state voltages, duty -> current."""

from __future__ import annotations

import pytest

from instruments.roles import CpMode, VehicleState
from rig.j1772 import is_digital, offered_current

# (state, generator mode, vehicle-side load): B, C, D with PWM as while charging.
STATES = [
    pytest.param("a", CpMode.DC, VehicleState.A, id="A"),
    pytest.param("b", CpMode.PWM, VehicleState.B, id="B"),
    pytest.param("c", CpMode.PWM, VehicleState.C, id="C"),
    pytest.param("d", CpMode.PWM, VehicleState.D, id="D"),
    pytest.param("e", CpMode.OFF, VehicleState.B, id="E"),
    pytest.param("f", CpMode.NEGATIVE, VehicleState.B, id="F"),
]


@pytest.mark.parametrize(("state", "mode", "vehicle"), STATES)
def test_pilot_state_voltage(rig, check, state: str, mode: CpMode, vehicle: VehicleState) -> None:
    """The fixture drives the pilot and switches in the vehicle's state resistors through the inlet; the
    positive level must sit in the state's window, and while PWM runs the negative level at -12 V and
    the frequency at 1 kHz.

    Limits: cp.state_<x>.high, cp.pwm_low, cp.frequency.
    """
    rig.fixture.set_pilot(mode, 50.0)
    rig.fixture.set_vehicle_state(vehicle)
    fixture = rig.sample().fixture
    check(f"cp.state_{state}.high", fixture.cp_high)
    if mode is CpMode.PWM:
        check("cp.pwm_low", fixture.cp_low, name=f"cp.pwm_low[{state.upper()}]")
        check("cp.frequency", fixture.cp_frequency, name=f"cp.frequency[{state.upper()}]")


@pytest.mark.parametrize("duty", [10, 16, 25, 50, 80, 85, 86, 90, 96])
def test_duty_cycle_offers_the_table_current(rig, profile, check, duty: int) -> None:
    """PWM at each duty of the J1772 table, vehicle in state C: the duty measured at the vehicle side
    through the inlet must match the generated one, and the current it decodes to must be the table's.

    Profile: cp.offered_current.<duty> (the table); limits cp.duty_error, cp.offered_current_error.
    """
    rig.fixture.set_pilot(CpMode.PWM, duty)
    rig.fixture.set_vehicle_state(VehicleState.C)
    measured = rig.sample().fixture.cp_duty
    decoded = offered_current(measured)
    assert decoded is not None, f"measured duty {measured:.2f} % offers no current"
    check("cp.duty_error", measured - duty, name=f"cp.duty_error[{duty}%]")
    check("cp.offered_current_error", decoded - profile.value(f"cp.offered_current.{duty}"),
          name=f"cp.offered_current_error[{duty}%]")


def test_five_percent_duty_requests_digital_communication(rig, check) -> None:
    """5 % duty is the DC-charging request for digital communication (ISO 15118 / DIN 70121 over PLC):
    the duty measured through the inlet must stay in the 4.5-5.5 % band. Limit: cp.digital_duty."""
    rig.fixture.set_pilot(CpMode.PWM, 5.0)
    rig.fixture.set_vehicle_state(VehicleState.C)
    measured = rig.sample().fixture.cp_duty
    check("cp.digital_duty", measured)
    assert is_digital(measured), f"{measured:.2f} % is not read as a digital-communication request"
