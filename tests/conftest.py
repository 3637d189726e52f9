"""Shared fixtures: a simulated bench on real sockets, and a Rig opened on it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from instruments.sim.bench import SimulatedBench
from rig.clock import Clock
from rig.session import Rig
from tests.safe_bench import StandaloneSim

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

FAST = 200.0  # rig seconds per real second in tests: thermal minutes pass in a fraction of a second


@pytest.fixture
def clock() -> Clock:
    return Clock(FAST)


@pytest.fixture
def bench(clock: Clock) -> Iterator[SimulatedBench]:
    with SimulatedBench(clock=clock) as b:
        yield b


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[StandaloneSim]:
    """`rig sim` standalone in its own process (for tests of signals, processes and exits)."""
    s = StandaloneSim(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def sim_rig(bench: SimulatedBench, clock: Clock) -> Iterator[Rig]:
    """A Rig open on the simulated bench (named so it never shadows the plugin's `rig` fixture)."""
    with Rig(bench.config(), clock=clock) as r:
        yield r
