"""SCPI over pyvisa (pyvisa-py backend by default): the one place that talks to the wire.

Resource strings are VISA's: ``TCPIP::host::5025::SOCKET`` (LAN socket), ``TCPIP::host::INSTR``
(VXI-11), ``TCPIP::host::hislip0::INSTR``, ``USB0::0x2A8D::...::INSTR`` (USBTMC) and
``ASRL/dev/ttyUSB0::INSTR`` (RS-232 through pyserial).

What this layer guarantees, learnt from pyvisa-py's behaviour (see shared library notes, section 4):

- **One lock per resource.** Two threads on one pyvisa-py resource swap replies and can hang in a
  blocking ``recv``; every exchange here holds the instrument's lock.
- **A timeout poisons the stream.** The late reply arrives on the next query and ``clear()`` does not
  help on sockets, so after any timeout the resource is closed and reopened before it is trusted again.
- **A dead peer is invisible to reads** and opening a closed port "succeeds": before each message a
  pyvisa-py socket is checked for a connection the instrument closed, and faults are counted:
  ``lost_after_failures`` consecutive faults make the instrument *lost* (only a reply resets the count:
  a write to a hung unit "succeeds" into the socket buffer).
- **Writes are never repeated.** Only queries that change nothing may be retried (``query(...,
  retry=True)``); a write whose fate is unknown raises, and the caller decides.
- The error queue (``SYST:ERR?``) is read after every checked write: a refused setpoint is otherwise
  silent on most instruments. It is also read after a query that got no reply (or a batch that got
  too few), and what it holds is blamed on *that* query: a refused query's error must never be
  drained later by a write the instrument accepted.
- **Unsolicited bytes mean the stream is out of step.** Before each exchange the socket (and
  pyvisa-py's own read buffer) is peeked without blocking; a surplus line (a duplicated or stray
  reply) would otherwise answer the next query. The connection is reopened and a fault counted
  before anything is sent, so no stale reply is ever taken for the next one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from instruments.errors import BadReply, InstrumentFault, InstrumentLost, InstrumentTimeout, ScpiError

log = logging.getLogger("instruments.scpi")

_rm_lock = threading.Lock()
_rm: Any = None


def resource_manager() -> Any:
    """The process's one VISA resource manager (``RIG_VISA_BACKEND``, default ``@py``).

    pyvisa hands every caller the same manager, and closing it closes it for all, so it is created
    once and never closed.
    """
    global _rm
    with _rm_lock:
        if _rm is None:
            import pyvisa  # deferred: ~50 ms, not needed for `rig --help`

            _rm = pyvisa.ResourceManager(os.environ.get("RIG_VISA_BACKEND", "@py"))
        return _rm


@dataclass(frozen=True)
class ScpiSettings:
    """Per-dialect transport behaviour."""

    timeout_s: float = 2.0
    read_termination: str = "\n"
    write_termination: str = "\n"
    #: Some units need a pause between messages (EA: >= 5 ms).
    min_gap_s: float = 0.0
    #: Some units drop an idle TCP connection (EA: after 5 s); reconnect before talking after this long.
    idle_reconnect_s: float | None = None
    #: Most commands one line may carry (EA: 5, more is refused with -223 and nothing executed).
    max_commands_per_line: int = 8
    #: Consecutive timeouts / connection errors after which the instrument counts as lost.
    lost_after_failures: int = 3
    error_query: str = "SYST:ERR?"
    #: A query sent in the same line just before every error-queue read, its reply handed to the
    #: transport's ``on_alarm_status`` (EA: reading the queue acknowledges an alarm, so the status
    #: register is read first or the alarm's cause is lost).
    alarm_query: str | None = None


_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zΩ%]*)\s*$")
_ERROR = re.compile(r'^\s*([-+]?\d+)\s*,\s*"?(.*?)"?\s*$')


def format_number(value: float) -> str:
    """A setpoint as SCPI NR2/NR3 text, without float noise (``0.1`` not ``0.1000000000000000055``)."""
    return f"{value:.7g}"


def parse_number(instrument: str, command: str, reply: str) -> float:
    """Parse NR1/NR2/NR3, with or without a unit suffix (EA answers ``43.50 V``)."""
    match = _NUMBER.match(reply)
    if not match:
        raise BadReply(instrument, f"reply {reply!r} is not a number", command)
    return float(match.group(1))


def batch_line(commands: Sequence[str]) -> str:
    """Queries as one SCPI line: ``MEAS:VOLT?;:OUTP?`` (each part from the root of the tree)."""
    return ";:".join(c.lstrip(":") for c in commands)


def parse_bool(instrument: str, command: str, reply: str) -> bool:
    text = reply.strip().upper()
    if text in ("1", "ON"):
        return True
    if text in ("0", "OFF"):
        return False
    raise BadReply(instrument, f"reply {reply!r} is not one of 1|0|ON|OFF", command)


def parse_error(instrument: str, reply: str) -> tuple[int, str]:
    match = _ERROR.match(reply)
    if not match:
        raise BadReply(instrument, f"reply {reply!r} is not '<code>,\"<message>\"'", "SYST:ERR?")
    return int(match.group(1)), match.group(2)


class Pending:
    """A query sent with ``ScpiTransport.send`` whose reply is read later, by ``collect()`` or by the next
    exchange with the unit (whichever comes first; the reply is kept here for ``collect()``)."""

    def __init__(self, transport: ScpiTransport, message: str) -> None:
        self.transport = transport
        self.message = message
        self._reply: str | None = None
        self._error: InstrumentFault | None = None

    def collect(self) -> str:
        """The reply line (stripped); the fault that took it (``InstrumentTimeout``, ``InstrumentLost``)."""
        return self.transport._collect(self)

    def ready(self) -> bool:
        """Whether ``collect()`` would not wait: the reply was read, or its bytes have arrived (a hint)."""
        return self.buffered() or self.transport._reply_waiting()

    def buffered(self) -> bool:
        """Whether the reply is here without asking the socket: read already (by another thread), or
        bytes of it in pyvisa-py's buffer, where ``select`` cannot see them."""
        return self._reply is not None or self._error is not None or \
            bool(getattr(self.transport._session(), "_pending_buffer", None))

    def waitable(self) -> socket.socket | None:
        """The socket the reply arrives on, for ``select`` (None for sessions that have none)."""
        return self.transport._socket()

    @property
    def timeout_s(self) -> float:
        return self.transport.settings.timeout_s

    def succeed(self, reply: str) -> None:
        self._reply = reply

    def fail(self, error: InstrumentFault) -> None:
        self._error = error

    def result(self) -> str:
        if self._error is not None:
            raise self._error
        if self._reply is None:
            raise AssertionError(f"{self.message!r}: reply neither read nor failed")
        return self._reply


class ScpiTransport:
    """A SCPI instrument at a VISA resource, safe to share between threads."""

    def __init__(
        self,
        instrument: str,
        resource: str,
        settings: ScpiSettings | None = None,
        visa_options: dict[str, Any] | None = None,
    ) -> None:
        self.instrument = instrument
        self.resource = resource
        self.settings = settings or ScpiSettings()
        self.visa_options = dict(visa_options or {})
        #: Called after every reconnect (not the first open), e.g. to take the remote lock again.
        self.on_reconnect: Callable[[], None] | None = None
        #: Called with the reply of ``settings.alarm_query`` before every error-queue read.
        self.on_alarm_status: Callable[[str], None] | None = None
        #: False for a read-only session (``rig monitor``): it never reads the error queue, which would
        #: take another session's errors (and, on EA units, acknowledge its alarms).
        self.reads_errors = True
        #: Whether reopening gives a fresh stream that no late reply can reach (network sessions). On a
        #: serial or USB line a late reply may still arrive after the reopen, so a silent query is not
        #: followed at once by another question there.
        self.fresh_on_reopen = not resource.strip().upper().startswith(("ASRL", "USB", "GPIB"))
        self.fault_count = 0
        self._consecutive_faults = 0
        self._lock = threading.RLock()
        self._handle: Any = None
        self._last_io = 0.0
        self._reconnecting = False
        #: How often a surplus line put the stream out of step (each also counts as a fault).
        self.resyncs = 0
        #: The request sent by ``send`` whose reply has not been read yet (at most one).
        self._owed: Pending | None = None
        self._session_of: Any = None  # the handle whose pyvisa-py session is cached below
        self._session_cache: Any = None

    # -- life cycle ------------------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            self._open_handle()

    def close(self) -> None:
        with self._lock:
            self._close_handle()

    @property
    def is_open(self) -> bool:
        return self._handle is not None

    def _open_handle(self) -> None:
        import pyvisa

        try:
            self._handle = resource_manager().open_resource(
                self.resource,
                read_termination=self.settings.read_termination,
                write_termination=self.settings.write_termination,
                timeout=int(self.settings.timeout_s * 1000),
                **self.visa_options,
            )
        except (pyvisa.errors.VisaIOError, OSError, ValueError) as exc:
            self._handle = None
            raise InstrumentLost(self.instrument, f"cannot open {self.resource}: {_describe(exc)}") from None
        self._no_delay()
        self._last_io = time.monotonic()

    def _no_delay(self) -> None:
        """Send each message at once (TCP_NODELAY). Without it, Nagle's algorithm holds a query written
        right after a command until the instrument's delayed ACK: measured 42 ms per write + query.
        (VI_ATTR_TCPIP_NODELAY would be the VISA way; pyvisa-py 0.8.1 has the setter but does not
        register it for SOCKET sessions, so the option is set on its socket directly.)"""
        sock = self._socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _session(self) -> Any:
        """The pyvisa-py session object under the resource, or None for other backends (looked up once
        per connection: it is on the hot path, before every message)."""
        if self._handle is None:
            return None
        if self._session_of is not self._handle:
            try:
                self._session_cache = self._handle.visalib.sessions[self._handle.session]
            except (AttributeError, KeyError, TypeError):
                self._session_cache = None
            self._session_of = self._handle
        return self._session_cache

    def _socket(self) -> socket.socket | None:
        """The TCP socket under a pyvisa-py SOCKET session, or None for other sessions and backends."""
        sock = getattr(self._session(), "interface", None)
        return sock if isinstance(sock, socket.socket) else None

    def _close_handle(self) -> None:
        owed, self._owed = self._owed, None
        if owed is not None:  # its reply is gone with this connection; it must never reach a later request
            owed.fail(InstrumentTimeout(self.instrument, "connection closed before the reply was read", owed.message))
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except Exception as exc:  # a broken socket may fail to close; it is gone either way
                log.debug("%s: close failed: %s", self.instrument, exc)

    def _reconnect(self, why: str) -> None:
        log.info("%s: reconnecting (%s)", self.instrument, why)
        self._close_handle()
        self._open_handle()
        self._after_reconnect()

    def _after_reconnect(self) -> None:
        if self.on_reconnect is not None and not self._reconnecting:
            self._reconnecting = True
            try:
                self.on_reconnect()
            finally:
                self._reconnecting = False

    # -- exchanges -------------------------------------------------------------------------------

    def _exchange(self, message: str, expect_reply: bool, marker: tuple[str, str] | None = None) -> str | None:
        """Send ``message`` and read its reply. With ``marker`` (a query and its known reply) the marker
        query follows as a second message: a first line equal to the marker's reply means ``message``
        got no reply (returned as None) - a probe that never waits for a timeout."""
        with self._lock:
            self._before_send(message)
            with self._io(message):
                self._check_stream(message)
                self._handle.write(message)
                if marker is not None:
                    reply = self._read_with_marker(message, marker)
                else:
                    reply = self._handle.read() if expect_reply else None
            if expect_reply:  # only a reply proves the unit alive: a write lands in the socket buffer anyway
                self._consecutive_faults = 0
            log.debug("%s: %s -> %r", self.instrument, message, reply)
            return reply

    def send(self, query: str) -> Pending:
        """Send ``query`` and return at once; ``Pending.collect()`` reads its reply later.

        Lets one thread put a request on every instrument's wire before it waits for any reply (the
        sampler). The reply is owed to this request and to nothing else: whoever talks to the unit next,
        from any thread, first reads it into the ``Pending`` (under the lock, before its own checks and
        message), so the wire stays request, reply, request, reply, and a reply never answers the next
        request. A connection closed before the reply was read (a timeout elsewhere, a reopen) fails the
        ``Pending`` with ``InstrumentTimeout``: the reply is gone with that connection. Never retried.
        """
        with self._lock:
            self._before_send(query)
            pending = Pending(self, query)
            with self._io(query):
                self._check_stream(query)
                self._handle.write(query)
            self._owed = pending
            return pending

    def _collect(self, pending: Pending) -> str:
        with self._lock:
            if self._owed is pending:
                self._read_owed()
        return pending.result()

    def _read_owed(self) -> None:
        """Read the reply owed to the last ``send`` into its ``Pending`` (under the lock)."""
        pending, self._owed = self._owed, None
        assert pending is not None
        try:
            with self._io(pending.message):
                reply = self._handle.read()
        except InstrumentFault as exc:
            pending.fail(exc)
            return
        self._consecutive_faults = 0
        log.debug("%s: %s -> %r", self.instrument, pending.message, reply)
        pending.succeed(reply.strip())

    def _before_send(self, message: str) -> None:
        """Under the lock, before ``message`` goes out: the reply still owed to an earlier ``send`` is
        read first; then a connection that is missing or idle too long is opened afresh, and the
        dialect's gap between messages is kept."""
        if self._owed is not None:
            log.debug("%s: reading the reply owed to %r before %r", self.instrument, self._owed.message, message)
            self._read_owed()
        if self._handle is None:
            self._reconnect_before(message, "not connected")
        idle = self.settings.idle_reconnect_s
        if idle is not None and time.monotonic() - self._last_io > idle and not self._reconnecting:
            self._reconnect_before(message, f"idle for more than {idle:g} s; the unit drops idle connections")
        gap = self.settings.min_gap_s - (time.monotonic() - self._last_io)
        if gap > 0:
            time.sleep(gap)

    def _check_stream(self, message: str) -> None:
        state = self._stream_state()
        if state == "closed":  # a write would vanish and the read time out: say what happened
            raise ConnectionAbortedError("the instrument closed the connection (nothing sent)")
        if state:
            self._resync(message, state)

    @contextlib.contextmanager
    def _io(self, message: str) -> Iterator[None]:
        """Wire I/O about ``message``: pyvisa's and the socket's failures become our faults (counted),
        and a timeout closes the connection, since its late reply would answer the next query."""
        import pyvisa

        try:
            yield
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                self._fault()
                try:
                    closed = self._peer_closed()
                except OSError:
                    closed = True
                # The late reply would poison the next query: start a fresh connection.
                self._close_handle()
                if closed:
                    raise InstrumentLost(
                        self.instrument, "the instrument closed the connection without replying", message
                    ) from None
                self._raise_lost_if_repeated(message)
                raise InstrumentTimeout(
                    self.instrument, f"no reply within {self.settings.timeout_s:g} s", message
                ) from None
            self._fault()
            self._close_handle()
            raise InstrumentLost(self.instrument, _describe(exc), message) from None
        except OSError as exc:  # refused, reset, broken pipe: pyvisa-py raises these raw
            self._fault()
            self._close_handle()
            raise InstrumentLost(self.instrument, f"connection failed: {_describe(exc)}", message) from None
        finally:
            self._last_io = time.monotonic()

    def _read_with_marker(self, message: str, marker: tuple[str, str]) -> str | None:
        query, expected = marker
        gap = self.settings.min_gap_s
        if gap > 0:
            time.sleep(gap)
        self._handle.write(query)
        first = self._handle.read()
        if first.strip() == expected:
            return None
        second = self._handle.read()
        if second.strip() != expected:
            self._fault()
            self._close_handle()
            raise BadReply(self.instrument, f"marker {query!r} answered {second!r}, expected {expected!r}", message)
        return first

    def _reconnect_before(self, message: str, why: str) -> None:
        """Reconnect before sending ``message``; a failure names ``message`` (which was not sent)."""
        try:
            self._reconnect(why)
        except InstrumentFault as exc:
            kind = type(exc) if type(exc) in (InstrumentTimeout, InstrumentLost, BadReply) else InstrumentFault
            inner = str(exc).removeprefix(f"{self.instrument}: ")
            raise kind(self.instrument, f"not sent, reconnect failed: {inner}", message) from None

    def _stream_state(self) -> str:
        """``""`` when nothing is waiting to be read (the stream is in step), ``"closed"`` when the
        instrument closed a pyvisa-py SOCKET connection (its reads never report EOF), else a description
        of the unsolicited bytes waiting. A non-blocking peek: no wait on the hot path.

        Empty for other sessions and backends. A reset or refused connection raises its ``OSError``.
        """
        session = self._session()
        pending = bytes(getattr(session, "_pending_buffer", b"") or b"")
        sock = self._socket()
        if sock is not None:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                peeked = sock.recv(256, socket.MSG_PEEK)
                if not peeked and not pending:
                    return "closed"
                pending += peeked
        return f"{len(pending)}{'+' if len(pending) >= 256 else ''} unsolicited bytes {pending[:40]!r}" if pending \
            else ""

    def _resync(self, message: str, what: str) -> None:
        """A surplus line is waiting: every reply from here on would answer the query before it.
        Count a fault and start a fresh connection before ``message`` is sent (nothing was sent yet)."""
        self._fault()
        log.warning("%s: stream out of step before %r (%s): reconnecting", self.instrument, message, what)
        self.resyncs += 1
        self._reconnect_before(message, f"stream out of step: {what}")

    def _peer_closed(self) -> bool:
        """Whether the instrument closed a pyvisa-py SOCKET connection; its reads never report EOF.

        False for other sessions and backends, or while the connection is open. A reset or refused
        connection raises its ``OSError``.
        """
        sock = self._socket()
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""

    def _fault(self) -> None:
        self.fault_count += 1
        self._consecutive_faults += 1

    def _raise_lost_if_repeated(self, message: str) -> None:
        if self._consecutive_faults >= self.settings.lost_after_failures:
            raise InstrumentLost(
                self.instrument, f"{self._consecutive_faults} consecutive timeouts: instrument lost", message
            )

    def write(self, command: str) -> None:
        """Send a command without checking the error queue (prefer ``write_checked``)."""
        self._exchange(command, expect_reply=False)

    def write_if_ready(self, command: str) -> bool:
        """Send ``command`` now if that needs no wait at all, else send nothing and return False.

        For a safety trip's off commands, sent one unit after another from the thread that saw the
        trip: none may wait on another. Ready means no other thread is mid-exchange with the unit, no
        reconnect is due, the dialect's gap has elapsed, and a reply owed to a ``send`` has already
        arrived (it is read first, as always: a command sent before the reply is read would interrupt
        the query, IEEE 488.2 -410, and lose it). A unit that is not ready gets ``write`` from elsewhere.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if not self._ready_now():
                return False
            self._exchange(command, expect_reply=False)
            return True
        finally:
            self._lock.release()

    def _ready_now(self) -> bool:
        if self._handle is None:
            return False
        idle_s = time.monotonic() - self._last_io
        if self.settings.idle_reconnect_s is not None and idle_s > self.settings.idle_reconnect_s:
            return False
        if self._owed is not None:
            # the gap counts from the owed reply, which is not read yet; and an unanswered query waits
            return self.settings.min_gap_s <= 0 and self._reply_waiting()
        return idle_s >= self.settings.min_gap_s

    def _reply_waiting(self) -> bool:
        """Whether bytes are waiting to be read (pyvisa-py SOCKET sessions; False for others)."""
        if getattr(self._session(), "_pending_buffer", None):
            return True
        sock = self._socket()
        return sock is not None and bool(select.select([sock], [], [], 0)[0])

    def write_checked(self, command: str) -> None:
        """Send a command, then read the error queue; raise ``ScpiError`` if the unit refused it.

        Two messages, not ``cmd;:SYST:ERR?`` in one line: after an error, many instruments discard the
        rest of the line, and the check would become a timeout.
        """
        with self._lock:
            self.write(command)
            try:
                self.check_errors(command)
            except (InstrumentTimeout, InstrumentLost) as exc:
                # Name the command whose fate is now unknown; it is never sent again from here.
                inner = str(exc).removeprefix(f"{self.instrument}: ")
                raise type(exc)(self.instrument, f"sent, but its outcome is unknown: {inner}", command) from None

    def query(self, command: str, *, retry: bool = False) -> str:
        """Send a query and return the reply line. ``retry`` once on a fault: only for pure reads.

        A query that gets no reply may have been refused: the error queue is read at once (on a fresh
        connection) and a refusal raises ``ScpiError`` naming this query, never retried.
        """
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                reply = self._exchange(command, expect_reply=True)
                assert reply is not None
                return reply.strip()
            except InstrumentTimeout as exc:
                refused = self._refusal(command)
                if refused:
                    raise ScpiError(self.instrument, command, refused) from None
                if attempt + 1 == attempts or self._consecutive_faults >= self.settings.lost_after_failures:
                    raise
                log.info("%s: retrying read after: %s", self.instrument, exc)
            except InstrumentLost as exc:
                if attempt + 1 == attempts or self._consecutive_faults >= self.settings.lost_after_failures:
                    raise
                log.info("%s: retrying read after: %s", self.instrument, exc)
        raise AssertionError("unreachable")

    def probe(self, command: str) -> str | None:
        """Ask an optional query; None if the unit does not answer it (a refusal), without a timeout:
        ``*IDN?`` follows as a marker, so a unit that refuses ``command`` answers the marker first.
        The refusal's error stays queued: callers clear the queue (``*CLS``) before trusting it."""
        with self._lock:
            idn = self.query("*IDN?", retry=True)
            reply = self._exchange(command, expect_reply=True, marker=("*IDN?", idn))
            return None if reply is None else reply.strip()

    def _refusal(self, command: str) -> list[tuple[int, str]]:
        """After ``command`` got no reply: the errors the unit queued for it, read on a fresh connection
        *before* remote control is taken again (which clears the queue). Empty when the queue is empty
        or the unit is silent; a silent unit after an earlier timeout is not asked again (it costs a
        timeout per call, and a stalled unit must still be found lost after the usual count)."""
        if self._consecutive_faults > 1 or not self.reads_errors or not self.fresh_on_reopen:
            return []
        with self._lock:
            counted = self.fault_count, self._consecutive_faults
            try:
                self._close_handle()
                self._open_handle()
                errors = self._read_queue()
            except (InstrumentTimeout, BadReply):
                # Silent again: the timeout already counted; the next call finds out whether it is lost.
                self._close_handle()
                self.fault_count, self._consecutive_faults = counted
                return []
            except InstrumentLost as exc:
                inner = str(exc).removeprefix(f"{self.instrument}: ")
                raise InstrumentLost(self.instrument, f"no reply, then {inner}", command) from None
            self._after_reconnect()
            return errors

    def query_many(self, commands: Sequence[str], *, retry: bool = False) -> list[str]:
        """Several queries in as few round trips as the dialect allows (joined with ``;:``).

        Too few replies may mean one part was refused: the error queue is read and, if it holds
        anything, ``ScpiError`` names the whole line (callers find the part with ``probe``)."""
        replies: list[str] = []
        step = self.settings.max_commands_per_line
        for start in range(0, len(commands), step):
            chunk = [c.lstrip(":") for c in commands[start : start + step]]
            line = batch_line(chunk)
            for _attempt in range(2 if retry else 1):  # a garbled reply to pure reads: ask once more
                reply = self.query(line, retry=retry)
                parts = reply.split(";")
                if len(parts) == len(chunk):
                    break
                self._short_batch(line, reply, len(chunk))
            else:
                raise BadReply(self.instrument, f"expected {len(chunk)} replies, got {len(parts)}: {reply!r}", line)
            replies.extend(p.strip() for p in parts)
        return replies

    def collect_many(self, pending: Pending, commands: Sequence[str], *, retry: bool = False) -> list[str]:
        """The replies to a batch sent as one line with ``send(batch_line(commands))``, taken as
        ``query_many(commands, retry=retry)`` takes its own, the send counting as its first attempt: a
        query without a reply may have been refused (the error queue is read and a refusal raises
        ``ScpiError``), too few replies are checked against the queue, and with ``retry`` a fault or a
        garbled reply is followed by one more ask (``query_many`` without retry)."""
        try:
            reply = pending.collect()
        except InstrumentTimeout as exc:
            refused = self._refusal(pending.message)
            if refused:
                raise ScpiError(self.instrument, pending.message, refused) from None
            if not retry or self._consecutive_faults >= self.settings.lost_after_failures:
                raise
            log.info("%s: asking again after: %s", self.instrument, exc)
            return self.query_many(commands)
        except InstrumentLost as exc:
            if not retry or self._consecutive_faults >= self.settings.lost_after_failures:
                raise
            log.info("%s: asking again after: %s", self.instrument, exc)
            return self.query_many(commands)
        parts = reply.split(";")
        if len(parts) == len(commands):
            return [p.strip() for p in parts]
        self._short_batch(pending.message, reply, len(commands))
        if not retry:
            raise BadReply(self.instrument, f"expected {len(commands)} replies, got {len(parts)}: {reply!r}",
                           pending.message)
        return self.query_many(commands)

    def _short_batch(self, line: str, reply: str, expected: int) -> None:
        """Too few (or too many) replies to ``line``: raise ``ScpiError`` if the unit queued a refusal."""
        log.info("%s: %r: %d replies in %r, expected %d", self.instrument, line, len(reply.split(";")), reply,
                 expected)
        try:
            refused = self._read_queue() if self.reads_errors else []
        except BadReply:  # a garbled answer to the queue read too: the batch is asked again
            refused = []
        if refused:
            raise ScpiError(self.instrument, line, refused)

    def check_errors(self, command: str) -> None:
        """Drain the error queue; raise ``ScpiError`` naming ``command`` if it held anything."""
        errors = self._read_queue()
        if errors:
            raise ScpiError(self.instrument, command, errors)

    def drain_errors(self) -> list[tuple[int, str]]:
        """Read the error queue until empty and return what it held (EA: this acknowledges alarms)."""
        return self._read_queue()

    def _read_queue(self) -> list[tuple[int, str]]:
        errors: list[tuple[int, str]] = []
        query = self.settings.error_query
        for index in range(20):  # a queue is finite; a unit that never says "0" is itself broken
            reply = self._queue_reply(query, alarm_first=index == 0)
            code, message = parse_error(self.instrument, reply)
            if code == 0:
                return errors
            errors.append((code, message))
        raise BadReply(self.instrument, "error queue never reported empty", query)

    def _queue_reply(self, query: str, alarm_first: bool) -> str:
        alarm = self.settings.alarm_query
        if not (alarm_first and alarm):
            return self._plain_query(query)
        line = f"{alarm};:{query.lstrip(':')}"
        reply = self._plain_query(line)
        status, sep, error = reply.partition(";")
        if not sep:
            raise BadReply(self.instrument, f"expected 2 replies, got 1: {reply!r}", line)
        if self.on_alarm_status is not None:
            self.on_alarm_status(status.strip())
        return error

    def _plain_query(self, command: str) -> str:
        reply = self._exchange(command, expect_reply=True)
        assert reply is not None
        return reply.strip()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
