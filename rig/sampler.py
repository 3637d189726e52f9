"""Pipelined sampling: every instrument's request goes out before any reply is awaited, so a sample
costs the slowest instrument, not the sum of them all, and without a thread per instrument.

One thread (the sampler's, or the caller's for ``sample_once``) does, per sample:

1. send the request of every unit without a gap rule (``send_measure``): one SCPI line per power
   unit, then the fixture's block read (pymodbus' framing costs more than a SCPI line; measured, the
   cheap sends first get every request out soonest);
2. read the instruments that cannot be pipelined, each checked by ``on_reading`` as it arrives;
3. collect the replies of step 1 in the order they arrive (``_next_arrival``), each checked by
   ``on_reading`` at once: a trip is raised before the rest of the sample is collected;
4. send the batch of the units that need a gap between messages (EA: 5 ms), then collect them. They go
   last on purpose: such a unit is paced by its gap (counted from its last reply), and the steps before
   run while the gap elapses, so the sample costs about one gap plus one round trip, as a hand-written
   loop does; and every other reading has been checked before they are messaged, so when one trips the
   rig their off command need not wait out the gap.

The transports keep their guarantees (see ``instruments.scpi``): a reply owed to a sent batch is read
before anything else goes to that unit, by whichever thread talks to it next (so a trip's off command
from another thread never waits on this one, and never takes that reply for its own); the gap, idle and
surplus-byte checks run before each send; a timeout reopens the connection.
"""

from __future__ import annotations

import logging
import select
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from instruments.errors import InstrumentError
from instruments.roles import (
    DCSupply,
    ElectronicLoad,
    FixtureReading,
    InletFixture,
    Instrument,
    LoadReading,
    SupplyReading,
)
from rig.clock import Clock

log = logging.getLogger("rig.sampler")

#: Python's GIL switch interval while a sampler runs (the default is 5 ms): see ``Sampler.start``.
GIL_SWITCH_INTERVAL_S = 0.001

Reading = SupplyReading | LoadReading | FixtureReading
#: ``on_reading(sample_started_s, instrument, reading or its error)``, called as each one arrives.
ReadingCheck = Callable[[float, str, Reading | InstrumentError], None]


@runtime_checkable
class TwoPhase(Protocol):
    """An instrument whose measurement can be sent now and collected later (the SCPI drivers, the
    Modbus fixture). ``send_measure`` returns None when it measured nothing yet (read it in full)."""

    @property
    def message_gap_s(self) -> float: ...

    def send_measure(self) -> Any: ...

    def collect_measure(self, sent: Any) -> Reading: ...


@dataclass(frozen=True)
class Sample:
    """One poll of the whole bench."""

    time_s: float  # rig clock
    wall_time: float  # time.time()
    readings: Mapping[str, Reading]
    errors: Mapping[str, InstrumentError] = field(default_factory=dict)

    @property
    def fixture(self) -> FixtureReading | None:
        return next((r for r in self.readings.values() if isinstance(r, FixtureReading)), None)

    def supplies(self) -> dict[str, SupplyReading]:
        return {k: r for k, r in self.readings.items() if isinstance(r, SupplyReading)}

    def loads(self) -> dict[str, LoadReading]:
        return {k: r for k, r in self.readings.items() if isinstance(r, LoadReading)}

    @property
    def energised(self) -> bool:
        """Any output or input on, or current flowing through the inlet."""
        fixture = self.fixture
        return (any(r.output_on for r in self.supplies().values())
                or any(r.input_on for r in self.loads().values())
                or (fixture is not None and abs(fixture.inlet_current) > 0.5))


def columns(instruments: Mapping[str, Instrument]) -> list[str]:
    """The wide CSV columns a sample of these instruments fills, in a stable order."""
    roles = {name: "supply" if isinstance(inst, DCSupply) else "load" if isinstance(inst, ElectronicLoad)
             else "fixture" if isinstance(inst, InletFixture) else "" for name, inst in instruments.items()}
    return columns_by_role(roles)


def columns_by_role(roles: Mapping[str, str]) -> list[str]:
    """The same columns from the configured roles (``supply`` | ``load`` | ``fixture``), before any
    instrument is opened: the run's files are created before the bench is touched."""
    out: list[str] = []
    for name, role in roles.items():
        if role == "supply":
            out += [f"{name}.voltage_v", f"{name}.current_a", f"{name}.output", f"{name}.protection"]
        elif role == "load":
            out += [f"{name}.voltage_v", f"{name}.current_a", f"{name}.input", f"{name}.protection"]
        elif role == "fixture":
            out += [f"{name}.{key}" for key in FIXTURE_COLUMNS]
    return out


FIXTURE_COLUMNS: dict[str, Callable[[FixtureReading], object]] = {
    "voltage_v": lambda f: f.inlet_voltage,
    "current_a": lambda f: f.inlet_current,
    "temp_dc_plus_c": lambda f: f.contact_temp_dc_plus,
    "temp_dc_minus_c": lambda f: f.contact_temp_dc_minus,
    "temp_inlet_1_c": lambda f: f.inlet_sensor_1,
    "temp_inlet_2_c": lambda f: f.inlet_sensor_2,
    "temp_ambient_c": lambda f: f.ambient_temp,
    "drop_dc_plus_mv": lambda f: f.drop_dc_plus_mv,
    "drop_dc_minus_mv": lambda f: f.drop_dc_minus_mv,
    "cp_high_v": lambda f: f.cp_high,
    "cp_low_v": lambda f: f.cp_low,
    "cp_duty_pct": lambda f: f.cp_duty,
    "pp_v": lambda f: f.pp_voltage,
    "iso_dc_plus_ohm": lambda f: f.iso_dc_plus_ohm,
    "iso_dc_minus_ohm": lambda f: f.iso_dc_minus_ohm,
    "contactors": lambda f: int(f.contactors_closed),
    "path": lambda f: f.path,
    "chain_ok": lambda f: int(f.safety_chain_ok),
}


def row(sample: Sample) -> dict[str, object]:
    """A sample as a flat dict of column -> value (missing readings are simply absent)."""
    out: dict[str, object] = {}
    for name, r in sample.readings.items():
        if isinstance(r, SupplyReading):
            out.update({f"{name}.voltage_v": r.voltage, f"{name}.current_a": r.current,
                        f"{name}.output": int(r.output_on), f"{name}.protection": r.protection or ""})
        elif isinstance(r, LoadReading):
            out.update({f"{name}.voltage_v": r.voltage, f"{name}.current_a": r.current,
                        f"{name}.input": int(r.input_on), f"{name}.protection": r.protection or ""})
        else:
            out.update({f"{name}.{key}": get(r) for key, get in FIXTURE_COLUMNS.items()})
    return out


def _next_arrival(pending: list[Any]) -> int:
    """Which of the replies on their way to collect next: one already in memory (read by another
    thread, or buffered by pyvisa-py; first sent first), else the first to arrive within the shortest
    of their timeouts (one ``select`` on their sockets), else the first sent (its own read then times
    out). So a reading is checked as soon as it is here, whatever the others are doing: a stalled unit
    delays nobody's check. Replies that cannot say (no ``buffered`` or no socket) are simply taken in
    the order sent."""
    if len(pending) == 1 or not all(hasattr(p, "buffered") for p in pending):
        return 0
    for k, p in enumerate(pending):
        if p.buffered():
            return k
    sockets = [p.waitable() for p in pending]
    if any(sock is None for sock in sockets):
        return 0
    try:
        readable, _, _ = select.select(sockets, [], [], min(p.timeout_s for p in pending))
    except (OSError, ValueError):  # a socket closed meanwhile: collecting says what happened
        return 0
    return next((k for k, sock in enumerate(sockets) if sock in readable), 0)


def _read(instrument: Instrument) -> Reading:
    if isinstance(instrument, InletFixture):
        return instrument.read()
    if isinstance(instrument, DCSupply | ElectronicLoad):
        return instrument.measure()
    raise TypeError(f"cannot sample {instrument!r}")


class Sampler:
    """Polls all instruments every ``period`` rig seconds on its own thread, handing each sample on.

    ``on_reading`` (optional) sees each reading, or its error, the moment it arrives (the live limits
    that need one reading only); ``on_sample`` sees the whole sample afterwards."""

    def __init__(self, instruments: Mapping[str, Instrument], clock: Clock, period: float,
                 on_sample: Callable[[Sample], None], on_reading: ReadingCheck | None = None) -> None:
        self.instruments = dict(instruments)
        self.clock = clock
        self.period = period
        self.on_sample = on_sample
        self.on_reading = on_reading
        self.latest: Sample | None = None
        self.count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._switch_interval_before: float | None = None
        self._new_sample = threading.Condition()
        # One sample taken and handed on at a time, whichever thread asks: samples then reach
        # ``on_sample`` (and samples.csv) in the order they were taken. Re-entrant: a handler may sample.
        self._handing = threading.RLock()
        pipelined = {n: i for n, i in self.instruments.items() if isinstance(i, TwoPhase)}
        self._first = sorted(((n, i) for n, i in pipelined.items() if i.message_gap_s <= 0),
                             key=lambda unit: isinstance(unit[1], InletFixture))
        self._blocking = [(n, i) for n, i in self.instruments.items() if n not in pipelined]
        self._after_fixture = [(n, i) for n, i in pipelined.items() if i.message_gap_s > 0]

    def take(self) -> Sample:
        """Take a sample now and hand it to ``on_sample``, in turn with the sampling thread."""
        with self._handing:
            sample = self.sample_once()
            self.on_sample(sample)
        return sample

    def sample_once(self) -> Sample:
        """Poll every instrument (pipelined, see the module docstring); errors are collected per
        instrument, not raised."""
        wall = time.time()
        t = self.clock.now()
        readings: dict[str, Reading] = {}
        errors: dict[str, InstrumentError] = {}

        def arrived(name: str, result: Reading | InstrumentError) -> None:
            if isinstance(result, InstrumentError):
                errors[name] = result
            else:
                readings[name] = result
            if self.on_reading is not None:
                try:
                    self.on_reading(t, name, result)
                except Exception:  # the whole-sample check still sees it; the sample must go on
                    log.exception("sampler: checking %s failed", name)

        in_flight: list[tuple[str, TwoPhase, Any]] = []

        def send(units: list[tuple[str, TwoPhase]]) -> None:
            for name, inst in units:
                try:
                    sent = inst.send_measure()
                except InstrumentError as exc:
                    arrived(name, exc)
                    continue
                if sent is None:  # cannot be split (more than one line): measured in full, now
                    self._read_now(name, inst, arrived)  # type: ignore[arg-type]
                else:
                    in_flight.append((name, inst, sent))

        def collect() -> None:
            while in_flight:
                name, inst, sent = in_flight.pop(_next_arrival([s for _, _, s in in_flight]))
                try:
                    result: Reading | InstrumentError = inst.collect_measure(sent)
                except InstrumentError as exc:
                    result = exc
                arrived(name, result)

        send(self._first)
        for name, inst in self._blocking:
            self._read_now(name, inst, arrived)
        collect()
        send(self._after_fixture)
        collect()
        sample = Sample(t, wall, {n: readings[n] for n in self.instruments if n in readings},
                        {n: errors[n] for n in self.instruments if n in errors})
        self.latest = sample
        self.count += 1
        with self._new_sample:
            self._new_sample.notify_all()
        return sample

    @staticmethod
    def _read_now(name: str, inst: Instrument, arrived: Callable[[str, Reading | InstrumentError], None]) -> None:
        try:
            result: Reading | InstrumentError = _read(inst)
        except InstrumentError as exc:
            result = exc
        arrived(name, result)

    def wait_for_sample(self, after: int, timeout_s: float) -> Sample | None:
        """Block until a sample newer than number ``after`` exists (real-time timeout)."""
        with self._new_sample:
            self._new_sample.wait_for(lambda: self.count > after, timeout_s)
        return self.latest if self.count > after else None

    def start(self) -> None:
        # While this thread samples, a thread that wakes from I/O (this one with a reply, the trip's
        # off commands, an in-process simulator) waits at most this long for the interpreter: a
        # CPU-bound thread (a plot, the report, the database feed) is asked to let go after it, not
        # after Python's default 5 ms. Only ever lowered; put back by ``stop``.
        self._switch_interval_before = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval_before, GIL_SWITCH_INTERVAL_S))
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = self.clock.now()
        while not self._stop.is_set():
            try:
                self.take()
            except Exception:  # the monitor must not die silently; the rig's watchdog notices a stall
                log.exception("sampler: handling a sample failed")
            next_at += self.period
            delay = next_at - self.clock.now()
            if delay < 0:
                next_at = self.clock.now()  # running behind (slow instruments): sample back to back
            elif self._stop.wait(self.clock.real_seconds(delay)):
                break

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        if self._switch_interval_before is not None:
            sys.setswitchinterval(self._switch_interval_before)
            self._switch_interval_before = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
