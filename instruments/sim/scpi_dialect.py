"""How a simulated instrument parses SCPI, the way a real one does.

A dialect declares its commands in the manual's notation, e.g. ``[SOURce:]VOLTage[:LEVel]`` or
``MEASure:CURRent?``; the parser accepts every short/long, upper/lower-case spelling of it and resolves
``;``-joined commands relative to the previous header's path (``MEAS:VOLT?;CURR?`` is
``MEAS:CURR?``; a leading ``:`` returns to the root), per SCPI-99 vol. 1, 6.2.

An unknown header puts ``-113,"Undefined header"`` (or the dialect's ``UNKNOWN_COMMAND``) in the error
queue and the rest of the line is discarded; a query that fails gets no reply (the client times out,
as with real units).

**Firmware variants.** Real firmware lacks or refuses commands a manual lists. A dialect names the
variants it can play in ``VARIANTS`` (variant -> the command specs that firmware lacks); behaviours
that are not a missing command (e.g. a clear that re-enables the output) read ``self.variants``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from instruments.sim.model import BenchModel, PowerUnit

Handler = Callable[[list[str]], "str | None"]


class ScpiCommandError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code},{message}")
        self.code = code
        self.message = message


UNDEFINED_HEADER = (-113, "Undefined header")
SETTINGS_CONFLICT = (-221, "Settings conflict")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
TOO_MUCH_DATA = (-223, "Too much data")
ILLEGAL_PARAMETER = (-224, "Illegal parameter value")
MISSING_PARAMETER = (-109, "Missing parameter")


def compile_header(spec: str) -> re.Pattern[str]:
    """``[SOURce:]VOLTage[:LEVel]`` -> a regex accepting ``VOLT``, ``sour:voltage:lev`` ..."""
    out: list[str] = []
    for token in re.findall(r"\[|\]|:|\?|\*?[A-Za-z][A-Za-z0-9]*", spec):
        if token == "[":
            out.append("(?:")
        elif token == "]":
            out.append(")?")
        elif token in (":", "?") or token.startswith("*"):
            out.append(re.escape(token))
        else:
            short = "".join(ch for ch in token if not ch.islower())
            out.append(f"(?:{token.upper()}|{short})" if short != token.upper() else token.upper())
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE)


def split_message(line: str) -> list[str]:
    """Split a program message at ``;`` outside quoted strings."""
    units, current, quote = [], [], ""
    for ch in line:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch == ";":
            units.append("".join(current))
            current = []
        else:
            current.append(ch)
    units.append("".join(current))
    return [u.strip() for u in units if u.strip()]


@dataclass
class Command:
    spec: str
    pattern: re.Pattern[str]
    handler: Handler


class CommandLog:
    """Every command line a simulated unit received, in order, for tests that audit the wire.

    The server's thread appends while a test reads; iterating a bare deque that another thread
    appends to raises "deque mutated during iteration". Readers therefore get a snapshot taken under
    a lock, never the live deque.
    """

    def __init__(self, maxlen: int) -> None:
        self._lines: deque[str] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def __contains__(self, line: object) -> bool:
        return line in self.snapshot()


class Dialect:
    """Base of every simulated instrument: command table, error queue, common commands, command log."""

    MANUFACTURER = "SIM"
    #: What an unknown command puts in the error queue (EA: -100 "Command error").
    UNKNOWN_COMMAND: tuple[int, str] = UNDEFINED_HEADER
    #: Firmware variants this dialect can play: name -> command specs that firmware lacks.
    VARIANTS: dict[str, tuple[str, ...]] = {}  # noqa: RUF012 - read-only table
    MAX_COMMANDS_PER_LINE: int | None = None
    #: Seconds (real) of silence after which the unit closes the connection (EA: 5 s).
    IDLE_DROP_S: float | None = None

    def __init__(self, bench: BenchModel, unit: PowerUnit, model: str, serial: str, firmware: str = "1.0",
                 variants: tuple[str, ...] = ()) -> None:
        unknown = [v for v in variants if v not in self.VARIANTS]
        if unknown:
            raise ValueError(f"{type(self).__name__} cannot play {unknown}; it knows {sorted(self.VARIANTS)}")
        self.variants = frozenset(variants)
        self.bench = bench
        self.unit = unit
        self.idn = f"{self.MANUFACTURER},{model},{serial},{firmware}"
        self.errors: deque[tuple[int, str]] = deque(maxlen=30)
        #: Every command line received, in order, for tests that audit what reached the instrument.
        self.log = CommandLog(maxlen=200_000)
        self._commands: list[Command] = []
        self.command("*IDN?", lambda a: self.idn)
        self.command("*CLS", self._cls)
        self.command("*OPC?", lambda a: "1")
        self.command("*RST", lambda a: self.reset())
        self.command("SYSTem:ERRor[:NEXT]?", self._next_error)
        self.define()
        lacking = {spec for v in variants for spec in self.VARIANTS[v]}
        self._commands = [c for c in self._commands if c.spec not in lacking]

    # -- declaration -----------------------------------------------------------------------------

    def define(self) -> None:
        """Dialects declare their commands here with ``self.command(spec, handler)``."""

    def command(self, spec: str, handler: Handler) -> None:
        self._commands.append(Command(spec, compile_header(spec), handler))

    def reset(self) -> None:
        """``*RST``: dialects override with the manual's reset state."""

    def remote_required(self, header: str) -> bool:
        """Whether a command is refused in the present remote state (EA's lock)."""
        return False

    # -- common commands -------------------------------------------------------------------------

    def _cls(self, args: list[str]) -> None:
        self.errors.clear()

    def _next_error(self, args: list[str]) -> str:
        code, message = self.errors.popleft() if self.errors else (0, "No error")
        return f'{code},"{message}"'

    def push_error(self, code: int, message: str) -> None:
        self.errors.append((code, message))

    # -- argument helpers ------------------------------------------------------------------------

    def number(self, args: list[str], low: float = float("-inf"), high: float = float("inf")) -> float:
        if not args:
            raise ScpiCommandError(*MISSING_PARAMETER)
        text = re.sub(r"\s*[A-Za-z]+$", "", args[0].strip())  # "12V" / "12 V": units allowed
        try:
            value = float(text)
        except ValueError:
            raise ScpiCommandError(-104, "Data type error") from None
        if not low <= value <= high:
            raise ScpiCommandError(*DATA_OUT_OF_RANGE)
        return value

    @staticmethod
    def boolean(args: list[str]) -> bool:
        if not args:
            raise ScpiCommandError(*MISSING_PARAMETER)
        word = args[0].strip().upper()
        if word in ("1", "ON"):
            return True
        if word in ("0", "OFF"):
            return False
        raise ScpiCommandError(*ILLEGAL_PARAMETER)

    # -- execution -------------------------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        """Execute one program message; return the joined replies of its queries, or None."""
        self.log.append(line)
        units = split_message(line)
        if self.MAX_COMMANDS_PER_LINE is not None and len(units) > self.MAX_COMMANDS_PER_LINE:
            self.push_error(*TOO_MUCH_DATA)
            return None
        replies: list[str] = []
        path = ""
        with self.bench.lock:
            self.bench.advance()
            self.unit.last_io = time.monotonic()
            for unit in units:
                header, _, argtext = unit.partition(" ")
                args = [a.strip() for a in argtext.split(",")] if argtext.strip() else []
                if header.startswith("*"):
                    resolved = header
                elif header.startswith(":"):
                    resolved = header[1:]
                else:
                    resolved = f"{path}:{header}" if path else header
                if not header.startswith("*"):
                    path = resolved.rsplit(":", 1)[0] if ":" in resolved else ""
                command = self._find(resolved)
                if command is None:
                    self.push_error(*self.UNKNOWN_COMMAND)
                    return None  # a command error discards the rest of the message
                try:
                    if not resolved.endswith("?") and self.remote_required(resolved):
                        raise ScpiCommandError(*SETTINGS_CONFLICT)
                    reply = command.handler(args)
                except ScpiCommandError as exc:
                    self.push_error(exc.code, exc.message)
                    if resolved.endswith("?"):
                        return None
                    continue
                if resolved.endswith("?"):
                    replies.append("" if reply is None else str(reply))
                else:
                    self.bench.solve()
        return ";".join(replies) if replies else None

    def _find(self, header: str) -> Command | None:
        for command in self._commands:
            if command.pattern.match(header):
                return command
        return None
