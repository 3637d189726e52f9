"""What every SCPI driver shares: the transport, identification, remote control and optional features.

A driver subclasses ``ScpiSupply`` or ``ScpiLoad`` and writes the vendor's commands, one short method
each, as literal strings. Everything about the wire (locking, timeouts, reconnects, error queue) is
in ``instruments.scpi``.

Optional commands are declared in ``OPTIONAL`` (``instruments.capabilities.Feature``): probed at open
with a query that changes nothing, or learnt when first used. A batched read drops a query the unit
refuses (recorded, logged once) instead of failing every later read; a protection clear tries each
documented spelling, and a unit that accepts none is reported with what to do at its front panel.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from instruments.capabilities import Capability, Feature, is_unknown_command
from instruments.errors import InstrumentError, InstrumentTimeout, NotSupported, ScpiError
from instruments.roles import DCSupply, ElectronicLoad, Identity, LoadReading, Rating, SupplyReading
from instruments.scpi import (
    Pending,
    ScpiSettings,
    ScpiTransport,
    batch_line,
    format_number,
    parse_bool,
    parse_number,
)

log = logging.getLogger("instruments")


@dataclass(frozen=True)
class SentBatch:
    """A measurement's batch on the wire: the queries it holds and its reply to come."""

    queries: tuple[str, ...]
    pending: Pending

    def ready(self) -> bool:
        return self.pending.ready()

    def buffered(self) -> bool:
        return self.pending.buffered()

    def waitable(self) -> socket.socket | None:
        return self.pending.waitable()

    @property
    def timeout_s(self) -> float:
        return self.pending.timeout_s


class ScpiInstrument:
    """Mixin: a SCPI transport plus the helpers drivers use to speak through it."""

    SETTINGS: ClassVar[ScpiSettings] = ScpiSettings()
    #: Command that hands control back to the front panel on close (EA: SYST:LOCK OFF), if any.
    REMOTE_RELEASE: ClassVar[str | None] = None
    #: The port the vendor uses for raw SCPI sockets (documentation and `rig sim`).
    DEFAULT_PORT: ClassVar[int] = 5025
    #: Optional features (see the module docstring); the driver's docstring says the same in words.
    OPTIONAL: ClassVar[tuple[Feature, ...]] = ()
    #: The queries of one measurement, asked as one batch (``measure``, or ``send_measure`` then
    #: ``collect_measure``); the driver's ``_parse_measure`` reads their replies.
    MEASURE: ClassVar[tuple[str, ...]] = ()
    #: Documented protection-clear commands, tried in order until the unit accepts one.
    CLEAR: ClassVar[tuple[str, ...]] = ()
    #: What the operator does at the unit when no clear command is accepted.
    FRONT_PANEL_CLEAR: ClassVar[str] = "clear the protection at the unit's front panel, then re-arm"
    name: str
    transport: ScpiTransport
    capabilities: dict[str, Capability]

    def _make_transport(self, resource: str, visa_options: dict[str, Any] | None) -> None:
        self.transport = ScpiTransport(self.name, resource, self.SETTINGS, visa_options)
        self.remote_taken = False
        self._refused_clears: set[str] = set()
        self._priority_tried = False

    def open(self, *, prepare: bool = True) -> Identity:
        self.transport.reads_errors = prepare  # a read-only session never takes another's errors
        return super().open(prepare=prepare)  # type: ignore[misc]  # Instrument.open, via the role

    def _connect(self) -> None:
        self.transport.open()

    def _identify(self) -> Identity:
        return Identity.parse_idn(self.name, self.transport.query("*IDN?", retry=True))

    def _prepare(self) -> None:
        self.probe_capabilities()  # queries only; their refusals are cleared by the *CLS below
        # Recorded first: a failure half way through still hands the front panel back at close.
        self.remote_taken = True
        self._take_remote_control()
        # From now on, every reconnect (after a timeout, or an idle drop) takes remote control again.
        self.transport.on_reconnect = self._take_remote_control

    def _take_remote_control(self) -> None:
        """Clear stale errors; dialects that need a remote lock add it (after every reconnect too)."""
        self.transport.write("*CLS")

    def close(self) -> None:
        # Release remote control only if this session took it: a read-only session (rig monitor)
        # must never take the lock away from a run in progress on another connection.
        if self.REMOTE_RELEASE and self.remote_taken and self.transport.is_open:
            with contextlib.suppress(InstrumentError):  # closing anyway; units free it on disconnect
                self.transport.write(self.REMOTE_RELEASE)
        self.remote_taken = False
        self.transport.close()

    # -- optional features -----------------------------------------------------------------------

    def probe_capabilities(self) -> dict[str, Capability]:
        """Ask each probe-able optional query once (nothing is changed); record what the unit has."""
        for feature in self.OPTIONAL:
            if feature.probe is not None:
                present = self.transport.probe(feature.probe) is not None
                self._record(feature.key, present, feature.command if present
                             else f"{feature.probe} refused: {feature.without}")
            elif feature.key not in self.capabilities:
                self.capabilities[feature.key] = Capability(feature.key, None, f"{feature.command}: learnt when used")
        return self.capabilities

    def has(self, key: str) -> bool:
        """Whether to use a feature: yes unless the unit showed it lacks it."""
        capability = self.capabilities.get(key)
        return capability is None or capability.present is not False

    def _feature(self, key: str) -> Feature:
        return next(f for f in self.OPTIONAL if f.key == key)

    def _record(self, key: str, present: bool, detail: str) -> None:
        old = self.capabilities.get(key)
        self.capabilities[key] = Capability(key, present, detail)
        if not present and (old is None or old.present is not False):
            log.warning("%s: %s", self.name, detail)

    # -- measuring in two phases (the sampler) -----------------------------------------------------

    @property
    def message_gap_s(self) -> float:
        """The least time between two messages to this unit (EA: 5 ms)."""
        return self.transport.settings.min_gap_s

    def send_measure(self) -> SentBatch | None:
        """Send this measurement's batch (``MEASURE``) without waiting for its reply; ``collect_measure``
        takes the reply. None when the batch takes more than one line (``measure()`` is the way)."""
        wanted = self._wanted(self.MEASURE)
        if len(wanted) > self.transport.settings.max_commands_per_line:
            return None
        return SentBatch(tuple(wanted), self.transport.send(batch_line(wanted)))

    def _collect(self, sent: SentBatch) -> dict[str, str | None]:
        return self._read(*self.MEASURE, sent=sent)

    def _wanted(self, commands: tuple[str, ...]) -> list[str]:
        """``commands`` less the optional queries this unit showed it lacks."""
        optional = {f.probe: f for f in self.OPTIONAL if f.probe is not None}
        return [c for c in commands if c not in optional or self.has(optional[c].key)]

    def _read(self, *commands: str, sent: SentBatch | None = None) -> dict[str, str | None]:
        """Replies to ``commands`` in one batch; an optional query the unit lacks answers None. With
        ``sent``, the batch already went out (``send_measure``) and its reply is collected.

        A refused part of a batch (error queue after too few replies) is found by probing each optional
        part; those the unit refuses are dropped from every later batch (recorded) and the rest asked
        again. A refusal of a query that is not optional stays an error."""
        optional = {f.probe: f for f in self.OPTIONAL if f.probe is not None}
        wanted = list(sent.queries) if sent is not None else self._wanted(commands)
        try:
            if sent is not None:
                replies = self.transport.collect_many(sent.pending, wanted, retry=True)
            else:
                replies = self.transport.query_many(wanted, retry=True)
        except (ScpiError, InstrumentTimeout) as exc:
            # A read-only session cannot read the queue: a silent batch is its only sign of a refusal.
            errors = exc.errors if isinstance(exc, ScpiError) else None
            if errors is None and self.transport.reads_errors:
                raise
            refused = [c for c in wanted if c in optional and self.transport.probe(c) is None]
            if not refused or (errors is not None and not is_unknown_command(errors)):
                raise
            if self.transport.reads_errors:
                self.transport.drain_errors()  # the probes' own refusals
            why = f"{errors[0][0]}" if errors else "no reply"
            for command in refused:
                feature = optional[command]
                self._record(feature.key, False, f"{command} refused ({why}): {feature.without}")
            wanted = [c for c in wanted if c not in refused]
            replies = self.transport.query_many(wanted, retry=True)
        answered = dict(zip(wanted, replies, strict=True))
        return {c: answered.get(c) for c in commands}

    def _clear_latch(self) -> None:
        """Send the first documented clear command the unit accepts; NotSupported if it takes none."""
        for command in self.CLEAR:
            if command in self._refused_clears:
                continue
            try:
                self._send(command)
            except ScpiError as exc:
                if not is_unknown_command(exc.errors):
                    raise
                self._refused_clears.add(command)
                continue
            self._record("protection-clear", True, command)
            return
        tried = " and ".join(self.CLEAR) or "no clear command"
        why = f"{tried} refused: {self.FRONT_PANEL_CLEAR}"
        self._record("protection-clear", False, why)
        raise NotSupported(self.name, f"cannot clear its protection remotely ({why})")

    def _voltage_priority(self) -> None:
        """Voltage priority (``FUNC VOLT``), sent only when ``FUNC?`` says otherwise: a priority change
        resets the output settings on some units. Without ``FUNC?`` it is sent once, at open; without
        ``FUNC`` either the unit is taken to be voltage-priority only (recorded)."""
        if self.has("priority"):
            if not self.transport.query("FUNC?").upper().startswith("VOLT"):
                self._send("FUNC VOLT")
            return
        if self._priority_tried:
            return  # on a reconnect: sent at open already, never again mid-run
        self._priority_tried = True
        try:
            self._send("FUNC VOLT")
        except ScpiError as exc:
            if not is_unknown_command(exc.errors):
                raise
            self._record("priority", False, "FUNC? and FUNC refused: unit taken to be voltage-priority only")
            return
        self._record("priority", False, "FUNC VOLT sent once at open (FUNC? refused: state not readable)")

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

    def _status_bits(self, command: str, reply: str | None) -> int:
        """A status register's bits; 0 when the unit lacks the query (its feature says what covers)."""
        return 0 if reply is None else int(parse_number(self.name, command, reply))

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

    def measure(self) -> SupplyReading:
        return self._parse_measure(self._read(*self.MEASURE))

    def collect_measure(self, sent: SentBatch) -> SupplyReading:
        return self._parse_measure(self._collect(sent))

    def _parse_measure(self, replies: Mapping[str, str | None]) -> SupplyReading:
        """A reading from the replies to ``MEASURE`` (None for an optional query the unit lacks)."""
        raise NotImplementedError

    def emergency_off(self) -> None:
        self.transport.write(self.OUTPUT_OFF)

    def emergency_off_now(self) -> bool:
        return self.transport.write_if_ready(self.OUTPUT_OFF)

    def clear_protection(self) -> None:
        """Output off, clear the latch, then force the output off again and read it back: some units
        restore the output state from before the fault when cleared (Keysight's wording allows it)."""
        self._set_output(False)
        self._clear_latch()
        self.safe_state()


class ScpiLoad(ScpiInstrument, ElectronicLoad):
    INPUT_ON: ClassVar[str] = "INP ON"
    INPUT_OFF: ClassVar[str] = "INP OFF"

    def __init__(self, name: str, resource: str, rating: Rating,
                 visa_options: dict[str, Any] | None = None) -> None:
        ElectronicLoad.__init__(self, name, rating)
        self._make_transport(resource, visa_options)

    def _set_input(self, on: bool) -> None:
        self._send(self.INPUT_ON if on else self.INPUT_OFF)

    def measure(self) -> LoadReading:
        return self._parse_measure(self._read(*self.MEASURE))

    def collect_measure(self, sent: SentBatch) -> LoadReading:
        return self._parse_measure(self._collect(sent))

    def _parse_measure(self, replies: Mapping[str, str | None]) -> LoadReading:
        """A reading from the replies to ``MEASURE`` (None for an optional query the unit lacks)."""
        raise NotImplementedError

    def emergency_off(self) -> None:
        self.transport.write(self.INPUT_OFF)

    def emergency_off_now(self) -> bool:
        return self.transport.write_if_ready(self.INPUT_OFF)

    def clear_protection(self) -> None:
        """Input off, clear the latch, then force the input off again and read it back."""
        self._set_input(False)
        self._clear_latch()
        self.safe_state()
