"""The Rig session: opens, identifies and arms the bench, runs plan steps, and leaves it safe.

    with Rig(config, clock=clock, limits=limits) as rig:
        path = rig.path_for(voltage=1000, current=5)
        rig.connect(path)
        rig.source(path, volts=1000, current_limit=5)
        rig.sink(path, LoadMode.CC, 1.0)
        rig.wait(2)

The **safe state** is load off -> supply off -> bus below the safe voltage (waited for, with a timeout)
-> contactors open (feedback waited for) -> no path selected. Every exit from a session takes that one
path: normal end, failed assertion, exception, Ctrl-C / SIGTERM (turned into KeyboardInterrupt by the
plugin and the CLI), a lost instrument and a live-limit trip. When an instrument cannot be reached
the others are still made safe, the report names it, and the heartbeat is withheld so the fixture's
hardware chain opens the contactors and inhibits the power instruments.

**One owner per bench.** ``open`` first takes this PC's lock on the bench (``rig.bench_lock``), then
claims the fixture with this session's token (register map v2: the fixture then refuses any other
session's commands, across PCs), and only then opens the power instruments. While a plan holds a path
energised, every sample is compared with what the plan set (``rig.safety.Expected``): a bench changed
from outside trips the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from instruments.capabilities import Capability
from instruments.drivers import DRIVERS
from instruments.drivers.nacs_fixture import NacsInletFixture
from instruments.errors import FixtureClaimed, InstrumentError, NotSupported
from instruments.groups import ParallelLoad, ParallelSupply
from instruments.roles import (
    Bound,
    DCSupply,
    ElectronicLoad,
    FixtureReading,
    Identity,
    InletFixture,
    Instrument,
    LoadMode,
    PowerInstrument,
)
from rig.bench_lock import BenchLock, Owner
from rig.clock import Clock
from rig.config import InstrumentConfig, RigConfig
from rig.errors import BenchBusy, RigError, SafetyTrip
from rig.heartbeat import Heartbeat
from rig.interrupts import shielded
from rig.safety import Expected, LiveLimits, chain_reason, deviation, reading_trip_reason, trip_reason
from rig.sampler import Reading, Sample, Sampler

T = TypeVar("T")

log = logging.getLogger("rig")

SAFE_STATE_WAIT_S = 120.0  # real seconds a plan waits for a trip's safe state to finish before it raises
Listener = Callable[[str, Any], None]  # ("sample", Sample) | ("event", str) | ("safe", SafeStateReport)


def members(unit: PowerInstrument) -> frozenset[str]:
    """The names of the instruments a unit or a parallel group drives."""
    return frozenset(m.name for m in getattr(unit, "members", [unit]))


def make_instrument(cfg: InstrumentConfig) -> Instrument:
    """Instantiate the configured driver (names come from the validated registry, never imported)."""
    cls: Any = DRIVERS[cfg.driver]
    if cfg.role == "fixture":
        return NacsInletFixture(cfg.name, cfg.resource, cfg.unit_id, cfg.timeout_s or 0.5)
    inst = cls(cfg.name, cfg.resource, cfg.rating, dict(cfg.visa_options))
    if cfg.timeout_s is not None:
        inst.transport.settings = dataclasses.replace(inst.transport.settings, timeout_s=cfg.timeout_s)
    return inst


def missing_required(config: RigConfig, capabilities: dict[str, dict[str, Capability]]) -> list[str]:
    """One line per optional feature the rig config requires (``require``) that a unit lacks."""
    return [line for name, cfg in config.instruments.items()
            for line in lacking_required(cfg, capabilities.get(name, {}))]


def lacking_required(cfg: InstrumentConfig, capabilities: dict[str, Capability]) -> list[str]:
    lines = []
    for key in cfg.require:
        found = capabilities.get(key)
        if found is None or not found.present:
            why = found.detail if found is not None else "not probed"
            lines.append(f"{cfg.name}: required capability {key!r} missing ({why})")
    return lines


@dataclass
class PowerPath:
    """A supply group and a load group routed to the inlet together by the fixture's selector."""

    name: str
    selector: int
    supply: DCSupply
    load: ElectronicLoad

    @property
    def max_voltage(self) -> float:
        return min(self.supply.rating.voltage, self.load.rating.voltage)

    @property
    def max_current(self) -> float:
        return min(self.supply.rating.current, self.load.rating.current)

    def __str__(self) -> str:
        return f"{self.name} ({self.max_voltage:g} V / {self.max_current:g} A)"


@dataclass(frozen=True)
class SafeStep:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class SafeStateReport:
    reason: str
    steps: list[SafeStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def unreachable(self) -> list[str]:
        return [s.name for s in self.steps if not s.ok]

    def lines(self) -> list[str]:
        return [f"{'ok  ' if s.ok else 'FAIL'} {s.name}: {s.detail}" for s in self.steps]


@dataclass(frozen=True)
class SetpointCeilings:
    """Rig-wide, DUT and profile ceilings applied to every supply and load (their ratings stay too)."""

    voltage: Bound
    current: Bound


class Rig:
    def __init__(self, config: RigConfig, *, clock: Clock | None = None,
                 ceilings: SetpointCeilings | None = None, limits: LiveLimits | None = None,
                 owner: Owner | None = None, bench_lock: BenchLock | None = None) -> None:
        self.config = config
        #: Who this session is (written in the bench lock); a lock taken earlier may be handed in.
        self.owner = owner or Owner.here(dut="")
        self._bench_lock = bench_lock
        self._own_lock = bench_lock is None
        self.clock = clock or Clock(config.time_scale)
        s = config.safety
        where = f"rig config {config.source}"
        self.ceilings = ceilings or SetpointCeilings(Bound(s.max_voltage, f"{where} safety.max_voltage"),
                                                     Bound(s.max_current, f"{where} safety.max_current"))
        self.limits = limits or LiveLimits(
            Bound(s.max_voltage * 1.1, f"{where} safety.max_voltage + 10 %"),
            Bound(s.max_current * 1.1, f"{where} safety.max_current + 10 %"),
            Bound(s.abort_temperature, f"{where} safety.abort_temperature"),
        )
        self.instruments: dict[str, Instrument] = {}
        self.paths: dict[str, PowerPath] = {}
        self.fixture: InletFixture
        self.listeners: list[Listener] = []
        self.identities: dict[str, Identity] = {}
        self.watchdogs: dict[str, str] = {}
        #: Optional features per instrument, as found at open (see instruments.capabilities).
        self.capabilities: dict[str, dict[str, Capability]] = {}
        self.trip: str | None = None
        self.trip_was_expected = False  # the standing trip happened inside ``expect_trip`` for its reason
        #: What a plan is doing now (rig.steps.Activity), for progress displays.
        self.activity: Any = None
        self.safe_reports: list[SafeStateReport] = []
        self._tripped = threading.Event()
        self._armed_since = float("-inf")  # rig time of the last re-arm: older samples are stale
        self._expected_trip: str | None = None
        self._safe_lock = threading.Lock()
        self._sampler: Sampler | None = None
        self._heartbeat: Heartbeat | None = None
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="safe")
        self._is_open = False  # set once the session owns the bench (safe at start), cleared by close()
        #: What the plan has set; samples are checked against it (nothing energised: nothing checked).
        self.expected = Expected(since=float("-inf"))
        self._safe_requests_seen: int | None = None  # fixture's count of `rig safe` from other sessions
        self._current_limits: dict[str, float] = {}  # path -> supply current limit set by source()

    # -- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> Rig:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Own the bench (this PC's lock, then the fixture's claim), open and identify every instrument,
        make the bench safe, arm protections and watchdogs. ``BenchBusy`` before anything is sent to
        any instrument when another session owns it."""
        self._take_bench_lock()
        self.instruments = {name: make_instrument(cfg) for name, cfg in self.config.instruments.items()}
        self.fixture = next(i for i in self.instruments.values() if isinstance(i, InletFixture))
        try:
            self._claim_fixture()
            others = [i for i in self.instruments.values() if i is not self.fixture]
            opened = self._pool.map(self._quietly(lambda i: self.identities.__setitem__(i.name, i.open())), others)
            failures = [error for error in opened if error is not None]
            if failures:
                raise RigError("; ".join(failures))
            self.capabilities = {name: i.capabilities for name, i in self.instruments.items() if i.capabilities}
            missing = missing_required(self.config, self.capabilities)
            if missing:
                raise RigError("; ".join(missing))
        except BaseException:
            self._give_up_bench()
            raise
        for cfg in self.config.paths.values():
            supplies = [self.instruments[n] for n in cfg.supplies]
            loads = [self.instruments[n] for n in cfg.loads]
            supply = supplies[0] if len(supplies) == 1 else ParallelSupply(f"{cfg.name}.supply", supplies)
            load = loads[0] if len(loads) == 1 else ParallelLoad(f"{cfg.name}.load", loads)
            self.paths[cfg.name] = PowerPath(cfg.name, cfg.selector, supply, load)  # type: ignore[arg-type]
        for unit in self._power_units(include_groups=True):
            unit.limits = unit.limits.narrowed(self.ceilings.voltage.source, voltage=self.ceilings.voltage.value)
            unit.limits = unit.limits.narrowed(self.ceilings.current.source, current=self.ceilings.current.value)
            unit.guard = self._before_setpoint
        for path in self.paths.values():  # a load's power rating is checked at its path's voltage
            path.supply.loads.append(path.load)
        report = self.safe_state("session start: never trust the state we found")
        if not report.ok:
            self._give_up_bench()
            raise RigError("could not bring the bench to the safe state at start: " + "; ".join(
                line for line in report.lines() if line.startswith("FAIL")))
        self._is_open = True
        try:
            self._arm_watchdogs()
            self._sampler = Sampler(self.instruments, self.clock, self.config.safety.sample_period,
                                    self._on_sample, on_reading=self._on_reading)
            self._sampler.take()
            self._sampler.start()
        except BaseException:
            self.close()  # a half-opened session still ends safe, with its threads stopped
            raise
        self._event(f"rig open: {len(self.instruments)} instruments, paths {', '.join(map(str, self.paths.values()))}")

    def _take_bench_lock(self) -> None:
        """This PC's lock on the bench. A simulated bench started in this process is private to it."""
        if self._bench_lock is None and self.config.source != "<simulated bench>":
            self._bench_lock = BenchLock.acquire(self.config, self.owner)

    def _claim_fixture(self) -> None:
        """Identify the fixture and claim it with this session's token before any other instrument is
        touched: on a bench another PC owns, the fixture refuses and nothing else is sent."""
        s = self.config.safety
        try:
            self.identities[self.fixture.name] = self.fixture.open()
            self._heartbeat = Heartbeat(self.fixture, s.heartbeat_timeout)
            self._heartbeat.start()
        except FixtureClaimed as exc:
            self._heartbeat = None
            raise BenchBusy(f"bench {self.config.name} is in use by another session: {exc}; "
                            "nothing was sent to its power instruments") from None
        except InstrumentError as exc:
            self._heartbeat = None
            raise RigError(str(exc)) from None
        self.watchdogs[self.fixture.name] = f"heartbeat {s.heartbeat_timeout:g} s (fixture claim tag " \
                                            f"{self.fixture.tag:04x})"

    def _give_up_bench(self) -> None:
        """Undo a failed open: stop the heartbeat (releasing the claim if the fixture allows), close
        the connections, drop this PC's lock."""
        if self._heartbeat is not None:
            self._heartbeat.stop(release=True)
        self._close_instruments()
        self._release_bench_lock()

    def _release_bench_lock(self) -> None:
        if self._own_lock and self._bench_lock is not None:
            self._bench_lock.release()
            self._bench_lock = None

    def open_best_effort(self) -> list[str]:
        """Open whatever answers, for ``rig safe``: the safe state must reach every instrument it can
        even when others are gone. Returns one line per instrument that could not be opened."""
        self.instruments = {name: make_instrument(cfg) for name, cfg in self.config.instruments.items()}
        results = list(self._pool.map(self._quietly(lambda i: self.identities.__setitem__(i.name, i.open())),
                                      self.instruments.values()))
        failures = [error for error in results if error is not None]
        unreachable = [name for name, error in zip(self.instruments, results, strict=True) if error is not None]
        for name in unreachable:
            self.instruments.pop(name)
        fixtures = [i for i in self.instruments.values() if isinstance(i, InletFixture)]
        if fixtures:
            self.fixture = fixtures[0]
        return failures

    def _arm_watchdogs(self) -> None:
        """Instrument I/O watchdogs (the fixture's heartbeat runs from the claim on)."""
        s = self.config.safety
        for name, inst in self.instruments.items():
            if isinstance(inst, InletFixture):
                continue
            try:
                inst.arm_watchdog(s.instrument_watchdog)
                self.watchdogs[name] = f"I/O watchdog {s.instrument_watchdog:g} s"
            except NotSupported:
                found = inst.capabilities.get("watchdog")
                self.watchdogs[name] = (found.detail if found is not None
                                        else "no I/O watchdog: fixture heartbeat + inhibit chain")

    def close(self) -> None:
        """Safe state, then stop sampling and the heartbeat, then close every instrument. Idempotent.
        Ctrl-C / SIGTERM meanwhile cannot cut it short (rig.interrupts)."""
        with shielded():
            self._close()

    @property
    def is_open(self) -> bool:
        return self._is_open

    def _close(self) -> None:
        if not self._is_open:
            return
        self._is_open = False
        report = self.safe_state("session end")
        if self._sampler is not None:
            self._sampler.stop()
        if self._heartbeat is not None:
            # The claim (and its watchdog) is given up only on a bench confirmed safe; otherwise the
            # heartbeat simply stops and the fixture's watchdog finishes the job.
            self._heartbeat.stop(release=report.ok)
        self._close_instruments()
        self._release_bench_lock()
        self._pool.shutdown(wait=False)

    def close_instruments(self, *, release_remote: bool = True) -> None:
        """Close every connection without touching the bench (after ``rig safe``). Without
        ``release_remote`` the units stay in remote control: the session that owns the bench still
        drives them, and handing them back to local would refuse its own commands (-221 on EA units)."""
        if not release_remote:
            for inst in self.instruments.values():
                if hasattr(inst, "remote_taken"):
                    inst.remote_taken = False  # type: ignore[attr-defined]
        self._close_instruments()
        self._pool.shutdown(wait=False)

    def _close_instruments(self) -> None:
        for inst in self.instruments.values():
            with contextlib.suppress(Exception):
                inst.close()

    def _power_units(self, include_groups: bool = False) -> list[PowerInstrument]:
        units: list[PowerInstrument] = [i for i in self.instruments.values() if isinstance(i, PowerInstrument)]
        if include_groups:
            for path in self.paths.values():
                units += [g for g in (path.supply, path.load) if g not in units]
        return units

    # -- events ----------------------------------------------------------------------------------

    def _notify(self, kind: str, payload: Any) -> None:
        for listener in list(self.listeners):
            try:
                listener(kind, payload)
            except Exception:
                log.exception("rig listener failed on %s", kind)

    def note(self, text: str) -> None:
        """A line for the run log (e.g. how long a hold took)."""
        self._event(text)

    def _event(self, text: str) -> None:
        log.info(text)
        self._notify("event", text)

    def _on_sample(self, sample: Sample) -> None:
        self._notify("sample", sample)
        reason = trip_reason(sample, self.limits) or self._changed_from_outside(sample)
        # A sample begun before the last re-arm may carry readings from before it (e.g. a protection
        # since cleared): it must not trip the rig again.
        if reason is not None and self.trip is None and sample.time_s >= self._armed_since:
            self._trip(reason)

    def _changed_from_outside(self, sample: Sample) -> str | None:
        """A bench that is no longer what this run set: another session's `rig safe` (the fixture counts
        its requests, on any PC), a unit switched off at its front panel, contactors opened by someone."""
        if reason := self._rig_safe_seen(sample.fixture):
            return reason
        changed = deviation(sample, self.expected, self.limits.current_band)
        if changed is None:
            return None
        try:  # a sample taken across the cause (`rig safe`'s request, a broken safety chain that
            # inhibits the units) can show its effect first: look again, and name the cause
            fresh = self.fixture.read()
        except InstrumentError:
            return changed
        cause = self._rig_safe_seen(fresh) or chain_reason(fresh)
        return f"{cause} ({changed})" if cause else changed

    def _rig_safe_seen(self, fixture: FixtureReading | None) -> str | None:
        if fixture is None:
            return None
        seen, self._safe_requests_seen = self._safe_requests_seen, fixture.safe_requests
        if seen is not None and fixture.safe_requests != seen:
            return "bench made safe by another session (rig safe)"
        return None

    def _on_reading(self, started_s: float, name: str, result: Reading | InstrumentError) -> None:
        """Each reading as it arrives: a limit it crosses trips now, before the rest of the sample."""
        reason = reading_trip_reason(result, self.limits, name)
        if reason is not None and self.trip is None and started_s >= self._armed_since:
            self._trip(reason)

    def _trip(self, reason: str) -> None:
        with shielded():
            self.trip = reason  # from here on every setpoint is refused
            # Then, before naming the cause or telling anyone, every unit's off command on its way.
            on_their_way = self._switch_off_now()
            if reason.startswith("instrument protection:"):
                # An open safety chain inhibits the power units (EA: INH; Chroma: a PROT bit), and a
                # unit's reading can be checked before the fixture's: name the chain's cause if it is open.
                reason = self.trip = self._inhibit_cause(reason)
            self.trip_was_expected = self._trip_expected()  # caused on purpose by the plan (E-stop tests)
            self._event(f"SAFETY TRIP: {reason}")
            self._notify("trip", reason)
            futures.wait(on_their_way)  # never raises: errors are the safe state's to report, unit by unit
            self.safe_state(f"safety trip: {reason}", off_sent=True)
        self._tripped.set()  # set once the bench is safe: a SafetyTrip a plan sees means "already safe"

    def _switch_off_now(self) -> list[Future[str | None]]:
        """A trip's off commands, at once: from the thread that saw the trip to every unit that can take
        one without a wait (``emergency_off_now``), so no hand-over to another thread stands between the
        trip and the supply's OUTP OFF; to the others (another thread mid-exchange, a gap to keep, a
        reply not yet arrived) from the pool, each on its own, so a supply is never held back behind a
        busy load. The units this run switched on go first, loads before supplies (a real bench switches
        them in parallel; a simulator, one line after another). Every unit gets one; returns the pool's
        work to wait for."""
        on_their_way: list[Future[str | None]] = []
        units = [i for i in self.instruments.values() if isinstance(i, PowerInstrument)]
        on = self.expected.loads_on | self.expected.supplies_on
        for unit in sorted(units, key=lambda u: (u.name not in on, isinstance(u, DCSupply))):
            try:
                now = unit.emergency_off_now()
            except InstrumentError as exc:  # the pool tries again; the safe state reports what stays
                log.warning("trip: %s off at once failed: %s", unit.name, exc)
                now = False
            if not now:
                off = self._quietly(lambda u: u.emergency_off())
                try:
                    on_their_way.append(self._pool.submit(off, unit))
                except RuntimeError:  # the pool is shut down (the rig closing, the interpreter ending)
                    off(unit)
        return on_their_way

    def _inhibit_cause(self, reason: str) -> str:
        """An instrument protection seen while the fixture's safety chain is open has that cause: name
        it, alone, so a trip reads the same whichever reading arrived first (the sampler checks them as
        they arrive; the protection is in the run log). Within one sample the instrument's reading can
        be newer than the fixture's, so look again."""
        try:
            cause = chain_reason(self.fixture.read())
        except InstrumentError:
            return reason
        if cause:
            log.info("trip: %s, seen first as %s", cause, reason)
        return cause or reason

    def _before_setpoint(self) -> None:
        """Before every setpoint a plan sends, through the rig or a driver: refused while tripped. The
        expected inlet current is unknown from then until ``sink`` sets it again."""
        self._refuse_if_tripped()
        if self.expected.inlet_current is not None:
            self.expected = dataclasses.replace(self.expected, inlet_current=None)

    def trip_now(self, reason: str) -> None:
        """Trip from outside the per-sample checks (e.g. the recorder cannot write): safe state, and every
        plan step raises SafetyTrip until re-armed. No-op if already tripped."""
        if self.trip is None:
            self._trip(reason)

    def _refuse_if_tripped(self) -> None:
        if self.trip is not None:
            raise SafetyTrip(self.trip)

    # -- the safe state --------------------------------------------------------------------------

    def safe_state(self, reason: str, *, off_sent: bool = False) -> SafeStateReport:
        """Load off -> supply off -> bus below the safe voltage -> contactors open. Idempotent.
        Ctrl-C / SIGTERM meanwhile cannot cut it short (rig.interrupts). ``off_sent``: every unit was
        just sent its off command (a trip's first act), so each is only confirmed by reading back."""
        with shielded():
            return self._safe_state(reason, off_sent)

    def _safe_state(self, reason: str, off_sent: bool = False) -> SafeStateReport:
        with self._safe_lock:
            self.expected = Expected(since=self.clock.now())  # from now on nothing is meant to be energised
            report = SafeStateReport(reason)
            units = [i for i in self.instruments.values() if isinstance(i, PowerInstrument)]
            loads = [u for u in units if isinstance(u, ElectronicLoad)]
            supplies = [u for u in units if isinstance(u, DCSupply)]
            # 1-2: off commands first, fast, in order (loads, then supplies), without waiting on the
            # error queue (unless a trip has sent them already: ``off_sent``); then each unit's own
            # safe_state() confirms it by reading back.
            for group in (loads, supplies) if not off_sent else ():
                self._map(self._quietly(lambda u: u.emergency_off()), group)
            for group, label in ((loads, "load input off"), (supplies, "supply output off")):
                for unit, error in zip(group, self._map(self._quietly(lambda u: u.safe_state()), group),
                                       strict=True):
                    report.steps.append(SafeStep(f"{unit.name} {label}", error is None, error or "confirmed"))
            report.steps.append(self._wait_bus_discharged(supplies))
            report.steps.extend(self._open_contactors())
            self.safe_reports.append(report)
        if not report.ok and self._heartbeat is not None and not self._heartbeat.withheld:
            self._heartbeat.withhold()
            report.steps.append(SafeStep(
                "heartbeat withheld", True,
                f"fixture will open contactors and inhibit power instruments within "
                f"{self._heartbeat.timeout_s:g} s"))
        for line in report.lines():
            log.info("safe state (%s): %s", reason, line)
        self._notify("safe", report)
        return report

    def _map(self, action: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``action`` on every item, in parallel on the pool; one after another on this thread when the
        pool takes no more work (it is shut down: the interpreter is exiting with this rig still open),
        since a safe state must run all the same."""
        try:
            results = self._pool.map(action, items)  # submits every item now, or raises
        except RuntimeError:
            return [action(item) for item in items]
        return list(results)

    @staticmethod
    def _quietly(action: Callable[[Any], None]) -> Callable[[Any], str | None]:
        def run(unit: Any) -> str | None:
            try:
                action(unit)
                return None
            except InstrumentError as exc:
                return str(exc)
        return run

    @property
    def _fixture_or_none(self) -> InletFixture | None:
        return getattr(self, "fixture", None)

    def _bus_voltages(self, supplies: list[DCSupply]) -> dict[str, float]:
        def measure(unit: Instrument) -> float | None:
            try:
                if isinstance(unit, DCSupply):
                    return unit.measure().voltage
                assert isinstance(unit, InletFixture)
                return unit.read().inlet_voltage
            except InstrumentError:
                return None
        fixture = self._fixture_or_none
        targets: list[Instrument] = [*supplies, *([fixture] if fixture is not None else [])]
        values = self._map(measure, targets)
        return {t.name: v for t, v in zip(targets, values, strict=True) if v is not None}

    def _wait_bus_discharged(self, supplies: list[DCSupply]) -> SafeStep:
        s = self.config.safety
        deadline = self.clock.now() + s.discharge_timeout
        while True:
            voltages = self._bus_voltages(supplies)
            high = {k: v for k, v in voltages.items() if v >= s.safe_voltage}
            if not voltages:
                return SafeStep("bus discharged", False, "no instrument could measure the bus voltage")
            if not high:
                peak = max(voltages.values())
                return SafeStep("bus discharged", True, f"below {s.safe_voltage:g} V (max {peak:.1f} V)")
            if self.clock.now() > deadline:
                worst = ", ".join(f"{k} {v:.1f} V" for k, v in high.items())
                return SafeStep("bus discharged", False,
                                f"still >= {s.safe_voltage:g} V after {s.discharge_timeout:g} s: {worst}")
            self.clock.sleep(min(0.05, s.discharge_timeout / 50))

    def _open_contactors(self) -> list[SafeStep]:
        s = self.config.safety
        if self._fixture_or_none is None:
            return [SafeStep("contactors open", False, "fixture unreachable: contactor state unknown")]
        try:
            self.fixture.safe_state()
            deadline = self.clock.now() + s.contactor_timeout
            while True:
                reading = self.fixture.read()
                if not (reading.contactor_dc_plus_closed or reading.contactor_dc_minus_closed):
                    break
                if self.clock.now() > deadline:
                    return [SafeStep("contactors open", False,
                                     f"feedback still closed after {s.contactor_timeout:g} s")]
                self.clock.sleep(s.contactor_timeout / 100)
            self.fixture.select_path(0)
        except InstrumentError as exc:
            return [SafeStep("contactors open", False, str(exc))]
        return [SafeStep("contactors open", True, "feedback open, no path selected")]

    # -- plan steps ------------------------------------------------------------------------------

    def path_for(self, voltage: float, current: float) -> PowerPath:
        """The first power path that can carry ``voltage`` and ``current``; RigError if none can."""
        for path in self.paths.values():
            if path.max_voltage >= voltage and path.max_current >= current:
                return path
        have = ", ".join(map(str, self.paths.values()))
        raise RigError(f"no power path of this rig can carry {voltage:g} V and {current:g} A (paths: {have})")

    def connect(self, path: PowerPath) -> None:
        """Route ``path`` to the inlet and close the contactors, only with the bus discharged."""
        self._refuse_if_tripped()
        s = self.config.safety
        for unit in (path.supply, path.load):
            if isinstance(unit, DCSupply) and unit.measure().output_on:
                raise RigError(f"{unit.name}: output is on; contactors close only on a dead bus")
        self.fixture.select_path(path.selector)
        self.fixture.set_contactors(True)
        self.wait_for(lambda smp: smp.fixture is not None and smp.fixture.contactors_closed,
                      s.contactor_timeout, f"contactors of path {path.name} to close")
        self.expected = Expected(since=self.clock.now(), path=path.name, selector=path.selector)
        self._event(f"path {path.name} connected")

    def source(self, path: PowerPath, volts: float, current_limit: float) -> None:
        """Program OVP/OCP (read back before anything is enabled), the setpoints, then output on."""
        self._refuse_if_tripped()
        supply = path.supply
        ovp = min(self.limits.max_voltage.value, supply.rating.voltage * supply.PROTECTION_HEADROOM)
        ocp = min(self.limits.max_current.value, supply.rating.current * supply.PROTECTION_HEADROOM)
        # Setpoints are checked against limits before anything is sent, protections included.
        supply.limits.check(supply.name, "voltage", volts, supply.limits.voltage, "V")
        supply.limits.check(supply.name, "current limit", current_limit, supply.limits.current, "A")
        held = supply.set_protection(ovp, ocp)
        if held.ovp_volts > ovp * 1.001 or held.ovp_volts < volts:
            raise RigError(f"{supply.name}: OVP reads back {held.ovp_volts:g} V; expected {ovp:g} V")
        if held.ocp_amps is not None and held.ocp_amps > ocp * 1.001:
            raise RigError(f"{supply.name}: OCP reads back {held.ocp_amps:g} A; expected {ocp:g} A")
        supply.set_voltage(volts)
        supply.set_current_limit(current_limit)
        supply.output_on()
        reading = supply.measure()  # read back: a latched protection would leave the output off silently
        if not reading.output_on or reading.protection:
            self.safe_state(f"{supply.name} did not come on")
            raise RigError(f"{supply.name}: output did not come on"
                           + (f" (protection latched: {reading.protection})" if reading.protection else ""))
        self._current_limits[path.name] = current_limit
        self.expected = dataclasses.replace(self.expected, since=self.clock.now(),
                                            supplies_on=self.expected.supplies_on | members(supply))
        self._event(f"{supply.name}: {volts:g} V, limit {current_limit:g} A, OVP {ovp:g} V, output on")

    def sink(self, path: PowerPath, mode: LoadMode, level: float) -> None:
        self._refuse_if_tripped()
        path.load.set_mode(mode, level)
        path.load.input_on()
        reading = path.load.measure()
        if not reading.input_on or reading.protection:
            self.safe_state(f"{path.load.name} did not come on")
            raise RigError(f"{path.load.name}: input did not come on"
                           + (f" (protection latched: {reading.protection})" if reading.protection else ""))
        now = self.clock.now()
        # In constant current the inlet carries the load's setpoint, or the supply's limit if lower.
        want = min(level, self._current_limits.get(path.name, level)) if mode is LoadMode.CC else None
        self.expected = dataclasses.replace(self.expected, since=now,
                                            loads_on=self.expected.loads_on | members(path.load),
                                            inlet_current=want, current_from=now + self.limits.current_settle_s)
        self._event(f"{path.load.name}: {mode} {level:g}, input on")

    def wait(self, seconds: float) -> None:
        """Hold for ``seconds`` of rig time; raise SafetyTrip at once if the bench trips meanwhile
        (unless inside ``expect_trip`` for that reason, where the hold simply continues)."""
        end = self.clock.now() + seconds
        while (remaining := end - self.clock.now()) > 0:
            if self._tripped.is_set():
                self._raise_trip()
                self.clock.sleep(remaining)
                return
            self.clock.wait(self._tripped, remaining)
        self.check_not_tripped()  # a trip that began as the hold ended

    def check_not_tripped(self) -> None:
        """SafetyTrip if the rig has tripped (unless inside ``expect_trip`` for that reason): a verdict
        is never taken from a bench that stopped being what the plan set. A trip still making the bench
        safe (on the sampler's thread) is waited for, so the caller meets a bench already safe."""
        if self.trip is not None:
            self._tripped.wait(SAFE_STATE_WAIT_S)
            self._raise_trip()

    def _raise_trip(self) -> None:
        if self.trip is not None and not (self._trip_expected() or self.trip_was_expected):
            raise SafetyTrip(self.trip)

    def _trip_expected(self) -> bool:
        return self._expected_trip is not None and self.trip is not None and \
            self._expected_trip.lower() in self.trip.lower()

    def sample(self) -> Sample:
        """A fresh sample of every instrument, taken now (recorded and checked like any other).
        SafetyTrip instead if the rig has tripped (unless expected): no reading of a bench that is no
        longer what the plan set ever reaches a verdict."""
        sample = self.fresh_sample()
        self.check_not_tripped()
        return sample

    def fresh_sample(self) -> Sample:
        """A fresh sample, recorded and checked (it may trip the rig) but never raising for a trip: for
        the rig's own pre-flight and re-arm, which look at a tripped bench on purpose."""
        return self.sampler.take()  # handed to _on_sample in turn with the sampling thread

    def wait_for(self, condition: Callable[[Sample], bool], timeout: float, what: str) -> Sample:
        """Wait (rig seconds) until a sample satisfies ``condition``; RigError naming ``what`` if not."""
        deadline = self.clock.now() + timeout
        while True:
            sample = self.fresh_sample()
            if self._tripped.is_set():
                self._raise_trip()
            if condition(sample):
                return sample
            if self.clock.now() > deadline:
                raise RigError(f"timed out after {timeout:g} s waiting for {what}")
            self.clock.sleep(min(0.1, self.config.safety.sample_period / 10))

    @contextlib.contextmanager
    def expect_trip(self, reason: str) -> Iterator[None]:
        """A block in which a trip whose reason contains ``reason`` is the expected outcome."""
        self._expected_trip = reason
        try:
            yield
        finally:
            self._expected_trip = None

    def rearm(self) -> None:
        """Before a test: clear a finished trip (fixture latch, instrument protections) once its cause
        has gone. RigError if the cause remains (e.g. E-stop still pressed)."""
        sample = self.fresh_sample()
        fixture = sample.fixture
        if self.trip is None and fixture is not None and fixture.safety_chain_ok and not any(
                r.protection for r in [*sample.supplies().values(), *sample.loads().values()]):
            return
        if self._heartbeat is not None and self._heartbeat.withheld:
            raise RigError("cannot re-arm: the heartbeat was withheld after an incomplete safe state "
                           f"({self.safe_reports[-1].unreachable}); check the bench and start a new session")
        self.safe_state("re-arm after a trip")
        self.fixture.actuate(estop=False, open_interlock=False)
        try:
            self.fixture.reset_trip()
        except InstrumentError as exc:
            raise RigError(f"cannot re-arm: the fixture refuses to reset its trip ({exc}); "
                           "is the E-stop pressed or the interlock loop open?") from None
        self._clear_protections({name for name, r in [*sample.supplies().items(), *sample.loads().items()]
                                 if r.protection})
        self._armed_since = self.clock.now()
        self.trip = None
        self.trip_was_expected = False
        self._tripped.clear()
        self.wait_for(lambda s: s.fixture is not None and s.fixture.safety_chain_ok
                               and not any(r.protection for r in [*s.supplies().values(), *s.loads().values()]),
                               5.0, "the safety chain and instrument protections to clear")
        self._event("re-armed after trip")

    def _clear_protections(self, latched: set[str]) -> None:
        """Clear only the units that hold a protection, each the way it accepts; then read every output
        back and force it off (a clear may restore an output to ON). A unit that cannot be cleared
        remotely is named with what to do at its front panel."""
        refused: list[str] = []
        for unit in self._power_units():
            if unit.name in latched:
                try:
                    unit.clear_protection()
                except NotSupported as exc:
                    refused.append(str(exc))
        report = self.safe_state("after clearing protections: every output read back off")
        if not report.ok:
            raise RigError("cannot re-arm: the bench did not read back off after clearing protections: " + "; ".join(
                line for line in report.lines() if line.startswith("FAIL")))
        if refused:
            raise RigError("cannot re-arm: " + "; ".join(refused))

    @property
    def sampler(self) -> Sampler:
        assert self._sampler is not None, "rig not open"
        return self._sampler
