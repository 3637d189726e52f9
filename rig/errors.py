"""Errors the rig raises, and the exit codes they map to at the command line.

Exit codes (documented in the README): 0 pass, 1 test failure, 2 usage or config error,
3 safety trip or instrument fault, 75 bench in use by another session (try again later), 130 interrupted.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_SAFETY = 3
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: another session owns the bench; nothing was sent
EXIT_INTERRUPTED = 130


class RigError(Exception):
    """Something about the rig prevents running; the message is one line."""


class SafetyTrip(RigError):
    """A live limit tripped (or the fixture's chain broke): the bench went to the safe state."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"safety trip: {reason}")
        self.reason = reason


class DutRefused(RigError):
    """The requested run does not fit the DUT (e.g. a 1000 V tier on a 500 V inlet)."""


class BenchBusy(RigError):
    """Another session owns the bench (this PC's lock or the fixture's claim); nothing was sent to it."""
