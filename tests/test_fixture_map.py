"""The fixture register map: the documented table, encoding, and the map served over Modbus TCP."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from instruments import fixture_map as fm
from instruments.sim.bench import SimulatedBench

ROOT = Path(__file__).resolve().parents[1]


def test_documented_map_is_generated_from_the_table() -> None:
    assert (ROOT / "docs" / "fixture-register-map.md").read_text() == fm.markdown(), (
        "docs/fixture-register-map.md is stale: run `python -m instruments.fixture_map > docs/fixture-register-map.md`"
    )


def test_input_block_is_contiguous_and_registers_do_not_overlap() -> None:
    for table in (fm.INPUT_REGISTERS, fm.HOLDING_REGISTERS):
        for before, after in itertools.pairwise(table):
            assert after.address == before.address + before.words, (before.name, after.name)


@pytest.mark.parametrize(("name", "value", "words"), [
    ("temp_dc_plus", -12.5, [0xFF83]),  # int16, 0.1 °C: -125
    ("iso_dc_plus", 50e6, [0x0000, 0xC350]),  # uint32 kΩ, high word first: 50000
    ("inlet_current", -900.0, [0xFFFE, 0xA070]),  # int32, 0.01 A: -90000
    ("cp_duty", 53.25, [5325]),
])
def test_encode_decode_round_trip(name: str, value: float, words: list[int]) -> None:
    reg = fm.BY_NAME[name]
    assert reg.encode(value) == words
    assert reg.decode(words) == pytest.approx(value)


def test_encode_refuses_values_outside_the_write_range() -> None:
    with pytest.raises(ValueError, match=r"cp_duty: 101 % outside 0\.\.100 %"):
        fm.BY_NAME["cp_duty"].encode(101)


def test_plain_pymodbus_client_reads_the_documented_registers(bench: SimulatedBench) -> None:
    """What a lab engineer does with the map in one hand and pymodbus in the other."""
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        ident = client.read_input_registers(0, count=1, device_id=1).registers[0]
        temps = client.read_input_registers(7, count=5, device_id=1).registers
        pp = client.read_input_registers(16, count=1, device_id=1).registers[0]
        assert client.write_register(107, 1, device_id=1).isError() is False  # connector latched
        pp_latched = client.read_input_registers(16, count=1, device_id=1).registers[0]
    assert ident == 0x4E43
    assert [t / 10 for t in temps] == [25.0] * 5  # DC+, DC-, inlet 1, inlet 2, ambient at 25 °C
    assert pp / 1000 == pytest.approx(4.455, abs=0.002)  # unplugged
    assert pp_latched / 1000 == pytest.approx(1.505, abs=0.002)


def test_fixture_refuses_out_of_range_writes_with_exception_3(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        reply = client.write_register(fm.BY_NAME["cp_duty"].address, 10001, device_id=1)
    assert reply.isError() and reply.exception_code == 3


def test_fixture_refuses_closing_contactors_without_a_path_with_exception_4(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        reply = client.write_register(fm.BY_NAME["contactors"].address, 1, device_id=1)
        status = client.read_input_registers(4, count=1, device_id=1).registers[0]
    assert reply.isError() and reply.exception_code == 4
    assert status & 0b11 == 0  # feedback: both contactors open
