"""`rig safe` (every step reported, unreachable instruments named) and `rig monitor` (read-only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruments.roles import LoadMode
from instruments.sim.bench import SimulatedBench
from rig.cli import main
from rig.session import Rig
from tests.safe_bench import read_state


@pytest.fixture
def energised(bench: SimulatedBench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The high-voltage path energised by a session that owns the bench and keeps it (heartbeat fed,
    sampler stopped so it does not react): what a technician meets when they reach for `rig safe`."""
    from rig.config import load_config

    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    config = tmp_path / "sim.toml"
    config.write_text(bench.config_toml())
    rig = Rig(load_config(config), clock=bench.clock)
    rig.open()
    path = rig.path_for(400, 5)
    rig.connect(path)
    rig.source(path, 400, 6)
    rig.sink(path, LoadMode.CC, 5)
    rig.sampler.stop()
    try:
        yield config
    finally:
        rig.close()


def test_rig_safe_makes_an_energised_bench_safe_and_reports_each_step(energised: Path) -> None:
    assert read_state(energised).inlet_current > 4
    result = CliRunner().invoke(main, ["safe", "--rig", str(energised)])
    assert result.exit_code == 0, result.output
    for step in ("load_hv load input off", "psu_hv supply output off", "bus discharged", "contactors open"):
        assert f"ok   {step}" in result.stdout
    interrupted = next(line for line in result.stdout.splitlines() if line.startswith("interrupted: "))
    assert f"pid {os.getpid()}" in interrupted  # the owner, named from this PC's bench lock
    assert "bench safe" in result.stdout
    assert read_state(energised).safe


def test_rig_safe_names_an_unreachable_instrument_and_still_makes_the_rest_safe(
        bench: SimulatedBench, energised: Path) -> None:
    config = energised
    bench.kill("load_hc1")
    result = CliRunner().invoke(main, ["safe", "--rig", str(config)])
    assert result.exit_code == 3
    assert "FAIL unreachable: load_hc1:" in result.stdout
    assert "ok   psu_hv supply output off" in result.stdout and "ok   contactors open" in result.stdout
    assert "bench NOT confirmed safe" in result.stderr
    with bench.model.lock:
        bench.model.advance()
        assert not bench.model.paths["hv"].supplies[0].delivering and not bench.model.fixture.contactor_closed


def test_rig_monitor_is_read_only(bench: SimulatedBench, tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(bench.config_toml())
    logs = {name: len(server.dialect.log) for name, server in bench.servers.items()}
    writes = len(bench.fixture.writes)
    result = CliRunner().invoke(main, ["monitor", "--rig", str(config), "--count", "3", "--rate", "20"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and "inlet.temp_dc_plus_c=25" in lines[0] and "psu_hv.voltage_v=0" in lines[0]
    for name, server in bench.servers.items():
        sent = list(server.dialect.log)[logs[name]:]
        assert all(line.endswith("?") or "?;" in line for line in sent), f"{name} got a setting: {sent}"
    assert len(bench.fixture.writes) == writes, "the fixture got a write"
