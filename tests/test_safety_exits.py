"""Every way out of a run leaves the bench safe: load off, supply off, bus below 60 V, contactors open.

The bench is a standalone `rig sim` process; a plan runs against it through `--rig` in another process;
the bench's state is then read from outside over the real protocols. A clean exit is made safe by the
software (the fixture's heartbeat watchdog never trips); a `kill -9` is made safe by the hardware
backstop (heartbeat watchdog -> contactors open, supplies inhibited) within the watchdog time, and
every row sampled before the kill is still on disk.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.safe_bench import StandaloneSim, read_state, run_folder, start_plan, wait_until

pytestmark = pytest.mark.slow
HEARTBEAT_TIMEOUT = 2.0  # rig config default, real seconds


@pytest.mark.parametrize(("test", "code"), [("test_pass", 0), ("test_failed_assertion", 1), ("test_exception", 1)])
def test_normal_exits_end_safe_by_software(sim: StandaloneSim, tmp_path: Path, test: str, code: int) -> None:
    proc = start_plan(sim.config, test, tmp_path / "results")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out
    state = read_state(sim.config)
    assert state.safe, state
    assert not state.heartbeat_tripped, "the software made it safe, not the hardware backstop"
    meta = json.loads((run_folder(tmp_path / "results") / "run.json").read_text())
    assert meta["finished"] is True
    assert all(line.startswith("ok") for line in meta["final_safe_state"]), meta["final_safe_state"]


def energised_run(sim: StandaloneSim, tmp_path: Path):
    proc = start_plan(sim.config, "test_long_hold", tmp_path / "results")
    wait_until(lambda: read_state(sim.config).inlet_current > 9.0, 60, "10 A through the inlet")
    folder = run_folder(tmp_path / "results")
    wait_until(lambda: (folder / "measurements.csv").read_text().count("\n") >= 2, 30, "the first measurement")
    wait_until(lambda: (folder / "samples.csv").read_text().count("\n") > 20, 30, "20 samples on disk")
    return proc, folder


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_and_sigterm_run_the_safe_state(sim: StandaloneSim, tmp_path: Path, sig: signal.Signals) -> None:
    proc, folder = energised_run(sim, tmp_path)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out  # pytest: interrupted
    state = read_state(sim.config)
    assert state.safe, state
    assert not state.heartbeat_tripped
    meta = json.loads((folder / "run.json").read_text())
    assert (meta["finished"], meta["outcome"]) == (True, "interrupted")


def parse_all(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    width = len(rows[0])
    assert all(len(r) == width for r in rows), "a row is cut short"
    return rows


def test_kill_9_ends_safe_through_the_watchdog_and_loses_nothing(sim: StandaloneSim, tmp_path: Path) -> None:
    proc, folder = energised_run(sim, tmp_path)
    before = (folder / "samples.csv").read_text().splitlines()
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    proc.wait(10)
    state = wait_until(lambda: (s := read_state(sim.config)).safe and s, HEARTBEAT_TIMEOUT + 2.0,
                       "the bench to become safe after kill -9", interval=0.02)
    elapsed = time.monotonic() - killed
    assert state.heartbeat_tripped, "made safe by the fixture's heartbeat watchdog"
    assert elapsed <= HEARTBEAT_TIMEOUT + 0.5, f"safe only after {elapsed:.2f} s"
    # Nothing lost: every line parses, every row seen before the kill is still there, in order.
    samples = parse_all(folder / "samples.csv")
    after = (folder / "samples.csv").read_text().splitlines()
    assert after[: len(before)] == before and len(samples) >= len(before) > 10
    assert any(float(r[samples[0].index("inlet.current_a")]) > 9 for r in samples[1:])
    measurements = parse_all(folder / "measurements.csv")
    assert [r[3] for r in measurements[1:]] == ["pp.unplugged"]
    meta = json.loads((folder / "run.json").read_text())
    assert (meta["finished"], meta["outcome"]) == (False, "running")
