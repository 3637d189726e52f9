"""Numbers as a person reads them: SI prefixes, a few significant digits, no float noise, no Python literals.

    quantity(6e-05, "Ω")            -> "60 µΩ"
    quantity(5e7, "Ω")              -> "50 MΩ"
    quantity(990.0000000000001, "A") -> "990 A"
    quantity(1100, "V")             -> "1100 V"     (kilo only from 10 000 up: bench voltages read as volts)
    window(None, 1e-4, "Ω")         -> "≤ 100 µΩ"
    plain(None), plain(True)         -> "—", "yes"

Temperatures, temperature differences, percentages and already-prefixed units (``ms``, ``mV``) are never
rescaled: "38.9 K", "0.5 %", "250 ms".
"""

from __future__ import annotations

import math
import re
from typing import Any

DIGITS = 4
NONE = "—"
_UP = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
_DOWN = ((1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))
_NEVER_SCALED = {"", "%", "°C", "K", "dB", "min", "h", "ppm", "°"}
_SMALL_ONLY = {"s"}  # 500 µs yes, "36 ks" no
_PREFIXED = re.compile(r"^[GMkmµunp](?:Ω|V|A|W|s|Hz|F|H)(?:/.*)?$")  # ms, mV, kΩ, µF ... as given
KILO_FROM = 1e4


def plain(value: Any, digits: int = DIGITS) -> str:
    """A metadata value as text: None -> "—", booleans yes/no, floats without noise (990 not 990.0000000000001)."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _digits(value, digits)
    return str(value)


def _digits(value: float, digits: int = DIGITS) -> str:
    """``digits`` significant digits in fixed notation, trailing zeros dropped; whole numbers keep every digit."""
    if math.isnan(value):
        return "not measured"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{round(value, decimals):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _prefix(value: float, unit: str) -> tuple[float, str]:
    """The factor and prefix that put ``value`` in [1, 1000) (kilo and up only from 10 000)."""
    if unit in _NEVER_SCALED or _PREFIXED.match(unit) or not math.isfinite(value) or value == 0:
        return 1.0, ""
    size = abs(value)
    if size >= KILO_FROM and unit not in _SMALL_ONLY:
        for factor, prefix in _UP:
            if size >= factor * 0.9999995:
                return factor, prefix
    if size < 0.9999995:
        for factor, prefix in _DOWN:
            if size >= factor * 0.9999995:
                return factor, prefix
    return 1.0, ""


def quantity(value: float | None, unit: str, digits: int = DIGITS) -> str:
    """``value`` in ``unit`` with an SI prefix chosen for it; "—" for no value."""
    if value is None:
        return NONE
    factor, prefix = _prefix(value, unit)
    number = _digits(value / factor, digits)
    return f"{number} {prefix}{unit}".strip() if math.isfinite(value) else number


def window(low: float | None, high: float | None, unit: str, digits: int = DIGITS) -> str:
    """A limit window: "11.4 … 12.6 V", "≥ 100 kΩ", "≤ 100 µΩ"; "" without limits."""
    if low is not None and high is not None:
        lo, hi = quantity(low, unit, digits), quantity(high, unit, digits)
        lo_num, _, lo_unit = lo.partition(" ")
        hi_unit = hi.partition(" ")[2]
        return f"{lo_num} … {hi}" if lo_unit == hi_unit else f"{lo} … {hi}"
    if low is not None:
        return f"≥ {quantity(low, unit, digits)}"
    if high is not None:
        return f"≤ {quantity(high, unit, digits)}"
    return ""


_IN_TEXT = re.compile(r"(?<![\w.\[])(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?) (Ω/V|Ω|V|A|W|Hz|ms|s|K|°C|%)(?![\w/])")


def in_text(text: str) -> str:
    """Rescale the numbers-with-units inside a free-text message ("0.00018 Ω outside -inf .. 0.0001 Ω"
    becomes "180 µΩ outside -inf .. 100 µΩ"). Only "number, space, unit" is touched: "[DC+ 500V]" stays."""
    return _IN_TEXT.sub(lambda m: quantity(float(m.group(1)), m.group(2)), text)
