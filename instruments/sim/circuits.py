"""Control pilot and proximity pilot circuits (J1772 / IEC 61851-1 Annex A, used unchanged by J3400).

CP: the EVSE drives +/-12 V through a 1 kohm source resistor; the vehicle clamps the positive half
through a diode into its state resistors. The positive level seen at the EVSE is

    V_high = V_diode + (12 - V_diode) * R_vehicle / (R_vehicle + 1 kohm)

which gives 8.98 V (B, 2.74 kohm), 5.99 V (C, 2.74 k || 1.3 k) and 2.93 V (D, 2.74 k || 270). The
diode blocks the negative half, so the low level stays at -12 V.

PP (vehicle side): 330 ohm pull-up to 5 V and 2.7 kohm pull-down at the inlet; the connector adds 150
ohm to PE when latched, 150 + 330 ohm with the release button pressed:

    V_pp = 5 * R_down / (330 + R_down),  R_down = 2.7 kohm || R_connector

which gives 4.46 V unplugged, 1.51 V latched and 2.76 V with the button pressed.
"""

from __future__ import annotations

from instruments.roles import Connector, CpMode, VehicleState

CP_AMPLITUDE_V = 12.0
CP_SOURCE_OHM = 1000.0
CP_DIODE_V = 0.7
R_STATE_B = 2740.0
R_STATE_C_ADD = 1300.0
R_STATE_D_ADD = 270.0

PP_SUPPLY_V = 5.0
PP_PULL_UP_OHM = 330.0
PP_PULL_DOWN_OHM = 2700.0
PP_LATCHED_OHM = 150.0
PP_BUTTON_OHM = 330.0


def parallel(*resistances: float) -> float:
    return 1.0 / sum(1.0 / r for r in resistances)


def vehicle_resistance(state: VehicleState, scale: float = 1.0) -> float | None:
    """The vehicle's CP load for a state; None = open (A), 0 = shorted to PE (E).

    ``scale`` multiplies the state resistors, to simulate a wrong or drifted resistor.
    """
    if state is VehicleState.A:
        return None
    if state is VehicleState.E:
        return 0.0
    if state is VehicleState.B:
        return R_STATE_B * scale
    extra = R_STATE_C_ADD if state is VehicleState.C else R_STATE_D_ADD
    return parallel(R_STATE_B, extra * scale)


def cp_high_voltage(r_vehicle: float | None) -> float:
    """Positive CP level for a vehicle load (None = open circuit)."""
    if r_vehicle is None:
        return CP_AMPLITUDE_V
    if r_vehicle == 0.0:
        return 0.0
    return CP_DIODE_V + (CP_AMPLITUDE_V - CP_DIODE_V) * r_vehicle / (r_vehicle + CP_SOURCE_OHM)


def cp_levels(mode: CpMode, state: VehicleState, resistor_scale: float = 1.0) -> tuple[float, float]:
    """(high, low) CP levels at the EVSE side for a generator mode and vehicle state."""
    r = vehicle_resistance(state, resistor_scale)
    if mode is CpMode.OFF or state is VehicleState.E:
        return 0.0, 0.0
    if mode is CpMode.NEGATIVE:
        return -CP_AMPLITUDE_V, -CP_AMPLITUDE_V
    high = cp_high_voltage(r)
    if mode is CpMode.DC:
        return high, high
    return high, -CP_AMPLITUDE_V  # PWM: the vehicle diode blocks the negative half


def pp_voltage(connector: Connector) -> float:
    if connector is Connector.UNPLUGGED:
        r_down = PP_PULL_DOWN_OHM
    elif connector is Connector.LATCHED:
        r_down = parallel(PP_PULL_DOWN_OHM, PP_LATCHED_OHM)
    else:
        r_down = parallel(PP_PULL_DOWN_OHM, PP_LATCHED_OHM + PP_BUTTON_OHM)
    return PP_SUPPLY_V * r_down / (PP_PULL_UP_OHM + r_down)
