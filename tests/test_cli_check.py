"""`rig check`: against the simulated bench, a written config, and a wrong instrument."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from instruments.sim.bench import SimulatedBench
from rig.cli import main


def test_check_sim_identifies_every_instrument() -> None:
    result = CliRunner().invoke(main, ["check", "--sim"])
    assert result.exit_code == 0, result.output
    assert "all 8 instruments identified" in result.stdout
    assert "PSI 11500-60 4U" in result.stdout


def test_check_names_a_wrong_instrument_and_exits_3(bench: SimulatedBench, tmp_path: Path) -> None:
    text = bench.config_toml()
    hv, load = bench.servers["psu_hv"].resource, bench.servers["load_hv"].resource
    config = tmp_path / "swapped.toml"
    config.write_text(text.replace(f'resource = "{hv}"', 'resource = "SWAP"').replace(
        f'resource = "{load}"', f'resource = "{hv}"').replace('resource = "SWAP"', f'resource = "{load}"'))
    result = CliRunner().invoke(main, ["check", "--rig", str(config)])
    assert result.exit_code == 3
    assert "wrong model" in result.stdout
    assert "not ready: psu_hv (wrong model), load_hv (wrong model)" in result.stderr


def test_check_names_a_missing_instrument(bench: SimulatedBench, tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(bench.config_toml())
    bench.kill("load_hc2")
    result = CliRunner().invoke(main, ["check", "--rig", str(config)])
    assert result.exit_code == 3
    assert "load_hc2: '*IDN?': connection failed: [Errno 111] Connection refused" in result.stdout
    assert "not ready: load_hc2" in result.stderr


def test_usage_error_without_a_bench() -> None:
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2
    assert "give exactly one of --rig FILE or --sim" in result.stderr


def test_check_changes_no_setting_and_lists_capabilities(bench: SimulatedBench, tmp_path: Path) -> None:
    """Item 7 of issue 12: `rig check` wrote SOUR:POW <rating> to the EA supply while taking remote control.
    It now takes no remote control and sends only queries (identity and optional-feature probes)."""
    config = tmp_path / "sim.toml"
    config.write_text(bench.config_toml())
    start = {name: len(server.dialect.log) for name, server in bench.servers.items()}
    result = CliRunner().invoke(main, ["check", "--rig", str(config)])
    assert result.exit_code == 0, result.output
    for name, server in bench.servers.items():
        sent = list(server.dialect.log)[start[name]:]
        assert sent and all(line.endswith("?") for line in sent), (name, sent)
    assert not bench.servers["psu_hv"].dialect.locked
    assert "missing features" in result.stdout and ": no " not in result.stdout
