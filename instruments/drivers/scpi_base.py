"""What every SCPI driver shares: the transport, identification and remote control.

A driver subclasses ``ScpiSupply`` or ``ScpiLoad`` and writes the vendor's commands, one short method
each, as literal strings. Everything about the wire (locking, timeouts, reconnects, error queue) is
in ``instruments.scpi``.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from instruments.errors import InstrumentError
from instruments.roles import DCSupply, ElectronicLoad, Identity, Rating
from instruments.scpi import ScpiSettings, ScpiTransport, format_number, parse_bool, parse_number


class ScpiInstrument:
    """Mixin: a SCPI transport plus the helpers drivers use to speak through it."""

    SETTINGS: ClassVar[ScpiSettings] = ScpiSettings()
    #: Command that hands control back to the front panel on close (EA: SYST:LOCK OFF), if any.
    REMOTE_RELEASE: ClassVar[str | None] = None
    #: The port the vendor uses for raw SCPI sockets (documentation and `rig sim`).
    DEFAULT_PORT: ClassVar[int] = 5025
    name: str
    transport: ScpiTransport

    def _make_transport(self, resource: str, visa_options: dict[str, Any] | None) -> None:
        self.transport = ScpiTransport(self.name, resource, self.SETTINGS, visa_options)

    def _connect(self) -> None:
        self.transport.open()

    def _identify(self) -> Identity:
        return Identity.parse_idn(self.name, self.transport.query("*IDN?", retry=True))

    def _prepare(self) -> None:
        self._take_remote_control()
        self.remote_taken = True
        # From now on, every reconnect (after a timeout, or an idle drop) takes remote control again.
        self.transport.on_reconnect = self._take_remote_control

    def _take_remote_control(self) -> None:
        """Clear stale errors; dialects that need a remote lock add it (after every reconnect too)."""
        self.transport.write("*CLS")

    def close(self) -> None:
        # Release remote control only if this session took it: a read-only session (rig monitor)
        # must never take the lock away from a run in progress on another connection.
        if self.REMOTE_RELEASE and getattr(self, "remote_taken", False) and self.transport.is_open:
            with contextlib.suppress(InstrumentError):  # closing anyway; units free it on disconnect
                self.transport.write(self.REMOTE_RELEASE)
        self.remote_taken = False
        self.transport.close()

    # -- helpers for drivers ---------------------------------------------------------------------

    def _send(self, command: str) -> None:
        self.transport.write_checked(command)

    def _number(self, command: str) -> float:
        return parse_number(self.name, command, self.transport.query(command, retry=True))

    def _bool(self, command: str) -> bool:
        return parse_bool(self.name, command, self.transport.query(command, retry=True))

    def _numbers(self, *commands: str) -> list[float]:
        replies = self.transport.query_many(commands, retry=True)
        return [parse_number(self.name, c, r) for c, r in zip(commands, replies, strict=True)]

    @staticmethod
    def _n(value: float) -> str:
        return format_number(value)


class ScpiSupply(ScpiInstrument, DCSupply):
    OUTPUT_ON: ClassVar[str] = "OUTP ON"
    OUTPUT_OFF: ClassVar[str] = "OUTP OFF"

    def __init__(self, name: str, resource: str, rating: Rating,
                 visa_options: dict[str, Any] | None = None) -> None:
        DCSupply.__init__(self, name, rating)
        self._make_transport(resource, visa_options)

    def _set_output(self, on: bool) -> None:
        self._send(self.OUTPUT_ON if on else self.OUTPUT_OFF)

    def emergency_off(self) -> None:
        self.transport.write(self.OUTPUT_OFF)


class ScpiLoad(ScpiInstrument, ElectronicLoad):
    INPUT_ON: ClassVar[str] = "INP ON"
    INPUT_OFF: ClassVar[str] = "INP OFF"

    def __init__(self, name: str, resource: str, rating: Rating,
                 visa_options: dict[str, Any] | None = None) -> None:
        ElectronicLoad.__init__(self, name, rating)
        self._make_transport(resource, visa_options)

    def _set_input(self, on: bool) -> None:
        self._send(self.INPUT_ON if on else self.INPUT_OFF)

    def emergency_off(self) -> None:
        self.transport.write(self.INPUT_OFF)
