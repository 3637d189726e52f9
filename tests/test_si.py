"""rig.si: numbers as the report and the terminal show them (SI prefixes, no float noise, no Python literals)."""

from __future__ import annotations

import math

import pytest

from rig.si import in_text, plain, quantity, window


@pytest.mark.parametrize(("value", "unit", "text"), [
    (6e-05, "Ω", "60 µΩ"),
    (0.00018, "Ω", "180 µΩ"),
    (5e7, "Ω", "50 MΩ"),
    (1.2e9, "Ω", "1.2 GΩ"),
    (45e3, "Ω", "45 kΩ"),
    (100000.0, "Ω/V", "100 kΩ/V"),
    (990.0000000000001, "A", "990 A"),
    (1100.0, "V", "1100 V"),  # bench voltages stay in volts below 10 kV
    (-12.0, "V", "-12 V"),
    (4.455, "V", "4.455 V"),
    (38.9, "K", "38.9 K"),  # temperatures, differences and percentages are never prefixed
    (92.1, "°C", "92.1 °C"),
    (0.5, "%", "0.5 %"),
    (250.0, "ms", "250 ms"),  # an already prefixed unit is kept
    (0.0005, "s", "500 µs"),
    (36000.0, "s", "36000 s"),
    (0.0, "Ω", "0 Ω"),
    (999.99999, "V", "1000 V"),
    (math.nan, "V", "not measured"),
    (None, "A", "—"),
])
def test_quantity(value: float | None, unit: str, text: str) -> None:
    assert quantity(value, unit) == text


@pytest.mark.parametrize(("low", "high", "unit", "text"), [
    (None, 1e-4, "Ω", "≤ 100 µΩ"),
    (1e5, None, "Ω", "≥ 100 kΩ"),
    (11.4, 12.6, "V", "11.4 … 12.6 V"),
    (-1.0, 1.0, "%", "-1 … 1 %"),
    (0.5, 2000.0, "Ω", "500 mΩ … 2000 Ω"),
    (None, None, "V", ""),
])
def test_window(low: float | None, high: float | None, unit: str, text: str) -> None:
    assert window(low, high, unit) == text


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), (True, "yes"), (False, "no"), (990.0000000000001, "990"), (0.1 + 0.2, "0.3"), (3, "3"), ("x", "x"),
])
def test_plain_has_no_python_literals(value: object, text: str) -> None:
    assert plain(value) == text


def test_numbers_inside_messages_are_scaled_but_names_are_not() -> None:
    message = ("contact.resistance[DC+ before] = 0.00018 Ω outside -inf .. 0.0001 Ω "
               "(limit contact.resistance: 0.1 mΩ per contact) [DC+ 500V] 100.0 ms")
    assert in_text(message) == ("contact.resistance[DC+ before] = 180 µΩ outside -inf .. 100 µΩ "
                                "(limit contact.resistance: 0.1 mΩ per contact) [DC+ 500V] 100 ms")
