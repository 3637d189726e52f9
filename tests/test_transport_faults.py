"""Transport faults against the simulated instruments over real sockets (nothing of pyvisa or pymodbus
is mocked): every fault is a one-line error naming the instrument and the command, the transport
recovers without mixing up replies, and a write whose outcome is unknown is never sent again.

What reached a simulated unit is audited on the unit's side: ``dialect.log`` holds every SCPI line
received, ``fixture.writes`` every Modbus write the fixture accepted.
"""

from __future__ import annotations

import contextlib
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
ERROR_CHECK = "STAT:QUES:COND?;:SYST:ERR?"  # EA: the alarm is read before the queue acknowledges it
TIMEOUT = 0.2  # transport timeout in these tests; simulated latencies are >= 2.5x this
PROXY_TIMEOUT = 2.0  # through the duplicating proxy, where no test waits for a timeout


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
    # Too few replies might be a refused part: the error queue is read (empty here), then asked again.
    assert lines_since(server, start) == [batch, ERROR_CHECK, batch]


def test_a_batched_read_garbled_twice_is_a_bad_reply_with_the_reply(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    server.faults.garbage_replies = 3  # the batch, the error-queue read after it, the batch again
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
    assert lines_since(server, start) == [command, ERROR_CHECK] + ["SYST:ERR?"] * 3  # three errors, then 0
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
    server.faults.drop_replies = 1  # OUTP ON has no reply: the error check after it is lost
    with pytest.raises(InstrumentTimeout) as exc:
        psu.output_on()
    assert one_line(exc) == (
        f"psu_hv: 'OUTP ON': sent, but its outcome is unknown: {ERROR_CHECK!r}: no reply within 0.2 s")
    reading = psu.measure()  # the caller decides: here it reads back, over a fresh connection
    assert reading.output_on is True
    sent = lines_since(server, start)
    assert sent.count("OUTP ON") == 1
    assert sent[:2] == ["OUTP ON", ERROR_CHECK]
    assert "MEAS:ARR?;:OUTP?;:STAT:QUES:COND?" in sent


def test_a_write_answered_too_late_is_not_sent_again(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    start = len(server.dialect.log)
    server.faults.latency_s = 3 * TIMEOUT  # OUTP ON is slow to run; its SYST:ERR? then times out
    with pytest.raises(InstrumentTimeout, match=r"^psu_hv: 'OUTP ON': sent, but its outcome is unknown: "):
        psu.output_on()
    server.faults.latency_s = 0.0
    wait_until(lambda: ERROR_CHECK in lines_since(server, start))  # everything sent has been run
    assert psu.measure().output_on is True
    assert lines_since(server, start).count("OUTP ON") == 1


# --- SCPI: a surplus reply line (a proxy that duplicates replies) ----------------------------------


class DuplicatingProxy:
    """A TCP proxy between client and simulated unit that sends some replies twice, in one write (so
    the duplicate is on the wire with the original: nothing here depends on timing)."""

    def __init__(self, target: ScpiServer, duplicate: Callable[[str], bool]) -> None:
        self.target = (target.host, target.port)
        self.duplicate = duplicate
        self.duplicated = 0
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def resource(self) -> str:
        return f"TCPIP::127.0.0.1::{self.port}::SOCKET"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        buffer = b""
        try:
            while chunk := source.recv(4096):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    out = line + b"\n"
                    if replies and self.duplicate(line.decode()):
                        self.duplicated += 1
                        out += out
                    sink.sendall(out)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def proxied_psu(bench: SimulatedBench) -> Iterator[tuple[EaPsi, DuplicatingProxy]]:
    """The EA supply behind a proxy that duplicates every reply that reads a voltage."""
    proxy = DuplicatingProxy(bench.servers["psu_hv"], lambda line: line.endswith(" V"))
    drv = EaPsi("psu_hv", proxy.resource, RATING)
    # The unit's own timeout, not the short one: nothing here waits for a timeout, and a spurious one
    # on a loaded machine (a proxy thread not scheduled for 0.2 s) would add a fault the tests count.
    drv.transport.settings = dataclasses.replace(EaPsi.SETTINGS, timeout_s=PROXY_TIMEOUT)
    drv.open()
    yield drv, proxy
    drv.close()
    proxy.close()


def test_control_a_bare_pyvisa_resource_takes_the_duplicated_reply_as_the_next_answer(
    bench: SimulatedBench, proxied_psu: tuple[EaPsi, DuplicatingProxy]
) -> None:
    """Proves the scenario: after one duplicated reply every later reply is one behind, each the
    expected shape (a number with its unit), and nothing on the wire says so."""
    psu, proxy = proxied_psu
    psu.set_voltage(400)
    psu.set_current_limit(5)
    raw = resource_manager().open_resource(proxy.resource, read_termination="\n", write_termination="\n",
                                           timeout=int(PROXY_TIMEOUT * 1000))
    try:
        assert raw.query("SOUR:VOLT?") == "400.00 V"
        assert raw.query("SOUR:CURR?") == "400.00 V"  # stale: the current is 5 A
        assert raw.query("SOUR:VOLT?") == "5.00 A"  # and so on, one behind
    finally:
        raw.close()


def test_a_surplus_reply_line_is_detected_before_the_next_exchange_and_never_taken_as_its_answer(
    bench: SimulatedBench, proxied_psu: tuple[EaPsi, DuplicatingProxy]
) -> None:
    """Item 5 of the surplus-line issue: unsolicited bytes before an exchange mean the stream is out of
    step; the transport reconnects (counted as a fault) before sending, so the reply it reads is the
    answer to what it sent."""
    psu, proxy = proxied_psu
    server = bench.servers["psu_hv"]
    psu.set_voltage(400)
    psu.set_current_limit(5)
    faults, connections = psu.transport.fault_count, proxy.connections
    assert psu.transport.query("SOUR:VOLT?") == "400.00 V"  # duplicated by the proxy
    start = len(server.dialect.log)
    assert psu.transport.query("SOUR:CURR?") == "5.00 A"  # not the stale "400.00 V"
    assert (psu.transport.fault_count, psu.transport.resyncs) == (faults + 1, 1)
    assert proxy.connections == connections + 1  # a fresh connection...
    assert lines_since(server, start)[-1] == "SOUR:CURR?"  # ...on which the query went out once
    assert "SYST:LOCK ON" in lines_since(server, start)  # remote control taken again on it


def test_no_stale_reading_is_accepted_while_a_proxy_duplicates_replies(
    bench: SimulatedBench, proxied_psu: tuple[EaPsi, DuplicatingProxy]
) -> None:
    """What the sampler does, measure after measure, with setpoints changing between: every reading is
    the present one; the unit ends counted as faulted, once per duplicated reply."""
    psu, proxy = proxied_psu
    psu.set_current_limit(5)
    psu.output_on()
    faults = psu.transport.fault_count
    for volts in range(10, 210, 10):
        psu.set_voltage(volts)
        assert psu.transport.query("SOUR:VOLT?") == f"{volts:.2f} V"  # duplicated
        reading = psu.measure()
        assert (reading.voltage, reading.output_on) == (volts, True)
        assert psu.transport.query("SOUR:CURR?") == "5.00 A"
    assert proxy.duplicated == 20
    assert psu.transport.resyncs == 20 and psu.transport.fault_count == faults + 20
    psu.safe_state()


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
