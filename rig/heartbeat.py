"""Feeds the fixture's heartbeat watchdog from its own thread, in real time.

If this process dies (crash, ``kill -9``, power loss of the PC) the heartbeat stops; the fixture then
opens the contactors and, through the hardware safety chain, inhibits every supply and load. The rig
also *withholds* the heartbeat on purpose when its software safe state could not reach an instrument,
so the hardware finishes the job.
"""

from __future__ import annotations

import logging
import threading

from instruments.errors import InstrumentError
from instruments.roles import InletFixture

log = logging.getLogger("rig.heartbeat")


class Heartbeat:
    def __init__(self, fixture: InletFixture, timeout_s: float) -> None:
        self.fixture = fixture
        self.timeout_s = timeout_s
        self.period_s = timeout_s / 4
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.withheld = False

    def start(self) -> None:
        self.fixture.arm_heartbeat(self.timeout_s)
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.fixture.feed_heartbeat()
            except InstrumentError as exc:
                log.warning("heartbeat not delivered: %s", exc)

    def withhold(self) -> None:
        """Stop feeding: the fixture trips within ``timeout_s`` and makes the bench safe in hardware."""
        self.withheld = True
        self._stop.set()

    def stop(self, disarm: bool) -> None:
        """Stop feeding; with ``disarm`` also switch the fixture's watchdog off (clean shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.period_s * 2 + 1)
        if disarm and not self.withheld:
            try:
                self.fixture.arm_heartbeat(0)
            except InstrumentError as exc:
                log.warning("could not disarm the fixture heartbeat: %s", exc)
