"""Rig configs: the example loads; every malformed one fails with one line naming file, key, expectation."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from rig.cli import main
from rig.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "rigs" / "example-lab.toml"


def test_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.fixture.name == "inlet"
    assert cfg.paths["hc"].supplies == ("psu_hc1", "psu_hc2", "psu_hc3")
    assert cfg.instruments["psu_hv"].calibration_due == dt.date(2027, 3, 1)
    assert len(cfg.sha256) == 64


def mutate(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text()
    assert old in text, old
    path = tmp_path / "rig.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(("old", "new", "message"), [
    ('driver = "ea-psi"', 'driver = "acme-9000"',
     r"instruments\.psu_hv\.driver: expected one of .*ea-psi.*got 'acme-9000'"),
    ("voltage = 1500", 'voltage = "1500"', r"instruments\.psu_hv\.rating\.voltage: expected a number, got '1500'"),
    ("voltage = 1500", "voltage = -5", r"rating\.voltage: expected a finite number > 0, got -5"),
    ("max_voltage = 1100.0", "max_voltgae = 1100.0", r"safety\.max_voltgae: expected no such key"),
    ("selector = 2", "selector = 1", r"paths\.hc\.selector: expected a selector no other path uses, got 1"),
    ('loads = ["load_hc1", "load_hc2"]', 'loads = ["load_hc1", "psu_hv"]', r"'psu_hv' is a supply"),
    ('supplies = ["psu_hv"]', 'supplies = ["psu_zz"]', r"paths\.hv\.supplies: expected names of \[instruments\]"),
    ('resource = "modbus+tcp://192.168.10.40:502"', 'resource = "TCPIP::1.2.3.4::502::SOCKET"',
     r"instruments\.inlet\.resource: expected .*not a Modbus resource"),
    ("calibration_due = 2027-03-01", 'calibration_due = "soon"', r"calibration_due: expected a TOML date"),
    ("unit_id = 1", "unit_id = 300", r"instruments\.inlet\.unit_id: expected an integer from 0 to 247, got 300"),
    ('driver = "nacs-fixture"', 'driver = "ea-psi"', r"instruments\.inlet"),
    ("[rig]", "[rigg]", r"rigg: expected no such key"),
    ("sample_period = 1.0", "sample_period = nan", r"safety\.sample_period: expected a finite number > 0"),
    # Issue 11 item 4: every number finite, and within what the hardware can do.
    ("heartbeat_timeout = 2.0", "heartbeat_timeout = 0.0004",
     r"safety\.heartbeat_timeout: expected a finite number >= 0\.1 and <= 10, got 0\.0004"),
    ("heartbeat_timeout = 2.0", "heartbeat_timeout = inf", r"safety\.heartbeat_timeout: expected a finite number"),
    ("heartbeat_timeout = 2.0", "heartbeat_timeout = 1e400", r"safety\.heartbeat_timeout: expected a finite number"),
    ("heartbeat_timeout = 2.0", "heartbeat_timeout = 11.0", r"safety\.heartbeat_timeout: .* <= 10, got 11\.0"),
    ("max_voltage = 1100.0", "max_voltage = inf", r"safety\.max_voltage: expected a finite number > 0, got inf"),
    ("max_current = 1300.0", "max_current = 1e400", r"safety\.max_current: expected a finite number > 0, got inf"),
    ("discharge_timeout = 10.0", "discharge_timeout = inf", r"safety\.discharge_timeout: expected a finite number"),
    ("instrument_watchdog = 5.0", "instrument_watchdog = 0.4",
     r"safety\.instrument_watchdog: expected a finite number >= 1 and <= 3600, got 0\.4"),
    ("voltage = 1500", "voltage = inf", r"instruments\.psu_hv\.rating\.voltage: expected a finite number > 0, got inf"),
])
def test_malformed_config_names_file_key_and_expectation(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = mutate(tmp_path, old, new)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert "\n" not in str(info.value)


def test_not_toml_at_all(tmp_path: Path) -> None:
    path = tmp_path / "rig.toml"
    path.write_text("[rig\nname = ")
    with pytest.raises(ConfigError, match=r"rig\.toml: not valid TOML"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read rig config"):
        load_config("/nonexistent/rig.toml")


def test_cli_reports_a_bad_config_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = mutate(tmp_path, 'driver = "ea-psi"', 'driver = "acme-9000"')
    result = CliRunner().invoke(main, ["check", "--rig", str(path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "instruments.psu_hv.driver" in result.stderr


def test_config_is_data_not_code(tmp_path: Path) -> None:
    """A config cannot name an import path: only registry names are accepted."""
    path = mutate(tmp_path, 'driver = "ea-psi"', 'driver = "os.system"')
    with pytest.raises(ConfigError, match="expected one of"):
        load_config(path)
    assert tomllib.loads(path.read_text())["instruments"]["psu_hv"]["driver"] == "os.system"


def test_a_config_written_by_rig_sim_says_its_bench_is_simulated(bench, tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(bench.config_toml())
    assert load_config(path).simulated is True
    assert load_config(ROOT / "rigs" / "example-lab.toml").simulated is False
    path.write_text(bench.config_toml().replace("simulated = true", "simulated = 1"))
    with pytest.raises(ConfigError, match=r"rig\.simulated: expected true or false, got 1"):
        load_config(path)


@pytest.mark.parametrize(("require", "message"), [
    ('["watchdog"]', r"instruments\.psu_hv\.require: expected feature names, each one of status, got 'watchdog'"),
    ('"status"', r"instruments\.psu_hv\.require: expected a list of feature names, each one of status, got 'status'"),
    ("[1]", r"instruments\.psu_hv\.require: expected a list of feature names, each one of status, got \[1\]"),
])
def test_required_capabilities_are_the_drivers_probed_features(tmp_path: Path, require: str, message: str) -> None:
    path = mutate(tmp_path, 'driver = "ea-psi"\n', f'driver = "ea-psi"\nrequire = {require}\n')
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(path)
    assert "\n" not in str(exc.value)


def test_a_valid_required_capability_loads(tmp_path: Path) -> None:
    path = mutate(tmp_path, 'driver = "ea-psi"\n', 'driver = "ea-psi"\nrequire = ["status"]\n')
    assert load_config(path).instruments["psu_hv"].require == ("status",)
