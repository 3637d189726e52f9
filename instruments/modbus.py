"""Modbus over pymodbus 3.16: TCP, RTU over a serial port, and RTU framed over TCP (serial gateways).

Resource strings:

- ``modbus+tcp://host:502``
- ``modbus+rtu:///dev/ttyUSB0?baudrate=19200&parity=E&stopbits=1`` (pyserial URLs such as
  ``socket://host:port`` work as the port too, but the sync serial client polls slowly there)
- ``modbus+rtu-tcp://host:port`` (RTU frames over a TCP socket, as many serial-to-Ethernet gateways do)

pymodbus defaults to ``timeout=3, retries=3`` (12 s per call to a dead device) and retries writes
silently. A rig wants neither: the client is made with a short timeout and no retries, reads may be
retried here once, and writes are never repeated. After a timeout the connection is dropped (the client
reconnects on the next request): RTU frames carry no transaction id, so a late reply would otherwise
answer the next request. Exception responses come back as objects, not raised; they are turned into
``ModbusDeviceError`` naming the register.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from instruments.errors import BadReply, InstrumentError, InstrumentLost, InstrumentTimeout, ModbusDeviceError

log = logging.getLogger("instruments.modbus")


@dataclass(frozen=True)
class ModbusAddress:
    kind: str  # "tcp" | "rtu" | "rtu-tcp"
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 19200
    parity: str = "N"
    stopbits: int = 1

    @classmethod
    def parse(cls, resource: str) -> ModbusAddress:
        """Parse a ``modbus+...://`` resource; raise ``ValueError`` with what was expected."""
        parts = urlsplit(resource)
        scheme = parts.scheme.lower()
        if scheme in ("modbus+tcp", "modbus+rtu-tcp"):
            if not parts.hostname:
                raise ValueError(f"{resource!r} has no host; expected {scheme}://host:port")
            try:
                port = parts.port or 502
            except ValueError:
                raise ValueError(f"{resource!r} has a bad port; expected {scheme}://host:port") from None
            return cls(kind=scheme.removeprefix("modbus+"), host=parts.hostname, port=port)
        if scheme == "modbus+rtu":
            serial_port = (parts.netloc + parts.path) if parts.netloc else parts.path
            if not serial_port:
                raise ValueError(f"{resource!r} has no serial port; expected modbus+rtu:///dev/ttyUSB0")
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            unknown = set(query) - {"baudrate", "parity", "stopbits"}
            if unknown:
                raise ValueError(f"{resource!r}: unknown option(s) {sorted(unknown)}; "
                                 "expected baudrate, parity, stopbits")
            try:
                baud = int(query.get("baudrate", 19200))
                stop = int(query.get("stopbits", 1))
            except ValueError:
                raise ValueError(f"{resource!r}: baudrate and stopbits must be integers") from None
            parity = query.get("parity", "N").upper()
            if parity not in ("N", "E", "O"):
                raise ValueError(f"{resource!r}: parity must be N, E or O")
            return cls(kind="rtu", serial_port=serial_port, baudrate=baud, parity=parity, stopbits=stop)
        raise ValueError(
            f"{resource!r} is not a Modbus resource; expected modbus+tcp://host:port, "
            "modbus+rtu:///dev/ttyX or modbus+rtu-tcp://host:port"
        )


class ModbusPending:
    """A read sent with ``ModbusTransport.send_read_input`` whose reply is read later, by ``collect()`` or
    by the next request to the device (whichever comes first; the result is kept here for ``collect()``)."""

    def __init__(self, transport: ModbusTransport, request: Any, what: str, count: int) -> None:
        self.transport = transport
        self.request = request
        self.what = what
        self.count = count
        self._registers: list[int] | None = None
        self._error: Exception | None = None

    def collect(self) -> list[int]:
        """The registers; or the error that took the reply (timeout, lost link, exception response)."""
        return self.transport._collect(self)

    def buffered(self) -> bool:
        """Whether the reply was read already (by another thread's request to the device)."""
        return self._registers is not None or self._error is not None

    def ready(self) -> bool:
        """Whether ``collect()`` would not wait: the reply was read, or bytes have arrived (a hint)."""
        if self.buffered():
            return True
        sock = self.waitable()
        try:
            return sock is not None and bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):  # closed meanwhile: collecting says what happened
            return True

    def waitable(self) -> socket.socket | None:
        """The TCP socket the reply arrives on, for ``select`` (None on a serial line)."""
        sock = getattr(self.transport._client, "socket", None)
        return sock if isinstance(sock, socket.socket) else None

    @property
    def timeout_s(self) -> float:
        return self.transport.timeout_s

    def result(self) -> list[int]:
        if self._error is not None:
            raise self._error
        if self._registers is None:
            raise AssertionError(f"{self.what}: reply neither read nor failed")
        return self._registers


class ModbusTransport:
    """One Modbus device (unit id) at an address. Thread-safe: one lock around every request."""

    def __init__(self, instrument: str, resource: str, unit_id: int, timeout_s: float = 0.5,
                 lost_after_failures: int = 3) -> None:
        self.instrument = instrument
        self.resource = resource
        self.address = ModbusAddress.parse(resource)
        self.unit_id = unit_id
        self.timeout_s = timeout_s
        self.lost_after_failures = lost_after_failures
        self.fault_count = 0
        self._consecutive_faults = 0
        self._lock = threading.Lock()
        self._client: Any = None
        #: The read sent by ``send_read_input`` whose reply has not been read yet (at most one).
        self._owed: ModbusPending | None = None

    def open(self) -> None:
        from pymodbus import FramerType
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs frame dumps on every error
        a = self.address
        with self._lock:
            if a.kind == "rtu":
                self._client = ModbusSerialClient(
                    a.serial_port, baudrate=a.baudrate, parity=a.parity, stopbits=a.stopbits,
                    timeout=self.timeout_s, retries=0,
                )
            else:
                framer = FramerType.RTU if a.kind == "rtu-tcp" else FramerType.SOCKET
                self._client = ModbusTcpClient(
                    a.host, port=a.port, framer=framer, timeout=self.timeout_s, retries=0
                )
            if not self._client.connect():
                self._client = None
                raise InstrumentLost(self.instrument, f"cannot connect to {self.resource}")

    def close(self) -> None:
        with self._lock:
            self._drop_owed("connection closed before the reply was read")
            if self._client is not None:
                self._client.close()
                self._client = None

    def read_input(self, address: int, count: int, *, retry: bool = True) -> list[int]:
        return self._read("read_input_registers", address, count, retry)

    def read_holding(self, address: int, count: int, *, retry: bool = True) -> list[int]:
        return self._read("read_holding_registers", address, count, retry)

    def write_registers(self, address: int, values: list[int], what: str | None = None) -> None:
        """Write one or more holding registers. Never retried: a lost reply leaves its fate unknown.
        ``what`` names the command in errors (default: the address and values)."""
        if len(values) == 1:
            self._request("write_register", address, values[0], what=what or f"write {address}={values[0]}")
        else:
            self._request("write_registers", address, values, what=what or f"write {address}..={values}")

    def send_read_input(self, address: int, count: int) -> ModbusPending | None:
        """Send a read of input registers and return at once; ``ModbusPending.collect()`` reads the reply.

        Lets the sampler have this request and the other instruments' on their way together, and
        check each reading as it arrives. The reply is owed to this request only:
        whoever talks to the device next reads it first, under the lock. Never retried (the caller may
        read again). None when the installed pymodbus has no way to send a request apart from reading
        its reply (its transaction manager changed): use ``read_input``.
        """
        from pymodbus.pdu.register_message import ReadInputRegistersRequest

        what = f"read input registers {address}+{count}"
        with self._lock:
            self._read_owed()
            manager = getattr(self._client, "transaction", None)
            if not all(hasattr(manager, name) for name in ("getNextTID", "pdu_send", "sync_get_response")):
                return None
            request = ReadInputRegistersRequest(address=address, count=count, dev_id=self.unit_id)
            with self._faults(what):
                if not self._client.connect():  # after a dropped connection, as a request would
                    raise InstrumentLost(self.instrument, f"cannot connect to {self.resource}", what)
                request.transaction_id = manager.getNextTID()
                manager.pdu_send(request)
            self._owed = ModbusPending(self, request, what, count)
            return self._owed

    def _collect(self, pending: ModbusPending) -> list[int]:
        with self._lock:
            if self._owed is pending:
                self._read_owed()
        return pending.result()

    def _read_owed(self) -> None:
        """Read the reply owed to the last ``send_read_input`` into its ``ModbusPending`` (under the lock)."""
        pending, self._owed = self._owed, None
        if pending is None:
            return
        request = pending.request
        try:
            with self._faults(pending.what):
                response = self._client.transaction.sync_get_response(request.dev_id, request.transaction_id)
            if response.dev_id != request.dev_id or response.transaction_id != request.transaction_id:
                self._fault()
                self._client.close()
                raise BadReply(self.instrument, f"reply for device {response.dev_id} transaction "
                               f"{response.transaction_id}, expected {request.dev_id}/{request.transaction_id}",
                               pending.what)
            self._check_response(response, pending.what)
            registers = list(response.registers)
            if len(registers) != pending.count:
                raise BadReply(self.instrument, f"asked for {pending.count} registers, got {len(registers)}",
                               pending.what)
        except InstrumentError as exc:
            pending._error = exc
            return
        pending._registers = registers

    def _drop_owed(self, why: str) -> None:
        pending, self._owed = self._owed, None
        if pending is not None:  # its reply is gone with the connection: it must never answer a later request
            pending._error = InstrumentTimeout(self.instrument, why, pending.what)

    def _read(self, function: str, address: int, count: int, retry: bool) -> list[int]:
        what = f"{function.replace('_', ' ')} {address}+{count}"
        for attempt in (1, 2):
            try:
                registers = self._request(function, address, what=what, count=count).registers
            except InstrumentTimeout:
                if not retry or attempt == 2:
                    raise
                continue
            if len(registers) != count:
                raise BadReply(self.instrument, f"asked for {count} registers, got {len(registers)}", what)
            return list(registers)
        raise AssertionError("unreachable")

    def _request(self, function: str, *args: Any, what: str, **kwargs: Any) -> Any:
        with self._lock:
            self._read_owed()
            with self._faults(what):  # which also refuses when not connected
                response = getattr(self._client, function)(*args, device_id=self.unit_id, **kwargs)
            return self._check_response(response, what)

    def _check_response(self, response: Any, what: str) -> Any:
        if response.isError():
            # An exception response is an answer: the link is fine, the device said no.
            self._consecutive_faults = 0
            raise ModbusDeviceError(self.instrument, what, int(getattr(response, "exception_code", 0)))
        self._consecutive_faults = 0
        log.debug("%s: %s ok", self.instrument, what)
        return response

    @contextlib.contextmanager
    def _faults(self, what: str) -> Iterator[None]:
        """pymodbus' failures during a request as our faults (counted); a timeout drops the connection."""
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        if self._client is None:
            raise InstrumentLost(self.instrument, "not connected", what)
        try:
            yield
        except ConnectionException as exc:
            self._fault()
            raise InstrumentLost(self.instrument, f"connection failed: {exc}", what) from None
        except (ModbusIOException, TimeoutError):  # TimeoutError: a split read's own (an OSError: first)
            self._fault()
            # The late reply would be taken for the next request's: RTU frames carry no transaction
            # id. Drop the connection; the sync client reconnects on the next request.
            self._client.close()
            if self._consecutive_faults >= self.lost_after_failures:
                raise InstrumentLost(
                    self.instrument, f"{self._consecutive_faults} consecutive timeouts: device lost", what
                ) from None
            raise InstrumentTimeout(self.instrument, f"no reply within {self.timeout_s:g} s", what) from None
        except OSError as exc:  # pymodbus lets a reset during recv() through raw (ConnectionResetError)
            self._fault()
            self._client.close()
            raise InstrumentLost(self.instrument, f"connection failed: {exc}", what) from None

    def _fault(self) -> None:
        self.fault_count += 1
        self._consecutive_faults += 1
