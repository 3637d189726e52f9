"""Errors raised by transports and drivers.

Each message is one line that names the instrument, the command and what was expected, so a technician
can act on it without a traceback. ``InstrumentFault`` and its subclasses mean the bench is in doubt
(the rig goes to the safe state); ``SetpointRefused`` means nothing was sent.
"""

from __future__ import annotations

from typing import ClassVar


class InstrumentError(Exception):
    """Base class: something about an instrument went wrong."""

    def __init__(self, instrument: str, message: str, command: str | None = None) -> None:
        self.instrument = instrument
        self.command = command
        where = f"{instrument}: {command!r}: " if command else f"{instrument}: "
        super().__init__(where + message)


class SetpointRefused(InstrumentError):
    """A setpoint beyond a limit; it was not sent."""


class NotSupported(InstrumentError):
    """The instrument has no such capability (e.g. no I/O watchdog)."""


class WrongInstrument(InstrumentError):
    """Something answered at the address, but not the model the driver expects."""


class FixtureClaimed(InstrumentError):
    """The inlet fixture is owned by another session (register map v2 claim): this one must not drive it."""


class InstrumentFault(InstrumentError):
    """The instrument did not behave: the bench state is in doubt."""


class InstrumentTimeout(InstrumentFault):
    """No reply within the timeout."""


class InstrumentLost(InstrumentFault):
    """The connection is gone (refused, reset, or too many consecutive timeouts)."""


class BadReply(InstrumentFault):
    """A reply that is not what the command returns (garbage, wrong type, wrong count)."""


class ScpiError(InstrumentFault):
    """The instrument's SCPI error queue reported an error after a command."""

    def __init__(self, instrument: str, command: str, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        text = "; ".join(f"{code},{msg!r}" for code, msg in errors)
        super().__init__(instrument, f"instrument reported {text}", command)


class ModbusDeviceError(InstrumentFault):
    """The Modbus device answered with an exception response."""

    # Modbus application protocol v1.1b3, section 7.
    MEANINGS: ClassVar[dict[int, str]] = {
        1: "illegal function",
        2: "illegal data address",
        3: "illegal data value",
        4: "server device failure",
        5: "acknowledge",
        6: "server device busy",
        8: "memory parity error",
        10: "gateway path unavailable",
        11: "gateway target failed to respond",
    }

    def __init__(self, instrument: str, command: str, code: int) -> None:
        self.code = code
        meaning = self.MEANINGS.get(code, "unknown exception")
        super().__init__(instrument, f"Modbus exception {code} ({meaning})", command)
