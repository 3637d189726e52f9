"""Terminal output: rich when on a terminal, plain lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
from typing import Any


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    tty = (sys.stderr if stderr else sys.stdout).isatty()
    # Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; logs can be wide.
    return Console(stderr=stderr, highlight=False, width=None if tty else 160)


def status_style(status: str) -> str:
    if status in ("ok", "PASS", "passed"):
        return "green"
    if status.startswith("calibration due") or status in ("skipped", "MARGINAL"):
        return "yellow"
    return "bold red"


_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def engineering(value: float, unit: str, digits: int = 4) -> str:
    """``6e-05, "Ω"`` -> ``60 µΩ``; ``5e7, "Ω"`` -> ``50 MΩ``; plain for %, °C, K and unitless values."""
    if value != value or unit in ("", "%", "°C", "K", "ms", "s") or value == 0:
        return f"{value:.{digits}g} {unit}".strip()
    for factor, prefix in _PREFIXES:
        if abs(value) >= factor * 0.9999:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"
