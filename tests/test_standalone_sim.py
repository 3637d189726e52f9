"""`rig sim` standalone, used by plain pyvisa-py and plain pymodbus sessions, and by `rig check --rig`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa
from pymodbus.client import ModbusTcpClient

from tests.safe_bench import ROOT, StandaloneSim

pytestmark = pytest.mark.slow


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[StandaloneSim]:
    s = StandaloneSim(tmp_path, time_scale=1.0)
    yield s
    s.stop()


def test_plain_pyvisa_reads_a_supply_named_in_the_written_config(sim: StandaloneSim) -> None:
    config = tomllib.loads(sim.config.read_text())
    resource = config["instruments"]["psu_hv"]["resource"]
    assert resource.startswith("TCPIP::127.0.0.1::") and resource.endswith("::SOCKET")
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=2000)
    try:
        assert inst.query("*IDN?").startswith("EA Elektro-Automatik GmbH & Co. KG,PSI 11500-60 4U,")
        assert inst.query("MEAS:VOLT?") == "0.00 V"
    finally:
        inst.close()


def test_plain_pymodbus_reads_the_temperatures_where_the_map_says(sim: StandaloneSim) -> None:
    fixture = tomllib.loads(sim.config.read_text())["instruments"]["inlet"]
    host, port = fixture["resource"].removeprefix("modbus+tcp://").rsplit(":", 1)
    with ModbusTcpClient(host, port=int(port), timeout=1, retries=0) as client:
        # docs/fixture-register-map.md: input registers 7-11, int16, 0.1 °C: DC+, DC-, inlet 1, inlet 2, ambient
        raw = client.read_input_registers(7, count=5, device_id=fixture["unit_id"]).registers
    assert [r / 10 for r in raw] == [25.0] * 5


def test_rig_check_against_the_written_config_exits_0(sim: StandaloneSim) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig", "check", "--rig", str(sim.config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 8 instruments identified" in proc.stdout


def test_rig_sim_prints_every_resource_string(sim: StandaloneSim) -> None:
    sim.stop()
    out, _ = sim.proc.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0].startswith("psu_hv     TCPIP::127.0.0.1::")
    assert any(line.startswith("inlet      modbus+tcp://127.0.0.1:") for line in lines)
    assert f"rig config written to {sim.config}" in out
