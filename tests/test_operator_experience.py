"""What a technician sees and does: output off a terminal, operator prompts, calibration rules."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruments.sim.bench import SimulatedBench
from rig.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_json(results: Path) -> dict:
    return json.loads(next(results.glob("*/run.json")).read_text())


def test_off_a_terminal_rig_run_prints_plain_lines_and_a_summary(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig", "run", "--sim", "--dut", "PLAIN", "-k", "proximity",
                           "--results", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("[  1/3] PASS    test_proximity::test_proximity_voltage[unplugged]")
    assert "\x1b[" not in proc.stdout, "no terminal control codes in a log"
    assert "pp.latched = 1.505 V" in proc.stdout and "PASS: 3 passed" in proc.stdout
    assert re.search(r"results: .*PLAIN", proc.stdout)


def test_prompts_are_answered_by_yes_and_recorded(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig", "run", "--sim", "--dut", "YES", "--yes", "-k", "e-stop",
                           "test_plans/test_emergency_shutdown.py", "--results", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prompts = run_json(tmp_path)["prompts"]
    assert len(prompts) == 1 and prompts[0]["answer"] is True and prompts[0]["answered_by"] == "--yes"
    assert "press the E-stop" in prompts[0]["text"]


def test_without_a_terminal_or_yes_a_run_with_prompts_refuses_before_energising(tmp_path: Path) -> None:
    """Issue 11 item 6: a safety prompt is never answered by the absence of a terminal."""
    proc = subprocess.run([sys.executable, "-m", "rig", "run", "--sim", "--dut", "CI", "-k", "e-stop",
                           "test_plans/test_emergency_shutdown.py", "--results", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "stopped: test_emergency_shutdown[e-stop] ask(s) the operator to confirm a step, and there is no terminal "
        "to answer: run from a terminal, or pass --yes (recorded)"]
    assert "NOT RUN: 1 not run" in proc.stdout
    meta = run_json(tmp_path)
    assert (meta["outcome"], meta["exit_status"], meta["prompts"]) == ("refused", 2, [])
    assert "final_safe_state" not in meta, "the bench was never opened"
    assert all(not i["identity"] for i in meta["instruments"].values())
    samples = next(tmp_path.glob("*/samples.csv")).read_text().splitlines()
    assert len(samples) == 1, "not one sample: nothing was energised"


def run_in_terminal(args: list[str], answer: str, timeout: float = 90) -> tuple[int, str]:
    """Run a command on a pseudo-terminal, answer its first prompt, return (exit code, screen text)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env, close_fds=True)
    os.close(slave)
    screen, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if not answered and b"[y/N]" in screen:
                os.write(master, answer.encode() + b"\r")
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(10)
    os.close(master)
    return code, screen.decode("utf-8", "replace")


@pytest.mark.parametrize(("answer", "code"), [("y", 0), ("n", 0)])
def test_an_operator_answers_a_prompt_at_the_terminal(tmp_path: Path, answer: str, code: int) -> None:
    exit_code, screen = run_in_terminal(
        [sys.executable, "-m", "rig", "run", "--sim", "--dut", "TTY", "test_plans/test_emergency_shutdown.py",
         "-k", "e-stop", "--results", str(tmp_path)], answer)
    assert ">>> The fixture will press the E-stop with current flowing" in screen
    assert exit_code == code, screen[-2000:]
    prompt = run_json(tmp_path)["prompts"][0]
    assert (prompt["answered_by"], prompt["answer"]) == ("operator", answer == "y")
    if answer == "n":  # aborted by the operator: not a FAIL verdict on the DUT, and the run is not a PASS
        assert "aborted by operator" in screen and "FAIL" not in screen
        assert "INCOMPLETE: 1 not run" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
        assert run_json(tmp_path)["counts"] == {"passed": 0, "failed": 0, "skipped": 1, "error": 0}


def config_with_calibration(bench: SimulatedBench, tmp_path: Path, due: dt.date) -> Path:
    text = bench.config_toml().replace('[instruments.load_hv]\n', f'[instruments.load_hv]\ncalibration_due = {due}\n')
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


def test_check_warns_of_calibration_due_within_30_days(bench: SimulatedBench, tmp_path: Path) -> None:
    config = config_with_calibration(bench, tmp_path, dt.date.today() + dt.timedelta(days=12))
    result = CliRunner().invoke(main, ["check", "--rig", str(config)])
    assert result.exit_code == 0, result.output
    assert "calibration due soon" in result.stdout and "(in 12 days)" in result.stdout


def test_run_refuses_an_expired_calibration_unless_overridden_and_records_it(
        bench: SimulatedBench, tmp_path: Path) -> None:
    config = config_with_calibration(bench, tmp_path, dt.date.today() - dt.timedelta(days=3))
    check = CliRunner().invoke(main, ["check", "--rig", str(config)])
    # Issue 11 item 9: `rig check` agrees with `rig run`: an expired calibration makes the bench not ready.
    assert check.exit_code == 3 and "calibration expired" in check.stdout
    assert "not ready: load_hv (calibration expired)" in check.output
    base = [sys.executable, "-m", "rig", "run", "--rig", str(config), "--dut", "CAL", "-k", "proximity",
            "--results", str(tmp_path / "results")]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert refused.returncode == 3
    assert "load_hv: calibration was due" in refused.stderr and "--allow-expired-calibration" in refused.stderr
    meta = run_json(tmp_path / "results")
    assert (meta["outcome"], meta["exit_status"]) == ("refused", 3)
    assert "final_safe_state" not in meta, "nothing was opened"
    shutil.rmtree(tmp_path / "results")
    allowed = subprocess.run([*base, "--allow-expired-calibration"], capture_output=True, text=True, timeout=120,
                             cwd=ROOT)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    meta = run_json(tmp_path / "results")
    assert meta["calibration_override"] is True
    assert meta["instruments"]["load_hv"]["calibration_due"] == str(dt.date.today() - dt.timedelta(days=3))


def test_on_a_terminal_the_live_display_shows_the_hold_and_readings_while_tests_run(tmp_path: Path) -> None:
    """The display writes from its own thread while pytest captures the test's output: it must still
    reach the terminal (it once did not)."""
    _, screen = run_in_terminal(
        [sys.executable, "-m", "rig", "run", "test_plans/test_endurance.py", "-k", "temperature", "--sim",
         "--time-scale", "400", "--dut", "LIVE", "--results", str(tmp_path)], answer="y")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "hold     endurance at 900 A:" in text and "elapsed, at most" in text
    assert re.search(r"readings bus \d+\.\d V   inlet 900\.0 A   hottest contact \d+\.\d °C \(trip at 90 °C\)", text)
    assert "PASS: 1 passed" in text
