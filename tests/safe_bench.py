"""Helpers for safety tests: a standalone simulated bench in its own process, and its state read from
outside the way a technician would (read-only drivers over the real protocols)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rig.config import load_config
from rig.monitor import open_read_only

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchState:
    supplies_on: list[str]
    loads_sinking: list[str]
    contactors_closed: bool
    inlet_voltage: float
    inlet_current: float
    heartbeat_tripped: bool
    chain_ok: bool

    @property
    def safe(self) -> bool:
        return (not self.supplies_on and not self.loads_sinking and not self.contactors_closed
                and self.inlet_voltage < 60.0)


def read_state(config: Path) -> BenchState:
    sampler, instruments = open_read_only(load_config(config))
    try:
        sample = sampler.sample_once()
    finally:
        sampler.stop()
        for inst in instruments.values():
            inst.close()
    assert not sample.errors, sample.errors
    f = sample.fixture
    assert f is not None
    return BenchState(
        supplies_on=[n for n, r in sample.supplies().items() if r.output_on],
        loads_sinking=[n for n, r in sample.loads().items() if r.current > 0.5],
        contactors_closed=f.contactor_dc_plus_closed or f.contactor_dc_minus_closed,
        inlet_voltage=f.inlet_voltage,
        inlet_current=f.inlet_current,
        heartbeat_tripped=f.heartbeat_tripped,
        chain_ok=f.safety_chain_ok,
    )


class StandaloneSim:
    """`rig sim --write-config` in a child process, as in the README."""

    def __init__(self, folder: Path, time_scale: float = 20.0, faults: tuple[str, ...] = (),
                 log_dir: Path | None = None) -> None:
        self.config = folder / "sim.toml"
        self.log_dir = log_dir
        logging = ["--log-dir", str(log_dir)] if log_dir else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rig", "sim", "--time-scale", str(time_scale), "--write-config", str(self.config),
             *logging, *(a for fault in faults for a in ("--fault", fault))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.monotonic() + 20
        while not self.config.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rig sim did not start: {self.proc.communicate()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_plan(config: Path, test: str, results: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests/scenarios/plan_exits.py", "-k", test, "--rig", str(config),
         "--dut", "EXIT", "--results", str(results), "-q", "-p", "no:cacheprovider"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def start_rig_run(config: Path, test: str, results: Path, *extra: str,
                  preexec_fn=None) -> subprocess.Popen[str]:
    """`rig run` (the CLI a technician uses, its exit codes) on a plan of tests/scenarios/plan_exits.py."""
    return subprocess.Popen(
        [sys.executable, "-m", "rig", "run", "tests/scenarios/plan_exits.py", "-k", test, "--rig", str(config),
         "--dut", "EXIT", "--results", str(results), "--plain", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
        preexec_fn=preexec_fn)


def run_folder(results: Path) -> Path:
    """The folder of the one run that writes into ``results`` (waited for)."""
    return wait_until(lambda: next(iter(sorted(results.glob("*/samples.csv"))), None), 30, "the run folder").parent


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def rig_command(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`rig ARGS...` in its own process, as a technician types it (output captured)."""
    return subprocess.Popen([sys.executable, "-m", "rig", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)
