"""Issue 11, "fail closed, and tell the truth": the exits and faults a lab meets, tried from outside.

The bench is a standalone `rig sim` in its own process; `rig run` (the CLI, with its exit codes) runs a
plan against it through `--rig` in another process; the bench's state is read from outside over the
real protocols (tests/safe_bench.py). Full disks are made by the kernel: RLIMIT_FSIZE in the run's
process with SIGXFSZ ignored, so writes fail with EFBIG, a real OS error.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.safe_bench import ROOT, StandaloneSim, read_state, run_folder, start_rig_run, wait_until

pytestmark = pytest.mark.slow
HEARTBEAT_TIMEOUT = 2.0  # rig config default, real seconds


def the_run(results: Path) -> Path:
    """The one run folder in ``results`` (beside it, the results database ``rig.sqlite``)."""
    [folder] = [p for p in results.iterdir() if p.is_dir()]
    return folder


def meta_of(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def energised(sim: StandaloneSim, tmp_path: Path, *extra: str, preexec_fn: Callable[[], None] | None = None,
              config: Path | None = None) -> tuple[subprocess.Popen[str], Path]:
    """`rig run` holding 10 A (with ``config``, the run's own rig config; the bench is read with the sim's)."""
    proc = start_rig_run(config or sim.config, "test_long_hold", tmp_path / "results", *extra, preexec_fn=preexec_fn)
    wait_until(lambda: proc.poll() is not None or read_state(sim.config).inlet_current > 9.0, 60,
               "10 A through the inlet")
    assert proc.poll() is None, proc.communicate()
    folder = run_folder(tmp_path / "results")
    wait_until(lambda: (folder / "samples.csv").read_text().count("\n") > 5, 30, "samples on disk")
    return proc, folder


def assert_made_safe_by_software(sim: StandaloneSim) -> None:
    state = read_state(sim.config)
    assert state.safe, state
    assert not state.heartbeat_tripped, "made safe by the software, not left to the heartbeat watchdog"


def complete_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [r for r in rows if len(r) == len(rows[0])]


# --- item 1: further signals never cut the safe state short ---------------------------------------------

SEQUENCES = {
    "INT+INT 2 ms": [(signal.SIGINT, 0.0), (signal.SIGINT, 0.002)],
    "INT+INT 30 ms": [(signal.SIGINT, 0.0), (signal.SIGINT, 0.03)],
    "INT x5": [(signal.SIGINT, 0.0)] + [(signal.SIGINT, 0.01)] * 4,
    "TERM+INT": [(signal.SIGTERM, 0.0), (signal.SIGINT, 0.002)],
}


@pytest.mark.parametrize("sequence", list(SEQUENCES))
def test_repeated_signals_never_cut_the_safe_state_short(sim: StandaloneSim, tmp_path: Path, sequence: str) -> None:
    proc, folder = energised(sim, tmp_path)
    for sig, delay in SEQUENCES[sequence]:
        time.sleep(delay)
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    # Said once at most. Two of the same signal a few ms apart may reach the process as one (the kernel
    # keeps one pending SIGINT while the process waits for a CPU); two different signals are two.
    told = err.count("making the bench safe, please wait")
    assert told == 1 if sequence == "TERM+INT" else told <= 1, err
    assert "interrupted: the bench was left in the safe state" in err
    assert "Traceback" not in out + err
    assert_made_safe_by_software(sim)
    meta = meta_of(folder)
    assert (meta["finished"], meta["outcome"], meta["exit_status"]) == (True, "interrupted", 130)
    assert meta["bench_confirmed_safe"] is True
    assert all(line.startswith("ok") for line in meta["final_safe_state"]), meta["final_safe_state"]
    assert "INTERRUPTED:" in out and "PASS" not in out


# --- item 2: "safe" is said only when every step was confirmed ------------------------------------------


def test_a_stalled_bench_is_reported_not_confirmed_safe_and_exits_3(tmp_path: Path) -> None:
    sim = StandaloneSim(tmp_path)
    try:
        # The run's I/O timeouts short, so its stalled safe state gives up in seconds rather than half a
        # minute (the bench is still read from outside with the default timeouts).
        impatient = tmp_path / "impatient.toml"
        impatient.write_text(sim.config.read_text().replace('resource = "', 'timeout = 0.3\nresource = "'))
        proc, folder = energised(sim, tmp_path, config=impatient)
        os.kill(sim.proc.pid, signal.SIGSTOP)  # the simulator stalls: no instrument answers any more
        try:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            os.kill(sim.proc.pid, signal.SIGCONT)
        assert proc.returncode == 3, out + err
        assert "left in the safe state" not in err
        lines = [line for line in err.splitlines() if line.startswith("bench NOT confirmed safe: ")]
        assert len(lines) == 1 and "contactors open" in lines[0] and "supply output off" in lines[0], err
        meta = meta_of(folder)
        assert (meta["exit_status"], meta["bench_confirmed_safe"]) == (3, False)
        # What software could not do, the hardware backstop does: the withheld heartbeat trips the fixture.
        state = wait_until(lambda: (s := read_state(sim.config)).safe and s, HEARTBEAT_TIMEOUT + 3,
                           "the fixture's watchdog to make the bench safe", interval=0.05)
        assert state.heartbeat_tripped
    finally:
        sim.stop()


# --- item 3: the rig never energises what it cannot record ----------------------------------------------


def file_size_limit(limit: int) -> Callable[[], None]:
    """In the child: files may not grow past ``limit`` bytes; writes beyond fail with EFBIG (SIGXFSZ,
    which would kill the process, ignored)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_results_folder_without_room_is_refused_before_the_bench_is_opened(sim: StandaloneSim,
                                                                           tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rig", "run", "--rig", str(sim.config), "--dut", "FULL", "--yes", "--plain",
         "--results", str(tmp_path / "results")],  # the whole suite: an hour of endurance samples
        capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL,
        preexec_fn=file_size_limit(300_000))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("stopped: cannot record ") and "the run needs about" in line and \
        line.endswith("nothing was energised"), line
    meta = meta_of(the_run(tmp_path / "results"))
    assert (meta["outcome"], meta["exit_status"]) == ("refused", 3)
    assert "final_safe_state" not in meta, "the bench was never opened"


def test_an_unwritable_results_folder_is_one_line_and_exit_3(sim: StandaloneSim, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rig", "run", "tests/scenarios/plan_exits.py", "-k", "test_pass", "--rig",
         str(sim.config), "--dut", "RO", "--plain", "--results", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL,
        preexec_fn=file_size_limit(100))  # not even the CSV headers fit: every write fails
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "OSError" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("stopped: cannot record ") and "File too large; nothing was energised" in line, line
    assert not read_state(sim.config).heartbeat_tripped


def test_a_write_that_fails_mid_run_is_a_safety_trip(tmp_path: Path) -> None:
    sim = StandaloneSim(tmp_path, time_scale=200.0)  # 200 samples a second fill the file in seconds
    try:
        proc, folder = energised(sim, tmp_path, preexec_fn=file_size_limit(400_000))
        out, err = proc.communicate(timeout=120)  # no Ctrl-C: the rig must stop by itself
        assert proc.returncode == 3, out + err
        assert "Traceback" not in out + err
        [line] = [x for x in err.splitlines() if x.strip()]
        assert "samples.csv: File too large" in line, err
        assert "PASS" not in out and "TRIPPED:" in out
        assert_made_safe_by_software(sim)
        meta = meta_of(folder)  # run.json is small: it could still be written
        assert (meta["finished"], meta["outcome"], meta["exit_status"]) == (True, "tripped", 3)
        assert "samples.csv: File too large" in meta["safety_trips"][0]["reason"]
        assert all(step.startswith("ok") for step in meta["final_safe_state"])
        rows = complete_rows(folder / "samples.csv")
        assert len(rows) > 100 and (folder / "samples.csv").stat().st_size <= 400_000
    finally:
        sim.stop()


# --- item 7: a bench that cannot be used stops the run once ---------------------------------------------


def test_an_estop_pressed_before_the_run_stops_it_once_with_exit_3(tmp_path: Path) -> None:
    sim = StandaloneSim(tmp_path, faults=("estop",))
    try:
        check = subprocess.run([sys.executable, "-m", "rig", "check", "--rig", str(sim.config)],
                               capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert check.returncode == 3, check.stdout + check.stderr  # `rig check` agrees with `rig run`
        assert check.stderr.splitlines() == ["Error: not ready: inlet (E-stop pressed); `rig run` refuses this bench"]
        proc = subprocess.run(
            [sys.executable, "-m", "rig", "run", "--rig", str(sim.config), "--dut", "ESTOP", "--yes", "--plain",
             "--results", str(tmp_path / "results")],
            capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert proc.stderr.splitlines() == ["stopped: bench not ready: E-stop pressed; release the E-stop and close "
                                            "the interlock loop, then start again"]
        assert "ERROR" not in proc.stdout and "NOT RUN: 28 not run" in proc.stdout
        meta = meta_of(the_run(tmp_path / "results"))
        assert (meta["outcome"], meta["exit_status"]) == ("refused", 3)
        assert read_state(sim.config).safe
    finally:
        sim.stop()


def test_an_unreachable_instrument_stops_the_run_once_and_leaves_a_readable_record(sim: StandaloneSim,
                                                                                   tmp_path: Path) -> None:
    text = sim.config.read_text()
    resource_line = next(line for line in text.splitlines() if "SOCKET" in line)
    dead = tmp_path / "dead.toml"
    dead.write_text(text.replace(resource_line, 'resource = "TCPIP::127.0.0.1::1::SOCKET"', 1))
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "rig", "run", "--rig", str(dead), "--dut", "GONE", "--yes", "--plain",
         "--results", str(results)], capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("stopped: bench not ready: psu_hv: ") and "Connection refused" in line, line
    assert "ERROR" not in proc.stdout
    folder = the_run(results)
    report = subprocess.run([sys.executable, "-m", "rig", "report", "--no-html", str(folder)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert report.returncode == 1 and "refused" in report.stdout, report.stdout + report.stderr


# --- item 8: no silent re-arm after an unexpected trip --------------------------------------------------

TRIP_THEN_ENERGISE = "test_unexpected_trip or test_energise_after_the_trip"


def test_after_an_unexpected_trip_nothing_is_energised_without_an_operator(sim: StandaloneSim,
                                                                           tmp_path: Path) -> None:
    proc = start_rig_run(sim.config, TRIP_THEN_ENERGISE, tmp_path / "results")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    assert err.splitlines() == ["stopped: stopped after a safety trip (E-stop pressed): re-arming needs an "
                                "operator at the terminal (or --rearm-after-trip)"]
    folder = run_folder(tmp_path / "results")
    meta = meta_of(folder)
    assert meta["rearms"] == [] and meta["safety_trips"][0]["expected"] is False
    assert meta["counts"]["passed"] == 0
    rows = complete_rows(folder / "samples.csv")
    test_col = rows[0].index("test")
    assert not any("energise_after" in r[test_col] for r in rows[1:]), "the second test never started"
    assert_made_safe_by_software(sim)


def test_an_explicit_option_re_arms_after_a_trip_and_is_recorded(sim: StandaloneSim, tmp_path: Path) -> None:
    proc = start_rig_run(sim.config, TRIP_THEN_ENERGISE, tmp_path / "results", "--rearm-after-trip")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err  # the first test tripped: the run is still a trip
    meta = meta_of(run_folder(tmp_path / "results"))
    assert meta["rearm_after_trip_option"] is True
    [rearm] = meta["rearms"]
    assert (rearm["acknowledged_by"], rearm["trips"]) == ("--rearm-after-trip", ["E-stop pressed"])
    assert rearm["before"].endswith("test_energise_after_the_trip")
    assert meta["counts"]["passed"] == 1


# --- item 9: the record matches what happened -----------------------------------------------------------


@pytest.mark.parametrize(("test", "code", "headline"), [("test_pass", 0, "PASS: 1 passed"),
                                                         ("test_failed_assertion", 1, "FAIL: 1 failed")])
def test_run_json_holds_the_cli_exit_code(sim: StandaloneSim, tmp_path: Path, test: str, code: int,
                                          headline: str) -> None:
    proc = start_rig_run(sim.config, test, tmp_path / "results")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, out + err
    assert headline in out
    folder = run_folder(tmp_path / "results")
    meta = meta_of(folder)
    assert (meta["exit_status"], meta["pytest_exit_status"]) == (code, code)
    times = [float(r[0]) for r in complete_rows(folder / "samples.csv")[1:]]
    assert times and times[0] >= 0 and times == sorted(times), "samples.csv in time order from 0"


def test_a_selection_that_matches_nothing_prints_no_verdict(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig", "run", "--sim", "--dut", "NONE", "-k", "nomatch", "--plain",
                           "--results", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert proc.stdout.strip() == "", "no stray 'FAIL: ' line"
    assert proc.stderr.splitlines() == ["error: no test matched the selection (plans, -k, -m); nothing was run"]


def test_a_skipped_endurance_test_makes_the_run_incomplete_not_a_bare_pass(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig", "run", "--sim", "--dut", "BIG", "--rated-current", "5000",
                           "-k", "temperature_rise", "--plain", "--results", str(tmp_path), "--yes"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # nothing failed...
    headline = next(line for line in proc.stdout.splitlines() if line.startswith(("PASS", "INCOMPLETE")))
    # ...but nothing passed either: the endurance test was skipped, and the headline says so.
    assert headline.startswith("INCOMPLETE: 1 not run (test_endurance::test_temperature_rise"), headline


def test_messages_print_as_sent_without_markup_or_emoji() -> None:
    import io

    from rig.display import console

    out = io.StringIO()
    console(file=out).print("psu_hv: 'SYST:LOCK:OWN?': no reply")  # rich would print :LOCK: as an emoji
    assert out.getvalue() == "psu_hv: 'SYST:LOCK:OWN?': no reply\n"


def test_a_trip_from_losing_several_instruments_names_each() -> None:
    from instruments.errors import InstrumentFault
    from instruments.roles import Bound
    from rig.safety import LiveLimits, trip_reason
    from rig.sampler import Sample

    limits = LiveLimits(Bound(1000, "x"), Bound(1000, "x"), Bound(90, "x"))
    sample = Sample(0.0, 0.0, {}, {"psu_hv": InstrumentFault("psu_hv", "no reply"),
                                   "load_hv": InstrumentFault("load_hv", "no reply")})
    reason = trip_reason(sample, limits)
    assert reason is not None and "psu_hv" in reason and "load_hv" in reason


def test_an_operator_at_the_terminal_acknowledges_the_trip_before_re_arming(sim: StandaloneSim,
                                                                            tmp_path: Path) -> None:
    from tests.test_operator_experience import run_in_terminal

    results = tmp_path / "results"
    code, screen = run_in_terminal(
        [sys.executable, "-m", "rig", "run", "tests/scenarios/plan_exits.py", "-k", TRIP_THEN_ENERGISE, "--rig",
         str(sim.config), "--dut", "ACK", "--results", str(results)], answer="y")
    assert ">>> The bench tripped: E-stop pressed." in screen
    assert code == 3, screen[-2000:]  # the run tripped once; the operator let it go on
    meta = meta_of(run_folder(results))
    [rearm] = meta["rearms"]
    assert (rearm["acknowledged_by"], rearm["trips"]) == ("operator", ["E-stop pressed"])
    assert meta["counts"]["passed"] == 1
