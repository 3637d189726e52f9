"""One owner per bench, proved from outside with real processes against a standalone `rig sim`.

- two `rig run` on one bench (one rig file, or two files that spell the same instruments differently):
  the second refuses at once naming the owner, and the simulated units' wire logs show that it never
  connected; the first run is not interrupted and passes;
- two PCs (two lock directories): the fixture's claim refuses the second session; `kill -9` of the
  owner leaves a bench made safe by the fixture's watchdog, and nothing that blocks the next run;
- `rig safe` from another terminal during a hold names whom it interrupted; that run trips within
  one sample period (exit 3) and records no verdict from readings taken after the switch-off.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.safe_bench import ROOT, StandaloneSim, read_state, rig_command, wait_until

pytestmark = pytest.mark.slow
HEARTBEAT_TIMEOUT = 2.0  # the simulator's rig config, real seconds
PLANS = "tests/scenarios/plan_exits.py"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[StandaloneSim]:
    s = StandaloneSim(tmp_path, log_dir=tmp_path / "wire")
    yield s
    s.stop()


def env_with(lock_dir: Path) -> dict[str, str]:
    """This process's environment with its own lock directory: one PC."""
    return {**os.environ, "RIG_LOCK_DIR": str(lock_dir)}


def run_plan(config: Path, test: str, dut: str, results: Path, env: dict[str, str], *extra: str):
    return rig_command("run", PLANS, "-k", test, "--rig", str(config), "--dut", dut, "--results", str(results),
                       "--yes", "--plain", *extra, env=env)


def wire(sim: StandaloneSim) -> dict[str, list[str]]:
    assert sim.log_dir is not None
    return {p.stem: p.read_text().splitlines() for p in sorted(sim.log_dir.glob("*.log"))}


def new_lines(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: lines[len(before.get(name, [])):] for name, lines in after.items()}


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def holding(sim: StandaloneSim, results: Path) -> Path:
    """Wait until a run is holding 10 A through the inlet, as its own samples show; its results folder.
    (The run's samples, not only the simulator's state: a sample period can pass between the two.)"""
    wait_until(lambda: read_state(sim.config).inlet_current > 9.0, 60, "10 A through the inlet")
    folder = wait_until(lambda: next(iter(results.glob("*/samples.csv")), None), 30, "the run folder").parent
    wait_until(lambda: any(float(r.get("inlet.current_a") or 0) > 9.0 for r in rows(folder / "samples.csv")),
               30, "a sample of the run with 10 A through the inlet")
    return folder


def other_spelling(config: Path, folder: Path) -> Path:
    """A second rig file naming the same instruments: `localhost` and `TCPIP0::` for 127.0.0.1 / TCPIP::."""
    text = config.read_text().replace("127.0.0.1", "localhost").replace('"TCPIP::', '"TCPIP0::')
    text = text.replace('name = "', 'name = "second file of ', 1)
    assert text != config.read_text()
    path = folder / "same-bench.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("second_file", [False, True], ids=["same-file", "same-instruments-other-file"])
def test_a_second_run_on_an_owned_bench_refuses_at_once_names_the_owner_and_sends_nothing(
        sim: StandaloneSim, tmp_path: Path, second_file: bool) -> None:
    env = env_with(tmp_path / "locks")
    first = run_plan(sim.config, "test_hold_and_pass", "DUT-A", tmp_path / "a", env)
    folder = holding(sim, tmp_path / "a")
    config_b = other_spelling(sim.config, tmp_path) if second_file else sim.config
    before = wire(sim)
    started = time.monotonic()
    second = run_plan(config_b, "test_pass", "DUT-B", tmp_path / "b", env)
    out, err = second.communicate(timeout=60)
    refused_after = time.monotonic() - started
    sent = new_lines(before, wire(sim))

    assert second.returncode == 75, out + err
    message = err.strip().splitlines()
    assert len(message) == 1 and "in use by" in message[0], err  # one line, no traceback
    assert f"pid {first.pid}" in message[0] and "DUT DUT-A" in message[0] and "since" in message[0], message
    assert not any("connect" in line for lines in sent.values() for line in lines), sent  # B never connected
    assert not (tmp_path / "b").exists()  # no results folder for a run that never owned the bench
    print(f"second run refused after {refused_after:.2f} s")

    out_a, err_a = first.communicate(timeout=120)
    assert first.returncode == 0, out_a + err_a
    samples = rows(folder / "samples.csv")
    energised = [i for i, r in enumerate(samples) if float(r["inlet.current_a"]) > 9.0]
    held = samples[energised[0]: energised[-1] + 1]
    assert len(held) > 50 and all(float(r["inlet.current_a"]) > 9.0 for r in held), "the first run was interrupted"


def test_two_pcs_the_fixture_refuses_the_second_and_kill_9_of_the_owner_blocks_nothing(
        sim: StandaloneSim, tmp_path: Path) -> None:
    pc1, pc2 = env_with(tmp_path / "pc1-locks"), env_with(tmp_path / "pc2-locks")
    owner = run_plan(sim.config, "test_long_hold", "DUT-A", tmp_path / "a", pc1)
    holding(sim, tmp_path / "a")
    before = wire(sim)
    second = run_plan(sim.config, "test_pass", "DUT-B", tmp_path / "b", pc2)
    out, err = second.communicate(timeout=60)
    sent = new_lines(before, wire(sim))
    assert second.returncode == 75, out + err
    assert "claimed by another session" in err and len(err.strip().splitlines()) == 1, err
    scpi = {name: lines for name, lines in sent.items() if name != "inlet"}
    assert not any("connect" in line for lines in scpi.values() for line in lines), scpi  # power units untouched
    refused = [line for line in sent["inlet"] if " claim=" in line]
    assert refused, sent["inlet"]  # the fixture saw the claim, and refused it (exception 6)
    assert read_state(sim.config).inlet_current > 9.0, "the owner's current is untouched"

    os.kill(owner.pid, signal.SIGKILL)
    killed = time.monotonic()
    owner.wait(10)
    state = wait_until(lambda: (s := read_state(sim.config)).safe and s, HEARTBEAT_TIMEOUT + 5.0,
                       "the bench to become safe after kill -9", interval=0.02)
    print(f"bench safe {time.monotonic() - killed:.2f} s after kill -9 of the owner")
    assert state.heartbeat_tripped, "made safe by the fixture's watchdog, which also ended the dead claim"

    # Nothing stale blocks either PC. The watchdog's trip is latched on the fixture: the next session
    # is told, and re-arms only with an operator's acknowledgement (here the recorded option).
    for env, who in ((pc2, "the other PC"), (pc1, "the dead owner's PC")):
        nxt = run_plan(sim.config, "test_pass", "DUT-C", tmp_path / f"c-{who[4:9]}", env, "--rearm-after-trip")
        out, err = nxt.communicate(timeout=120)
        assert nxt.returncode == 0, f"{who}: {out}{err}"


def test_rig_safe_during_a_hold_names_the_owner_and_trips_the_run_within_one_sample(
        sim: StandaloneSim, tmp_path: Path) -> None:
    env = env_with(tmp_path / "locks")
    owner = run_plan(sim.config, "test_long_hold", "DUT-A", tmp_path / "a", env)
    folder = holding(sim, tmp_path / "a")
    safe = rig_command("safe", "--rig", str(sim.config), env=env)
    out, err = safe.communicate(timeout=60)
    assert safe.returncode == 0, out + err
    interrupted = [line for line in out.splitlines() if line.startswith("interrupted: ")]
    assert len(interrupted) == 1 and f"pid {owner.pid}" in interrupted[0] and "DUT-A" in interrupted[0], out

    out_a, err_a = owner.communicate(timeout=60)
    assert owner.returncode == 3, out_a + err_a
    meta = json.loads((folder / "run.json").read_text())
    # rig safe left the units in remote control for their owner, whose own safe state then succeeds
    assert all(line.startswith("ok") for line in meta["final_safe_state"]), meta["final_safe_state"]
    trips = meta["safety_trips"]
    assert trips and "another session (rig safe)" in trips[0]["reason"], trips
    trip_time = trips[0]["time_s"]
    samples = rows(folder / "samples.csv")
    period = 1.0  # the simulator's rig config: safety.sample_period
    on = next(i for i, r in enumerate(samples) if float(r["inlet.current_a"]) > 9.0)
    changed = next(float(r["time_s"]) for r in samples[on:] if float(r["inlet.current_a"]) < 9.0)
    assert trip_time <= changed + period, (trip_time, changed)
    measurements = rows(folder / "measurements.csv")
    assert [m["name"] for m in measurements] == ["pp.unplugged"]  # taken before; nothing after the switch-off
    assert all(float(m["time_s"]) < trip_time for m in measurements)


def test_beside_an_owner_check_and_pytest_refuse_and_monitor_reads(sim: StandaloneSim, tmp_path: Path) -> None:
    env = env_with(tmp_path / "locks")
    owner = run_plan(sim.config, "test_long_hold", "DUT-A", tmp_path / "a", env)
    holding(sim, tmp_path / "a")
    try:
        before = wire(sim)
        check = rig_command("check", "--rig", str(sim.config), env=env)
        plain_pytest = subprocess.Popen(
            [sys.executable, "-m", "pytest", PLANS, "-k", "test_pass", "--rig", str(sim.config), "--dut", "DUT-B",
             "--results", str(tmp_path / "b"), "-q", "-p", "no:cacheprovider"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        outputs = []
        for proc in (check, plain_pytest):
            out, err = proc.communicate(timeout=60)
            outputs.append((proc.returncode, out, err))
        sent = new_lines(before, wire(sim))
        assert not any("connect" in line for lines in sent.values() for line in lines), sent
        for code, out, err in outputs:
            assert code == 75 and f"pid {owner.pid}" in out + err, out + err
        monitor = rig_command("monitor", "--rig", str(sim.config), "--count", "2", env=env)
        out, err = monitor.communicate(timeout=60)
        assert monitor.returncode == 0 and "inlet.current_a=" in out, out + err
        assert read_state(sim.config).inlet_current > 9.0, "the owner's run was not disturbed"
    finally:
        owner.send_signal(signal.SIGINT)
        owner.communicate(timeout=60)
