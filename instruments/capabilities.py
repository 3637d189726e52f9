"""Optional features: what a driver uses where the unit's firmware has it, and what covers without it.

Real firmware differs from any manual: a watchdog, a status register or a priority-mode query may be
missing, a protection-clear command refused. A driver declares each optional command once, as a
``Feature`` (source, confidence, what happens without it); the unit's answer is recorded as a
``Capability``, found at open by a query that changes nothing (``probe``) or, for commands that act,
on first use. A missing feature degrades to a recorded capability unless the rig config requires it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """One optional command of a driver."""

    key: str  # the name a rig config's ``require`` uses: "watchdog", "status", ...
    command: str  # what the driver sends for it
    source: str  # manual and section (or public driver) it comes from
    confidence: str  # "high" | "medium" | "low", as in the instrument facts
    without: str  # what the rig does without it, i.e. what covers for it
    #: A query that changes nothing, asked at open; None when only using the command tells (it acts).
    probe: str | None = None


@dataclass(frozen=True)
class Capability:
    """What one unit showed for one feature."""

    key: str
    present: bool | None  # None: not known until first used
    detail: str  # the command used, or why it is missing and what covers for it

    @property
    def status(self) -> str:
        return {True: "yes", False: "MISSING", None: "untested"}[self.present]

    def as_record(self) -> dict[str, object]:
        return {"present": self.present, "detail": self.detail}


def is_unknown_command(errors: list[tuple[int, str]]) -> bool:
    """SCPI command errors (-100..-199: undefined header, command error ...) mean the firmware lacks
    the command; execution errors (-2xx) mean it has it but refused the value or the state."""
    return bool(errors) and all(-199 <= code <= -100 for code, _ in errors)
