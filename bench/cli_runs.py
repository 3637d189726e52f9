"""The command line timed as a technician meets it, each run in a fresh subprocess (wall time, including
interpreter start, imports and the simulated bench's start):

- ``endurance_1h_wall_s``: ``rig run test_plans/test_endurance.py --sim --dut BENCH -k temperature --plain``
  at the default time scale (1000 rig s per real s): the continuous-current hold, up to one hour of rig
  time (it ends early at thermal steady state; the hold length is read back from the run's ``run.log``);
- ``suite_wall_s``: ``rig run --sim --dut BENCH --tier 1000 --plain``, the whole NACS suite;
- ``cli_help_s``: ``rig --help``, best of 5 (a cold interpreter each time; the OS file cache is warm).

``--quick`` runs the hold at time scale 10000 and the suite reduced to ``-k proximity``; those values are
marked in their notes and are not comparable with the full run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import Figure

REPO = Path(__file__).resolve().parent.parent


def rig_command() -> list[str]:
    """The ``rig`` entry point beside this interpreter (``.venv/bin/rig``), else ``python -m rig``."""
    script = Path(sys.executable).parent / "rig"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rig"]


def _timed(args: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    return time.perf_counter() - t0, proc


def _outcome(proc: subprocess.CompletedProcess[str]) -> str:
    if proc.returncode == 0:
        return "exit 0"
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    return f"exit {proc.returncode}: {' | '.join(tail)}"


def endurance(quick: bool) -> Figure:
    with tempfile.TemporaryDirectory(prefix="bench-endurance-") as tmp:
        args = [*rig_command(), "run", "test_plans/test_endurance.py", "--sim", "--dut", "BENCH", "--yes",
                "-k", "temperature", "--plain", "--results", tmp]
        if quick:
            args += ["--time-scale", "10000"]
        wall, proc = _timed(args, 300)
        logs = sorted(Path(tmp).glob("*/run.log"))
        text = logs[0].read_text(encoding="utf-8") if logs else ""
    hold = re.search(r"endurance hold (\d+(?:\.\d+)?) s(?:; (.*))?", text)
    hold_s = float(hold.group(1)) if hold else float("nan")
    note = (f"{_outcome(proc)}; hold {hold_s:.0f} rig s ({hold.group(2) if hold and hold.group(2) else 'see run.log'})"
            f"{'; QUICK: time scale 10000' if quick else '; time scale 1000'}")
    return Figure("endurance_1h_wall_s", wall if proc.returncode == 0 else float("nan"), "s", 10.0, "<=", note,
                  {"hold_rig_s": hold_s, "returncode": proc.returncode,
                   "rig_s_per_wall_s": hold_s / wall if wall else float("nan")})


def suite(quick: bool) -> Figure:
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        args = [*rig_command(), "run", "--sim", "--dut", "BENCH", "--yes", "--tier", "1000", "--plain",
                "--results", tmp]
        if quick:
            args += ["-k", "proximity"]
        wall, proc = _timed(args, 600)
    summary = re.search(r"^(PASS|FAIL)[^\n]*\d+ passed[^\n]*$", proc.stdout, re.MULTILINE)
    note = f"{_outcome(proc)}; {summary.group(0) if summary else 'no summary line'}"
    if quick:
        note += "; QUICK: -k proximity only"
    return Figure("suite_wall_s", wall if proc.returncode == 0 else float("nan"), "s", 60.0, "<=", note,
                  {"returncode": proc.returncode})


def cli_help() -> Figure:
    times = []
    for _ in range(5):
        wall, proc = _timed([*rig_command(), "--help"], 30)
        if proc.returncode == 0:
            times.append(wall)
    best = min(times) if times else float("nan")
    return Figure("cli_help_s", best, "s", 0.3, "<=", f"best of 5 cold starts of {' '.join(rig_command())} --help",
                  {"all_s": times})


def run(quick: bool) -> list[Figure]:
    return [endurance(quick), suite(quick), cli_help()]
