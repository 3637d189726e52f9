"""Reusable plan steps, so each plan reads as its procedure: pick a path, energise, hold, measure.

Everything here goes through the Rig, so limits, live trips and the safe state apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from instruments.roles import LoadMode
from rig.errors import RigError
from rig.sampler import Sample
from rig.session import PowerPath, Rig


@dataclass
class Activity:
    """What the rig is doing now, for progress displays (a hold with an end, or a step)."""

    label: str
    started: float  # rig seconds
    duration: float | None = None  # rig seconds, None if open-ended

    def elapsed(self, now: float) -> float:
        return now - self.started

    def remaining(self, now: float) -> float | None:
        return None if self.duration is None else max(0.0, self.started + self.duration - now)


def power_path(rig: Rig, voltage: float, current: float) -> PowerPath:
    """The path that can carry this; skip the test (with the reason) on a rig that has none."""
    try:
        return rig.path_for(voltage, current)
    except RigError as exc:
        pytest.skip(str(exc))


def energise(rig: Rig, volts: float, load_amps: float | None, *, current: float | None = None) -> PowerPath:
    """Route a capable path, close the contactors on a dead bus, source ``volts`` and (optionally) sink
    ``load_amps`` in constant current. The supply's current limit sits 5 % above what is drawn, within
    the rig's ceilings."""
    needed = current if current is not None else (load_amps or 0.0)
    path = power_path(rig, volts, needed)
    rig.connect(path)
    limit = min(rig.ceilings.current.value, path.supply.limits.current.value, max(needed * 1.05, 1.0))
    rig.source(path, volts, current_limit=limit)
    if load_amps:
        rig.sink(path, LoadMode.CC, load_amps)
    return path


def hold(rig: Rig, seconds: float, every: float, label: str) -> Iterator[Sample]:
    """Hold for ``seconds`` of rig time, yielding a fresh sample every ``every`` seconds.

    The loop ends early if the caller breaks out (e.g. steady state reached); a safety trip raises
    SafetyTrip from the wait. Progress displays read ``rig.activity``.
    """
    start = rig.clock.now()
    rig.activity = Activity(label, start, seconds)
    try:
        while True:
            remaining = start + seconds - rig.clock.now()
            if remaining <= 0:
                return
            rig.wait(min(every, remaining))
            yield rig.sample()
    finally:
        rig.activity = None
