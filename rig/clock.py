"""One notion of time for the rig and the simulated bench.

Plans wait, hold and timestamp in *rig seconds*. On hardware a rig second is a real second. Against the
simulated bench, time can be scaled: with ``scale=1000`` an hour-long endurance hold takes 3.6 real
seconds, and because the bench's physics (thermal time constants, bus discharge, contactor delays)
read the same clock, every decision a plan makes is the same as it would be at scale 1.

What is *not* scaled: communication timeouts and watchdogs (VISA timeouts, the fixture heartbeat, an
instrument's I/O watchdog). They guard the link between this PC and the bench, which runs in real
time; scaling them would make them fire on ordinary OS jitter.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """Monotonic clock in rig seconds, running ``scale`` times faster than real time."""

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"clock scale must be > 0, got {scale!r}")
        self.scale = float(scale)
        self._origin = time.monotonic()

    def now(self) -> float:
        """Rig seconds since this clock was made."""
        return (time.monotonic() - self._origin) * self.scale

    def real_seconds(self, rig_seconds: float) -> float:
        """How long ``rig_seconds`` lasts in real time."""
        return rig_seconds / self.scale

    def sleep(self, rig_seconds: float) -> None:
        if rig_seconds > 0:
            time.sleep(rig_seconds / self.scale)

    def wait(self, event: threading.Event, rig_seconds: float) -> bool:
        """Wait for ``event`` at most ``rig_seconds``; True if it was set."""
        return event.wait(max(0.0, rig_seconds) / self.scale)

    def __repr__(self) -> str:
        return f"Clock(scale={self.scale:g})"


REAL_TIME = Clock(1.0)
