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
