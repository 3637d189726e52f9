"""Pin a driver's wire protocol: the exact lines it sends and the replies it gets, all consumed.

In the style of pymeasure's ``expected_protocol``: the real ``ScpiTransport`` runs (joining batched
queries, reading the error queue), only the pyvisa resource underneath is replaced by a script. The
tables in the driver tests are transcribed from the vendors' manuals; end-to-end tests against the
simulated servers use real pyvisa-py sockets instead.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

NO_ERROR = '0,"No error"'
#: In a script: the transport closes the connection and opens a fresh one here.
RECONNECT: tuple[str, str | None] = ("<reconnect>", None)
#: EA's error check: the alarm status first, in the same line, because reading the queue acknowledges it.
EA_ERROR_CHECK = "STAT:QUES:COND?;:SYST:ERR?"


def checked(command: str) -> list[tuple[str, str | None]]:
    """A write followed by the error-queue read the transport does after it."""
    return [(command, None), ("SYST:ERR?", NO_ERROR)]


def ea_checked(command: str, status: str = "1024") -> list[tuple[str, str | None]]:
    """An EA write and its error check (status 1024: remote, no alarm)."""
    return [(command, None), (EA_ERROR_CHECK, f"{status};{NO_ERROR}")]


class WireScript:
    """Stands in for a pyvisa resource: checks each written line against the script, in order."""

    def __init__(self, pairs: Sequence[tuple[str, str | None]]) -> None:
        self.pairs = list(pairs)
        self.index = 0
        #: Replies not yet read: a probe sends its query and a marker query before reading.
        self.pending: deque[str] = deque()

    def write(self, message: str) -> None:
        assert self.index < len(self.pairs), f"unexpected extra command {message!r}"
        expected, reply = self.pairs[self.index]
        assert message == expected, f"command {self.index}: sent {message!r}, manual table says {expected!r}"
        self.index += 1
        if reply is not None:
            self.pending.append(reply)

    def read(self) -> str:
        """The next reply; a VISA timeout when the script has none (the unit did not answer)."""
        if not self.pending:
            import pyvisa

            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)
        return self.pending.popleft()

    def reconnect(self) -> None:
        assert self.index < len(self.pairs) and self.pairs[self.index] == RECONNECT, \
            f"unexpected reconnect at command {self.index}; script says {self.pairs[self.index:][:1]}"
        self.index += 1
        self.pending.clear()  # a fresh connection: nothing late arrives on it

    def close(self) -> None:
        pass


def flatten(items: Sequence[Any]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for item in items:
        out.extend(item if isinstance(item, list) else [item])
    return out


@contextlib.contextmanager
def expected_protocol(driver: Any, *items: Any) -> Iterator[Any]:
    """``with expected_protocol(drv, ("VOLT 10", None), checked("OUTP ON")) as d: ...``"""
    script = WireScript(flatten(items))
    driver.transport._handle = script

    def reopen() -> None:
        script.reconnect()
        driver.transport._handle = script

    driver.transport._open_handle = reopen
    driver.transport._last_io = time.monotonic()
    yield driver
    assert script.index == len(script.pairs), f"commands never sent: {script.pairs[script.index:]}"
