"""Feeds the fixture's heartbeat watchdog from its own thread, in real time.

``start`` claims the fixture for this session (register map v2): the claim arms the fixture's watchdog
and lives as long as this heartbeat. If this process dies (crash, ``kill -9``, power loss of the PC)
the heartbeat stops; the fixture then opens the contactors, inhibits every supply and load through the
hardware safety chain, and ends the claim, so the bench is safe before another session can claim it.
The rig also *withholds* the heartbeat on purpose when its software safe state could not reach an
instrument, so the hardware finishes the job. Nothing here ever switches the watchdog off: the claim
is released only on a bench confirmed safe, and the fixture refuses a release while it is energised.
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
        """Claim the fixture (``FixtureClaimed`` if another session holds it) and start feeding."""
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

    def stop(self, release: bool) -> None:
        """Stop feeding; with ``release`` also give the fixture's claim up (after a confirmed safe state).
        If the fixture refuses (bench energised) or cannot be reached, its watchdog trips instead."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.period_s * 2 + 1)
        if release and not self.withheld:
            try:
                self.fixture.release()
            except InstrumentError as exc:
                log.warning("fixture claim not released (its watchdog will trip): %s", exc)
