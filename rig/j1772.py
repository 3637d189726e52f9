"""Control-pilot duty cycle -> offered current (SAE J1772 / IEC 61851-1 Annex A, used unchanged by J3400).

    duty < 3 %          no charging
    4.5 % .. 5.5 %      digital communication required (DC charging, ISO 15118 / DIN 70121)
    8 % .. < 10 %       6 A
    10 % .. 85 %        duty x 0.6 A
    > 85 % .. 96 %      (duty - 64) x 2.5 A
    > 96 % .. 97 %      80 A
    otherwise           not a valid offer

Confidence H (several agreeing sources); a code comment citing J1772-2017 puts two band edges at 9.5 %
and 96.5 %, which the plans here do not sit on.
"""

from __future__ import annotations


def is_digital(duty_percent: float) -> bool:
    return 4.5 <= duty_percent <= 5.5


def offered_current(duty_percent: float) -> float | None:
    """Amperes offered by a PWM duty cycle, or None where the duty offers no AC current."""
    d = duty_percent
    if 8.0 <= d < 10.0:
        return 6.0
    if 10.0 <= d <= 85.0:
        return d * 0.6
    if 85.0 < d <= 96.0:
        return (d - 64.0) * 2.5
    if 96.0 < d <= 97.0:
        return 80.0
    return None
