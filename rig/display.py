"""Terminal output: rich when on a terminal, plain lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
from typing import Any


def console(stderr: bool = False, file: Any = None) -> Any:
    from rich.console import Console

    stream = file or (sys.stderr if stderr else sys.stdout)
    tty = stream.isatty()
    # Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; logs can be wide.
    # emoji=False: an instrument's message such as "SYST:LOCK:OWN?" must print as sent, not as 🔒.
    return Console(file=file, stderr=stderr, highlight=False, emoji=False, width=None if tty else 160)


def real_stdout() -> Any:
    """A second handle on this process's stdout that pytest's output capture cannot redirect.

    While tests run, pytest points fd 1 (and sys.stdout) at a temporary file; a progress display
    writing from its own thread must keep writing to the terminal or log the user is watching.
    """
    import io
    import os

    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, io.UnsupportedOperation):  # an in-memory stream (click's CliRunner): no capture to dodge
        return sys.stdout
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")


def status_style(status: str) -> str:
    if status in ("ok", "PASS", "passed"):
        return "green"
    if status.startswith("calibration due") or status in ("skipped", "MARGINAL", "INCOMPLETE", "not run"):
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
