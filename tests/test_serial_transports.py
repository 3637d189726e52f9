"""Serial transports without serial hardware.

- SCPI over RS-232 (``ASRL<port>::INSTR``, pyvisa-py + pyserial): a pseudo-terminal pair stands in for
  the cable; a thread feeds the lines arriving on the master side to a simulated unit's dialect and
  writes its replies back.
- Modbus RTU: the fixture's register map served with RTU framing over TCP (as a serial-to-Ethernet
  gateway passes it through), reached as ``modbus+rtu-tcp://host:port`` and as
  ``modbus+rtu://socket://host:port`` (pyserial's URL handler in place of a serial port).
"""

from __future__ import annotations

import dataclasses
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator

import pytest

from instruments import fixture_map as fm
from instruments.drivers.ea_psi import EaPsi
from instruments.drivers.nacs_fixture import NacsInletFixture
from instruments.errors import InstrumentTimeout
from instruments.modbus import ModbusAddress
from instruments.roles import Connector, Rating, SupplyProtection
from instruments.sim.bench import SimulatedBench
from instruments.sim.fixture_server import FixtureServer
from instruments.sim.scpi_dialect import Dialect

RATING = Rating(voltage=1500, current=60, power=30000)
TIMEOUT = 0.2


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the simulated unit did not get there within 5 s"
        time.sleep(0.002)


# --- SCPI over RS-232 -------------------------------------------------------------------------------


class PtyInstrument:
    """A simulated SCPI unit at the far end of a pseudo-terminal (the slave is the 'serial port')."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.master, self._slave = os.openpty()  # the slave stays open here: bytes wait in the tty queue
        tty.setraw(self._slave)  # no echo, no line editing (pyserial sets the same when it opens)
        self.port = os.ttyname(self._slave)
        #: Set to hold the next reply until ``release`` is set (an answer that comes too late).
        self.hold_next = False
        self.release = threading.Event()
        self.released = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-instrument", daemon=True)
        self._thread.start()

    @property
    def resource(self) -> str:
        return f"ASRL{self.port}::INSTR"

    def _run(self) -> None:
        pending = b""
        while not self._stop.is_set():
            readable, _, _ = select.select([self.master], [], [], 0.02)
            if not readable:
                continue
            try:
                pending += os.read(self.master, 4096)
            except OSError:  # EIO: every slave descriptor closed
                return
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                line = raw.decode("ascii", "replace").strip()
                reply = self.dialect.handle_line(line) if line else None
                if reply is None:
                    continue
                if self.hold_next:
                    self.hold_next = False
                    self.release.wait(10)
                    os.write(self.master, reply.encode("ascii") + b"\n")
                    self.released.set()
                else:
                    os.write(self.master, reply.encode("ascii") + b"\n")

    def close(self) -> None:
        self._stop.set()
        self.release.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def pty_psu(bench: SimulatedBench) -> Iterator[tuple[EaPsi, PtyInstrument]]:
    unit = PtyInstrument(bench.servers["psu_hv"].dialect)
    psu = EaPsi("psu_hv", unit.resource, RATING)
    psu.transport.settings = dataclasses.replace(EaPsi.SETTINGS, timeout_s=TIMEOUT)
    try:
        yield psu, unit
    finally:
        psu.close()
        unit.close()


def test_scpi_over_rs232_identify_setpoint_and_batched_measure(pty_psu: tuple[EaPsi, PtyInstrument]) -> None:
    import pyvisa

    psu, unit = pty_psu
    identity = psu.open()
    assert psu.transport._handle.interface_type == pyvisa.constants.InterfaceType.asrl  # really serial
    assert (identity.manufacturer, identity.model) == ("EA Elektro-Automatik GmbH & Co. KG", "PSI 11500-60 4U")
    assert psu.set_protection(550, 10) == SupplyProtection(550.0, 10.0)
    psu.set_voltage(400)
    psu.set_current_limit(5)
    psu.output_on()
    reading = psu.measure()
    assert (reading.voltage, reading.output_on, reading.protection) == (400.0, True, None)
    log = list(unit.dialect.log)
    assert "SOUR:VOLT 400" in log
    assert "MEAS:ARR?;:OUTP?;:STAT:QUES:COND?" in log  # one line, one reply, over the serial link
    psu.safe_state()


def test_scpi_over_rs232_late_reply_is_flushed_when_the_port_is_reopened(
    pty_psu: tuple[EaPsi, PtyInstrument],
) -> None:
    psu, unit = pty_psu
    psu.open()
    psu.set_current_limit(5)
    unit.hold_next = True
    with pytest.raises(InstrumentTimeout) as exc:
        psu.transport.query("SOUR:VOLT?")
    assert str(exc.value) == "psu_hv: 'SOUR:VOLT?': no reply within 0.2 s"
    unit.release.set()
    assert unit.released.wait(5)  # the late reply now waits in the port's input queue
    # The transport reopens the port after a timeout, and opening flushes the input queue.
    assert psu.transport.query("SOUR:CURR?") == "5.00 A"


# --- Modbus RTU ----------------------------------------------------------------------------------------


@pytest.fixture
def rtu_server(bench: SimulatedBench) -> Iterator[FixtureServer]:
    """The fixture's register map, RTU-framed over TCP, on the bench's model and event loop."""
    server = FixtureServer(bench.model, unit_id=3, framer="rtu")
    bench.call(server.start())
    yield server
    bench.call(server.stop())


def exercise(inlet: NacsInletFixture, server: FixtureServer) -> None:
    identity = inlet.open()
    try:
        assert identity.model == f"NACS inlet fixture map v{fm.MAP_VERSION}"
        reading = inlet.read()  # the whole input block in one request
        assert reading.ambient_temp == pytest.approx(25.0)
        assert reading.pp_voltage == pytest.approx(4.455, abs=0.002)  # unplugged
        inlet.claim(2.0)  # map v2: a session claims the fixture before it commands anything
        inlet.set_connector(Connector.LATCHED)
        assert server.writes == [("claim", 2000.0), ("connector", 1.0)]
        assert inlet.transport.read_holding(fm.BY_NAME["connector"].address, 1) == [1]
        assert inlet.read().pp_voltage == pytest.approx(1.505, abs=0.002)
    finally:
        inlet.close()


def test_modbus_rtu_framed_over_tcp(rtu_server: FixtureServer) -> None:
    assert rtu_server.resource == f"modbus+rtu-tcp://127.0.0.1:{rtu_server.port}"
    exercise(NacsInletFixture("inlet", rtu_server.resource, unit_id=3), rtu_server)


def test_modbus_rtu_through_a_pyserial_url(rtu_server: FixtureServer) -> None:
    from pymodbus.client import ModbusSerialClient

    resource = f"modbus+rtu://socket://127.0.0.1:{rtu_server.port}?baudrate=115200&parity=N&stopbits=1"
    assert ModbusAddress.parse(resource) == ModbusAddress(
        kind="rtu", serial_port=f"socket://127.0.0.1:{rtu_server.port}", baudrate=115200
    )
    inlet = NacsInletFixture("inlet", resource, unit_id=3)
    inlet.transport.open()
    assert isinstance(inlet.transport._client, ModbusSerialClient)
    exercise(inlet, rtu_server)


def test_modbus_rtu_late_reply_does_not_answer_the_next_request(rtu_server: FixtureServer) -> None:
    """RTU frames carry no transaction id: a reply that comes after the timeout would be taken for the
    next request's (here: the identity block returned for a temperature read) unless the transport
    drops the connection after a timeout."""
    served = threading.Event()
    input_values = rtu_server.input_values

    def input_values_then_signal() -> dict[str, float]:
        values = input_values()
        served.set()  # the reply is built from these and sent in the same step
        return values

    rtu_server.input_values = input_values_then_signal  # type: ignore[method-assign]
    inlet = NacsInletFixture("inlet", rtu_server.resource, unit_id=3, timeout_s=TIMEOUT)
    inlet.open()
    try:
        rtu_server.faults.latency_s = 3 * TIMEOUT
        served.clear()
        with pytest.raises(InstrumentTimeout, match=r"^inlet: 'read input registers 0\+4': no reply within 0\.2 s$"):
            inlet.transport.read_input(0, 4, retry=False)
        rtu_server.faults.latency_s = 0.0
        assert served.wait(5)
        assert inlet.transport.read_input(7, 4) == [250] * 4  # contact temperatures, 25.0 °C
        assert inlet.transport.read_input(0, 4)[0] == fm.IDENT_MAGIC
    finally:
        inlet.close()
