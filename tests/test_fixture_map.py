"""The fixture register map: the documented table, encoding, and the map served over Modbus TCP."""

from __future__ import annotations

import itertools
import random
import time
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


def test_the_block_decode_gives_each_register_its_own_decode_on_any_words() -> None:
    """``decode_inputs`` unpacks the whole block at once (the sampler's hot path): on blocks of edge
    and random words it gives exactly what each register's own ``decode`` gives for its words."""
    rng = random.Random(3400)
    blocks = [[w] * fm.INPUT_BLOCK_COUNT for w in (0, 1, 0x7FFF, 0x8000, 0xFFFF)]
    blocks += [[rng.randrange(0x10000) for _ in range(fm.INPUT_BLOCK_COUNT)] for _ in range(500)]
    for block in blocks:
        expected = {reg.name: reg.decode(block[reg.address - fm.INPUT_BLOCK_START:][:reg.words])
                    for reg in fm.INPUT_REGISTERS}
        assert fm.decode_inputs(block) == expected
    with pytest.raises(ValueError, match=f"expected {fm.INPUT_BLOCK_COUNT}"):
        fm.decode_inputs([0] * (fm.INPUT_BLOCK_COUNT - 1))


def test_encode_refuses_values_outside_the_write_range() -> None:
    with pytest.raises(ValueError, match=r"cp_duty: 101 % outside 0\.\.100 %"):
        fm.BY_NAME["cp_duty"].encode(101)


TOKEN = 0x1A2B3C4D
OTHER = 0x55667788


def command(client: ModbusTcpClient, token: int, name: str, value: float):
    """One command through the mailbox, as the map documents it: [token hi, token lo, register, value]."""
    return client.write_registers(fm.MAILBOX, fm.mailbox_words(token, fm.BY_NAME[name], value), device_id=1)


def test_plain_pymodbus_client_reads_the_documented_registers(bench: SimulatedBench) -> None:
    """What a lab engineer does with the map in one hand and pymodbus in the other."""
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        ident = client.read_input_registers(0, count=1, device_id=1).registers[0]
        temps = client.read_input_registers(7, count=5, device_id=1).registers
        pp = client.read_input_registers(16, count=1, device_id=1).registers[0]
        assert client.write_registers(113, [TOKEN >> 16, TOKEN & 0xFFFF, 111, 2000], device_id=1).isError() is False
        assert client.write_registers(113, [TOKEN >> 16, TOKEN & 0xFFFF, 107, 1], device_id=1).isError() is False
        pp_latched = client.read_input_registers(16, count=1, device_id=1).registers[0]
        status, tag = client.read_input_registers(4, count=1, device_id=1).registers[0], \
            client.read_input_registers(32, count=1, device_id=1).registers[0]
    assert ident == 0x4E43
    assert [t / 10 for t in temps] == [25.0] * 5  # DC+, DC-, inlet 1, inlet 2, ambient at 25 °C
    assert pp / 1000 == pytest.approx(4.455, abs=0.002)  # unplugged
    assert pp_latched / 1000 == pytest.approx(1.505, abs=0.002)
    assert status & 1 << 7 and tag == TOKEN >> 16  # claimed, and the claim tag names the owner


def test_fixture_refuses_out_of_range_writes_with_exception_3(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        command(client, TOKEN, "claim", 2000)
        reply = client.write_registers(fm.MAILBOX, [TOKEN >> 16, TOKEN & 0xFFFF, 105, 10001], device_id=1)
        zero_timeout = command(client, TOKEN, "claim", 50)  # a watchdog of 50 ms: below the map's 100 ms
        no_token = client.write_registers(fm.MAILBOX, [0, 0, 107, 1], device_id=1)
    assert reply.isError() and reply.exception_code == 3
    assert zero_timeout.isError() and zero_timeout.exception_code == 3
    assert no_token.isError() and no_token.exception_code == 3


def test_fixture_refuses_closing_contactors_without_a_path_with_exception_4(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        command(client, TOKEN, "claim", 2000)
        reply = command(client, TOKEN, "contactors", 1)
        status = client.read_input_registers(4, count=1, device_id=1).registers[0]
    assert reply.isError() and reply.exception_code == 4
    assert status & 0b11 == 0  # feedback: both contactors open


def test_writes_outside_the_mailbox_are_refused_with_exception_2(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        direct = client.write_register(fm.BY_NAME["connector"].address, 1, device_id=1)
        not_a_command = client.write_registers(fm.MAILBOX, [TOKEN >> 16, TOKEN & 0xFFFF, 7, 1], device_id=1)
    assert direct.isError() and direct.exception_code == 2
    assert not_a_command.isError() and not_a_command.exception_code == 2


def test_owner_only_commands_need_a_claim(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        unclaimed = command(client, TOKEN, "connector", 1)
        safe = command(client, TOKEN, "contactors", 0)
    assert unclaimed.isError() and unclaimed.exception_code == 4
    assert not safe.isError()  # making the bench safer never needs a claim


def test_a_claim_refuses_every_other_token_except_commands_that_make_the_bench_safer(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        assert not command(client, TOKEN, "claim", 2000).isError()
        refused = {name: command(client, OTHER, name, value) for name, value in
                   (("claim", 2000), ("heartbeat", 7), ("heartbeat_timeout_ms", 10000), ("connector", 1),
                    ("trip_reset", 1), ("claim", 0))}
        allowed = [command(client, OTHER, name, value) for name, value in
                   (("contactors", 0), ("path_select", 0), ("safe_request", 1), ("safe_request", 1))]
        owner = command(client, TOKEN, "heartbeat", 7)
        counted = client.read_input_registers(34, count=1, device_id=1).registers[0]
        timeout_ms = client.read_holding_registers(101, count=1, device_id=1).registers[0]
    assert {name: (r.isError(), getattr(r, "exception_code", None)) for name, r in refused.items()} == \
        dict.fromkeys(refused, (True, 6))
    assert not any(r.isError() for r in allowed)
    assert not owner.isError()
    assert counted == 2  # the owner's run sees each `rig safe` from another session
    assert timeout_ms == 2000  # the other token could not touch the owner's watchdog


def test_a_dead_owners_claim_ends_with_its_watchdog_and_the_bench_is_safe_first(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        assert not command(client, TOKEN, "claim", 200).isError()  # then the owner "dies": no heartbeat
        assert command(client, OTHER, "claim", 2000).exception_code == 6
        deadline = time.monotonic() + 5
        while client.read_input_registers(4, count=1, device_id=1).registers[0] & 1 << 7:
            assert time.monotonic() < deadline, "the claim outlived its heartbeat"
            time.sleep(0.02)
        status = client.read_input_registers(4, count=1, device_id=1).registers[0]
        takeover = command(client, OTHER, "claim", 2000)
    assert status & 1 << 4 and not status & 1 << 5  # watchdog tripped: chain broken, supplies inhibited
    assert not takeover.isError()


def test_the_owner_cannot_release_its_claim_while_the_contactors_are_closed(bench: SimulatedBench) -> None:
    with ModbusTcpClient("127.0.0.1", port=bench.fixture.port, timeout=1, retries=0) as client:
        command(client, TOKEN, "claim", 2000)
        command(client, TOKEN, "path_select", 1)
        assert not command(client, TOKEN, "contactors", 1).isError()
        refused = command(client, TOKEN, "claim", 0)
        command(client, TOKEN, "contactors", 0)
        time.sleep(0.05)  # 20 ms contactor opening time (rig time runs faster)
        released = command(client, TOKEN, "claim", 0)
        status = client.read_input_registers(4, count=1, device_id=1).registers[0]
    assert refused.isError() and refused.exception_code == 4
    assert not released.isError() and not status & 1 << 7
