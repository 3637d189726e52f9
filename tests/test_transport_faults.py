"""Transport faults against the simulated instruments over real sockets (nothing of pyvisa or pymodbus
is mocked): every fault is a one-line error naming the instrument and the command, the transport
recovers without mixing up replies, and a write whose outcome is unknown is never sent again.

What reached a simulated unit is audited on the unit's side: ``dialect.log`` holds every SCPI line
received, ``fixture.writes`` every Modbus write the fixture accepted.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from instruments import fixture_map as fm
from instruments.drivers.ea_psi import EaPsi
from instruments.drivers.nacs_fixture import NacsInletFixture
from instruments.errors import (
    BadReply,
    InstrumentError,
    InstrumentLost,
    InstrumentTimeout,
    ModbusDeviceError,
    ScpiError,
)
from instruments.modbus import ModbusTransport
from instruments.roles import Connector, Rating
from instruments.scpi import ScpiSettings, ScpiTransport, parse_number, resource_manager
from instruments.sim.bench import SimulatedBench
from instruments.sim.scpi_server import ScpiServer, ServerFaults

RATING = Rating(voltage=1500, current=60, power=30000)
TIMEOUT = 0.2  # transport timeout in these tests; simulated latencies are >= 2.5x this


def one_line(exc: pytest.ExceptionInfo[InstrumentError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text == text.strip(), text
    return text


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for something the simulated unit does (polled; the deadline is only a safety net)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the simulated unit did not get there within 5 s"
        time.sleep(0.002)


def lines_since(server: ScpiServer, start: int) -> list[str]:
    return list(server.dialect.log)[start:]


@pytest.fixture
def psu(bench: SimulatedBench) -> Iterator[EaPsi]:
    """The EA supply on the simulated bench, opened with a short transport timeout."""
    drv = EaPsi("psu_hv", bench.servers["psu_hv"].resource, RATING)
    drv.transport.settings = dataclasses.replace(EaPsi.SETTINGS, timeout_s=TIMEOUT)
    drv.open()
    drv.set_voltage(400)
    drv.set_current_limit(5)
    yield drv
    bench.servers["psu_hv"].faults = ServerFaults()  # so that close() can release the lock
    drv.close()


@pytest.fixture
def inlet(bench: SimulatedBench) -> Iterator[NacsInletFixture]:
    fixture = NacsInletFixture("inlet", bench.fixture.resource, bench.fixture.unit_id, timeout_s=TIMEOUT)
    fixture.open()
    fixture.claim(10.0)  # map v2: commands need the claim (10 s watchdog: longer than any test here)
    bench.fixture.writes.clear()
    yield fixture
    fixture.close()


# --- SCPI: timeouts and late replies ----------------------------------------------------------------


def test_dropped_reply_is_a_timeout_naming_the_command_and_the_next_query_gets_its_own_reply(
    bench: SimulatedBench, psu: EaPsi
) -> None:
    bench.servers["psu_hv"].faults.drop_replies = 1
    with pytest.raises(InstrumentTimeout) as exc:
        psu.transport.query("SOUR:VOLT?")
    assert one_line(exc) == "psu_hv: 'SOUR:VOLT?': no reply within 0.2 s"
    assert psu.transport.query("SOUR:CURR?") == "5.00 A"
    assert psu.transport.query("SOUR:VOLT?") == "400.00 V"


def late_reply_scenario(server: ScpiServer, query: Callable[[str], str], failure: type[Exception]) -> str:
    """Ask ``SOUR:VOLT?`` of a unit answering 3x too late, then ``SOUR:CURR?`` once the late answer
    has gone out; return the reply to the second query."""
    start = len(server.dialect.log)
    server.faults.latency_s = 3 * TIMEOUT
    with pytest.raises(failure):
        query("SOUR:VOLT?")
    server.faults.latency_s = 0.0  # only the request already in the unit is late
    # The unit logs a line and writes its reply in the same event-loop step: once logged, it is sent.
    wait_until(lambda: "SOUR:VOLT?" in lines_since(server, start))
    return query("SOUR:CURR?")


def test_a_late_reply_after_a_timeout_does_not_answer_the_next_query(bench: SimulatedBench, psu: EaPsi) -> None:
    """The pyvisa-py pitfall (library notes, section 4): the transport reconnects after a timeout."""
    assert late_reply_scenario(bench.servers["psu_hv"], psu.transport.query, InstrumentTimeout) == "5.00 A"
    assert psu.transport.query("SOUR:VOLT?") == "400.00 V"  # and every reply after it is in step


def test_control_a_bare_pyvisa_resource_is_poisoned_by_the_same_late_reply(
    bench: SimulatedBench, psu: EaPsi
) -> None:
    """Proves the scenario above really delivers the late reply on the old connection."""
    import pyvisa

    server = bench.servers["psu_hv"]
    raw = resource_manager().open_resource(server.resource, read_termination="\n", write_termination="\n",
                                           timeout=int(TIMEOUT * 1000))
    try:
        assert late_reply_scenario(server, raw.query, pyvisa.errors.VisaIOError) == "400.00 V"  # off by one
    finally:
        raw.close()


# --- SCPI: garbage, error queue ------------------------------------------------------------------


def test_garbage_reply_is_a_bad_reply_naming_command_and_reply(bench: SimulatedBench, psu: EaPsi) -> None:
    bench.servers["psu_hv"].faults.garbage_replies = 1
    with pytest.raises(BadReply) as exc:
        parse_number(psu.name, "SOUR:VOLT?", psu.transport.query("SOUR:VOLT?", retry=True))
    assert one_line(exc) == r"psu_hv: 'SOUR:VOLT?': reply '#\x07garbage\x7f' is not a number"
    assert psu.transport.query("SOUR:CURR?") == "5.00 A"  # the stream is still in step


def test_a_garbled_batched_read_is_asked_once_more_and_recovers(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    batch = "MEAS:ARR?;:OUTP?;:STAT:QUES:COND?"
    psu.output_on()
    start = len(server.dialect.log)
    server.faults.garbage_replies = 1
    reading = psu.measure()  # query_many(retry=True): pure reads, so a second ask is safe
    assert (reading.voltage, reading.output_on) == (400.0, True)
    assert lines_since(server, start) == [batch, batch]


def test_a_batched_read_garbled_twice_is_a_bad_reply_with_the_reply(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    server.faults.garbage_replies = 2
    with pytest.raises(BadReply) as exc:
        psu.measure()
    assert one_line(exc) == (
        r"psu_hv: 'MEAS:ARR?;:OUTP?;:STAT:QUES:COND?': expected 3 replies, got 1: '#\x07garbage\x7f'"
    )
    assert psu.measure().voltage == 0.0  # output off; in step again


def test_error_queue_after_a_write_lists_every_error_and_is_drained(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    command = "SOUR:VOLT 99999;:SOUR:CURR abc;:SOUR:POW"
    start = len(server.dialect.log)
    with pytest.raises(ScpiError) as exc:
        psu.transport.write_checked(command)
    assert one_line(exc) == (
        f"psu_hv: {command!r}: instrument reported "
        "-222,'Data out of range'; -104,'Data type error'; -109,'Missing parameter'"
    )
    assert exc.value.errors == [(-222, "Data out of range"), (-104, "Data type error"), (-109, "Missing parameter")]
    assert lines_since(server, start) == [command] + ["SYST:ERR?"] * 4  # three errors, then 0
    assert not server.dialect.errors
    assert psu.transport.query("SYST:ERR?") == '0,"No error"'


# --- SCPI: stalled, killed ------------------------------------------------------------------------


def test_a_stalled_unit_is_lost_after_consecutive_timeouts_even_with_writes_between(bench: SimulatedBench) -> None:
    """Writes to a hung unit 'succeed' (they land in the socket buffer): they prove nothing and must not
    reset the count of consecutive timeouts."""
    server = bench.servers["psu_hv"]
    transport = ScpiTransport("psu_hv", server.resource, ScpiSettings(timeout_s=TIMEOUT, lost_after_failures=3))
    transport.open()
    try:
        assert transport.query("*IDN?").startswith("EA Elektro-Automatik")
        server.faults.stalled = True
        for _ in range(2):
            with pytest.raises(InstrumentTimeout) as exc:
                transport.query("MEAS:VOLT?")
            assert one_line(exc) == "psu_hv: 'MEAS:VOLT?': no reply within 0.2 s"
            transport.write("*CLS")
        with pytest.raises(InstrumentLost) as lost:
            transport.query("MEAS:VOLT?")
        assert one_line(lost) == "psu_hv: 'MEAS:VOLT?': 3 consecutive timeouts: instrument lost"
        server.faults.stalled = False
        assert transport.query("MEAS:VOLT?") == "0.00 V"  # the unit is back: the count starts again
        assert transport._consecutive_faults == 0
    finally:
        transport.close()


def test_a_stalled_unit_behind_the_driver_is_lost_within_two_calls(bench: SimulatedBench, psu: EaPsi) -> None:
    bench.servers["psu_hv"].faults.stalled = True
    batch = "'MEAS:ARR?;:OUTP?;:STAT:QUES:COND?'"
    with pytest.raises(InstrumentTimeout) as first:  # timeout, then the read's one retry times out too
        psu.measure()
    # The retry reconnects; the driver takes the remote lock again, and that is what timed out.
    assert one_line(first) == f"psu_hv: {batch}: not sent, reconnect failed: 'SYST:LOCK:OWN?': no reply within 0.2 s"
    with pytest.raises(InstrumentLost) as lost:
        psu.measure()
    assert one_line(lost) == (
        f"psu_hv: {batch}: not sent, reconnect failed: 'SYST:LOCK:OWN?': 3 consecutive timeouts: instrument lost"
    )
    bench.servers["psu_hv"].faults.stalled = False
    assert psu.measure().voltage == 0.0


def test_killed_instrument_is_lost_at_once_not_a_timeout(bench: SimulatedBench, psu: EaPsi) -> None:
    psu.transport.settings = dataclasses.replace(psu.transport.settings, timeout_s=2.0)  # a hang would show
    bench.kill("psu_hv")
    started = time.monotonic()
    with pytest.raises(InstrumentLost) as exc:
        psu.output_off()
    # pyvisa-py never sees the closed connection on a read; the transport looks before it writes.
    assert one_line(exc) == "psu_hv: 'OUTP OFF': connection failed: the instrument closed the connection (nothing sent)"
    with pytest.raises(InstrumentLost) as again:
        psu.measure()
    assert one_line(again) == (
        "psu_hv: 'MEAS:ARR?;:OUTP?;:STAT:QUES:COND?': not sent, reconnect failed: "
        "'*CLS': connection failed: [Errno 111] Connection refused"
    )
    assert time.monotonic() - started < 1.0


def test_killed_while_a_reply_is_awaited_is_lost_after_the_timeout(bench: SimulatedBench, psu: EaPsi) -> None:
    """The unit took the query, then vanished: the read cannot see the closed connection (it times
    out), but the transport tells a closed connection from a slow unit."""
    server = bench.servers["psu_hv"]
    start = len(server.dialect.log)
    server.faults.drop_replies = 1
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            psu.transport.query("MEAS:VOLT?")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    wait_until(lambda: "MEAS:VOLT?" in lines_since(server, start))  # the unit has the query
    bench.kill("psu_hv")
    worker.join(10 * TIMEOUT)
    assert not worker.is_alive()
    assert [type(e) for e in outcome] == [InstrumentLost]
    assert str(outcome[0]) == "psu_hv: 'MEAS:VOLT?': the instrument closed the connection without replying"


# --- SCPI: writes are never repeated --------------------------------------------------------------


def test_a_write_whose_error_check_timed_out_is_not_sent_again(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    start = len(server.dialect.log)
    server.faults.drop_replies = 1  # OUTP ON has no reply: the SYST:ERR? after it is lost
    with pytest.raises(InstrumentTimeout) as exc:
        psu.output_on()
    assert one_line(exc) == "psu_hv: 'OUTP ON': sent, but its outcome is unknown: 'SYST:ERR?': no reply within 0.2 s"
    reading = psu.measure()  # the caller decides: here it reads back, over a fresh connection
    assert reading.output_on is True
    sent = lines_since(server, start)
    assert sent.count("OUTP ON") == 1
    assert sent[:2] == ["OUTP ON", "SYST:ERR?"]
    assert "MEAS:ARR?;:OUTP?;:STAT:QUES:COND?" in sent


def test_a_write_answered_too_late_is_not_sent_again(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    start = len(server.dialect.log)
    server.faults.latency_s = 3 * TIMEOUT  # OUTP ON is slow to run; its SYST:ERR? then times out
    with pytest.raises(InstrumentTimeout, match=r"^psu_hv: 'OUTP ON': sent, but its outcome is unknown: "):
        psu.output_on()
    server.faults.latency_s = 0.0
    wait_until(lambda: "SYST:ERR?" in lines_since(server, start))  # everything sent has been run
    assert psu.measure().output_on is True
    assert lines_since(server, start).count("OUTP ON") == 1


# --- Modbus ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "meaning"), [
    (2, "illegal data address"),
    (3, "illegal data value"),
    (4, "server device failure"),
    (6, "server device busy"),
])
def test_modbus_exception_response_names_code_meaning_and_register(
    bench: SimulatedBench, inlet: NacsInletFixture, code: int, meaning: str
) -> None:
    bench.fixture.faults.exception_next = code
    with pytest.raises(ModbusDeviceError) as exc:
        inlet.read()
    assert one_line(exc) == (
        f"inlet: 'read input registers 0+{fm.INPUT_BLOCK_COUNT}': Modbus exception {code} ({meaning})"
    )
    assert exc.value.code == code
    assert inlet.read().ambient_temp == pytest.approx(25.0)  # an answer, not a fault: the link is fine
    assert inlet.transport._consecutive_faults == 0


def test_modbus_exception_on_a_write_names_the_register_and_nothing_is_applied(
    bench: SimulatedBench, inlet: NacsInletFixture
) -> None:
    bench.fixture.faults.exception_next = 4
    with pytest.raises(ModbusDeviceError) as exc:
        inlet.set_connector(Connector.LATCHED)
    assert one_line(exc) == "inlet: 'write connector=1': Modbus exception 4 (server device failure)"
    assert bench.fixture.writes == []


def test_modbus_timeout_then_lost_then_recovery(bench: SimulatedBench, inlet: NacsInletFixture) -> None:
    bench.fixture.faults.latency_s = 3 * TIMEOUT
    with pytest.raises(InstrumentTimeout) as exc:  # a read is retried once: two timeouts
        inlet.transport.read_input(0, 4)
    assert one_line(exc) == "inlet: 'read input registers 0+4': no reply within 0.2 s"
    with pytest.raises(InstrumentLost) as lost:
        inlet.transport.read_input(7, 5)
    assert one_line(lost) == "inlet: 'read input registers 7+5': 3 consecutive timeouts: device lost"
    bench.fixture.faults.latency_s = 0.0
    # Late replies are still on their way to the old connections; each request gets its own answer.
    assert inlet.transport.read_input(7, 5) == [250] * 5
    assert inlet.transport.read_input(0, 4)[0] == fm.IDENT_MAGIC


def test_modbus_write_whose_reply_is_late_is_never_retried(bench: SimulatedBench, inlet: NacsInletFixture) -> None:
    latency = 3 * TIMEOUT
    bench.fixture.faults.latency_s = latency
    with pytest.raises(InstrumentTimeout) as exc:
        inlet.set_connector(Connector.LATCHED)
    assert one_line(exc) == "inlet: 'write connector=1': no reply within 0.2 s"
    bench.fixture.faults.latency_s = 0.0
    wait_until(lambda: len(bench.fixture.writes) == 1)  # the unit did it, late
    time.sleep(latency)  # a repeat sent within the timeout would land by now (with a full latency to spare)
    assert bench.fixture.writes == [("connector", 1.0)]
    assert inlet.read().pp_voltage == pytest.approx(1.505, abs=0.002)


def test_modbus_fixture_stopped_is_lost_at_once(bench: SimulatedBench, inlet: NacsInletFixture) -> None:
    bench.call(bench.fixture.stop())
    started = time.monotonic()
    with pytest.raises(InstrumentLost) as exc:
        inlet.read()
    assert one_line(exc).startswith(f"inlet: 'read input registers 0+{fm.INPUT_BLOCK_COUNT}': connection failed: ")
    with pytest.raises(InstrumentLost, match=r"^inlet: 'write connector=1': connection failed: .*Failed to connect"):
        inlet.set_connector(Connector.LATCHED)
    assert time.monotonic() - started < TIMEOUT  # refused/closed is known at once: no timeout waited


def test_modbus_connection_reset_is_lost_not_a_raw_oserror() -> None:
    """pymodbus lets ``ConnectionResetError`` out of its ``recv`` as is."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def reset_every_connection() -> None:
        with server:
            conn, _ = server.accept()
            conn.recv(256)  # the request arrived ...
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # ... and the peer answers with RST

    threading.Thread(target=reset_every_connection, daemon=True).start()
    transport = ModbusTransport("inlet", f"modbus+tcp://127.0.0.1:{port}", 1, timeout_s=5.0)
    transport.open()
    try:
        with pytest.raises(InstrumentLost) as exc:
            transport.read_input(0, 4)
        assert one_line(exc) == (
            "inlet: 'read input registers 0+4': connection failed: [Errno 104] Connection reset by peer"
        )
    finally:
        transport.close()
