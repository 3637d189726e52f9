"""pytest plugin (entry point ``pytest11``, name ``nacs_rig``): a rig, its measurements and its results
folder as fixtures, so test plans are ordinary pytest modules.

    pytest test_plans --sim                              # simulated bench, in this process
    pytest test_plans --rig rigs/bench1.toml --dut SN123 --tier 1000 -k endurance

Fixtures: ``rig`` (the open ``Rig``), ``check`` (record a measurement against a profile limit),
``profile``, ``dut``, ``prompt`` (ask the operator), ``run_store`` (session-wide values, e.g. a
baseline). Markers: ``tier(V)`` (skip unless the DUT is rated for that tier), ``endurance`` (long).

Safety: the rig is opened once per session and every test starts re-armed and ends in the safe state;
SIGTERM is turned into KeyboardInterrupt and no later signal can cut the safe state short
(``rig.interrupts``). Before anything is energised the run checks that it can record (results folder
writable, room for the run) and that the bench can be used (every instrument identified, calibration
valid, E-stop released, interlock closed, an operator at the terminal for tests that ask one); if not,
it stops once with one line. A recording failure during the run is a safety trip; an unexpected trip
stops the run until an operator acknowledges it (or ``--rearm-after-trip`` was given; recorded).
A measurement outside its limit fails the test after the test body has recorded all of its
measurements: the record and the verdict can never disagree.

``RigRun.exit_code`` is what ``rig run`` exits with (0 pass, 1 fail, 2 usage, 3 safety trip, instrument
fault or bench not confirmed safe, 130 interrupted); run.json records it as ``exit_status``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from instruments.errors import InstrumentError, InstrumentFault
from rig import interrupts
from rig.errors import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_SAFETY,
    EXIT_USAGE,
    RecordingFailed,
    RigError,
    RunRefused,
    SafetyTrip,
)

RUN_KEY = pytest.StashKey["RigRun"]()
CHECKS_KEY = pytest.StashKey[list]()
DEFAULT_SIM_SCALE = 1000.0


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("nacs-rig", "NACS rig (bench, DUT, results)")
    g.addoption("--rig", dest="rig_file", metavar="FILE", help="rig config (TOML) of the bench to use")
    g.addoption("--sim", action="store_true", help="use a simulated bench started in this process")
    g.addoption("--sim-fault", dest="sim_faults", action="append", default=[], metavar="NAME[=VALUE]",
                help="inject a fault into the simulated bench (repeatable), e.g. degraded_contact=3")
    g.addoption("--time-scale", type=float, default=None, metavar="X",
                help=f"rig seconds per real second on a simulated bench (default {DEFAULT_SIM_SCALE:g})")
    g.addoption("--dut", default="UNSPECIFIED", metavar="SERIAL", help="serial number of the inlet under test")
    g.addoption("--tier", type=int, default=500, choices=(500, 1000), help="DUT DC configuration in V (500)")
    g.addoption("--rated-current", type=float, default=None, metavar="A",
                help="DUT rated continuous current (default: profile dut.rated_current)")
    g.addoption("--profile", dest="profile_file", metavar="FILE", help="limits profile (default: J3400 public)")
    g.addoption("--results", default="results", metavar="DIR", help="where run folders go (results/)")
    g.addoption("--run-id", default=None, metavar="ID", help="name of the run folder (default: time + DUT)")
    g.addoption("--operator", default=None, metavar="NAME", help="who runs the test (default: login name)")
    g.addoption("--yes", action="store_true", help="answer operator prompts with yes (recorded as such)")
    g.addoption("--allow-expired-calibration", action="store_true",
                help="run despite an expired calibration (recorded in run.json)")
    g.addoption("--rearm-after-trip", action="store_true",
                help="after an unexpected safety trip, re-arm and go on without asking (recorded in run.json)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tier(volts): applies that tier's voltage; skipped on a DUT rated lower")
    config.addinivalue_line("markers", "endurance: long hold at rated current (deselect with -m 'not endurance')")
    if not (config.getoption("rig_file") or config.getoption("sim")):
        return
    run = RigRun.from_options(config)
    run.take_bench()
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(run, "nacs-rig-run")
    if not config.getoption("xmlpath", None):
        config.option.xmlpath = str(run.folder / "junit.xml")
    # pytest dies on SIGTERM without teardown, and a second Ctrl-C would cut the teardown short.
    interrupts.install()


# --- the run ----------------------------------------------------------------------------------------


@dataclass(eq=False)  # identity, not value: it is registered as a pytest plugin (pluggy keeps plugins in sets)
class RigRun:
    """One pytest session's rig, bench, profile, DUT and results folder."""

    config: pytest.Config
    rig_config: Any
    profile: Any
    dut: Any
    folder: Path
    operator: str
    time_scale: float
    sim_faults: list[str]
    rig: Any = None
    bench: Any = None
    recorder: Any = None
    counts: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0, "skipped": 0, "error": 0})
    faults: list[str] = field(default_factory=list)
    store: dict[str, Any] = field(default_factory=dict)
    open_error: str | None = None
    busy: str | None = None  # set when another session owns the bench (exit 75)
    bench_lock: Any = None
    planned_tests: list[str] = field(default_factory=list)  # node ids selected to run, for the report
    #: Why the run stopped before its last test, and the exit code that goes with it (2 or 3).
    stopped: str | None = None
    stop_code: int | None = None
    #: What ``rig run`` exits with, set when the session finishes (also run.json ``exit_status``).
    exit_code: int | None = None
    items: list[Any] = field(default_factory=list)
    #: Unexpected trips not yet acknowledged by an operator (or --rearm-after-trip).
    unacknowledged_trips: list[str] = field(default_factory=list)
    #: Tests skipped because they do not apply to this DUT (a tier above its rating): not "not run".
    not_applicable: set[str] = field(default_factory=set)
    refused: bool = False  # the pre-flight stopped the run
    _stopped_rig: bool = False
    results_db: Any = None  # rig.db.feed.RunFeed: rows into the results database as the run goes
    _log_handler: logging.Handler | None = None

    @classmethod
    def from_options(cls, config: pytest.Config) -> RigRun:
        from instruments.sim.bench import parse_fault
        from rig.config import ConfigError, load_config
        from rig.errors import DutRefused
        from rig.limits import Dut, check_dut
        from rig.profile import load_profile
        from rig.recorder import run_id

        opt = config.getoption
        if opt("rig_file") and opt("sim"):
            raise pytest.UsageError("give --rig FILE or --sim, not both")
        if not str(opt("dut")).strip() or not str(opt("dut")).isprintable():
            raise pytest.UsageError(f"--dut: expected the DUT's serial number, got {opt('dut')!r}")
        try:
            profile = load_profile(opt("profile_file"))
            rated = opt("rated_current") or profile.value("dut.rated_current")
            dut = Dut(opt("dut"), opt("tier"), rated)
            check_dut(dut, profile)
            rig_config = load_config(opt("rig_file")) if opt("rig_file") else None
            for fault in opt("sim_faults"):
                if rig_config is not None:
                    raise pytest.UsageError("--sim-fault needs --sim")
                parse_fault(fault)
        except (ConfigError, DutRefused, ValueError) as exc:
            raise pytest.UsageError(str(exc)) from None
        if rig_config is not None and opt("time_scale") not in (None, rig_config.time_scale):
            raise pytest.UsageError("--time-scale applies to --sim only; a rig config sets its own")
        scale = rig_config.time_scale if rig_config else (opt("time_scale") or DEFAULT_SIM_SCALE)
        folder = Path(opt("results")) / (opt("run_id") or run_id(dut.serial))
        for n in range(2, 100):  # two runs of one DUT within a second must not share a folder
            if not folder.exists():
                break
            folder = folder.with_name(f"{folder.name.rsplit('~', 1)[0]}~{n}")
        return cls(config, rig_config, profile, dut, folder, opt("operator") or _login(), scale,
                   list(opt("sim_faults")))

    def take_bench(self) -> None:
        """This PC's lock on a real bench, before collection and before anything is sent: a second
        session stops here, at once, naming the owner. ``rig run`` takes it even earlier and hands it
        over as a plugin object."""
        from rig.bench_lock import BenchLock, Owner
        from rig.errors import EXIT_BUSY, BenchBusy

        if self.rig_config is None:
            return  # a simulated bench started by this process is private to it
        held = [p for p in self.config.pluginmanager.get_plugins() if isinstance(p, BenchLock)]
        if held:
            self.bench_lock = held[0]
            return
        try:
            self.bench_lock = BenchLock.acquire(self.rig_config, Owner.here(self.dut.serial))
        except BenchBusy as exc:
            pytest.exit(str(exc), returncode=EXIT_BUSY)

    def start(self) -> None:
        """Pre-flight, then open the bench. In this order, so that nothing is energised that cannot be
        recorded or that nobody can answer for: results folder and run.json (writable, room for the
        run), operator at a terminal if a test asks one, calibration, then the bench opened (every
        instrument identified, safe state confirmed) and its safety chain checked. ``RunRefused``
        (one line, with its exit code) if any check fails."""
        from instruments.sim.bench import SimulatedBench
        from rig.bench_lock import Owner
        from rig.clock import Clock
        from rig.db.feed import RunFeed  # imported before the sampler starts: attaching it must take no time
        from rig.errors import EXIT_BUSY, BenchBusy
        from rig.limits import effective_limits
        from rig.recorder import RunRecorder, check_room
        from rig.sampler import columns_by_role
        from rig.session import Rig

        clock = Clock(self.time_scale)
        rig_config = self.rig_config
        if rig_config is None:
            self.bench = SimulatedBench(clock=clock).start()
            for fault in self.sim_faults:
                self.bench.inject(fault)
            rig_config = self.bench.config()
        ceilings, live = effective_limits(rig_config, self.profile, self.dut)
        self.rig = Rig(rig_config, clock=clock, ceilings=ceilings, limits=live,
                       owner=Owner.here(self.dut.serial), bench_lock=self.bench_lock)
        roles = {name: cfg.role for name, cfg in rig_config.instruments.items()}
        try:
            self.recorder = RunRecorder(self.folder, self._metadata(rig_config, ceilings, live),
                                        columns_by_role(roles), origin=clock.now())
            check_room(self.folder, self.expected_bytes(rig_config))
        except RecordingFailed as exc:
            raise RunRefused(f"{exc.reason}; nothing was energised", EXIT_SAFETY) from None
        self._log_handler = _RunLog(self.folder / "run.log")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for name in ("rig", "instruments"):
            logging.getLogger(name).addHandler(self._log_handler)
            logging.getLogger(name).setLevel(logging.INFO)
        self._refuse_prompts_without_operator()
        self._refuse_expired_calibration(rig_config)
        # From the first sample on: record, see trips, and feed the results database (rig.db: an index
        # beside the CSV files, fed from a thread of its own; both listeners see exactly the same samples).
        self.results_db = RunFeed.start_for(self, rig_config)
        self.rig.listeners += [self._on_rig_event, *([self.results_db.on_rig_event] if self.results_db else [])]
        try:
            self.rig.open()
        except BenchBusy as exc:  # another PC's session holds the fixture: stop the whole run, once
            self.busy = self.open_error = str(exc)
            self._stop_bench()
            pytest.exit(str(exc), returncode=EXIT_BUSY)
        except Exception as exc:
            self.open_error = str(exc)
            self._stop_bench()
            if isinstance(exc, RigError | InstrumentError):
                raise RunRefused(f"bench not ready: {exc}", EXIT_SAFETY) from None
            raise
        self.recorder.update(instruments=self._instruments(rig_config), capabilities=self._capabilities())
        # A trip seen while opening (e.g. latched by a killed session) is unexpected: it needs acknowledging.
        self._refuse_broken_safety_chain()

    def expected_bytes(self, rig_config: Any) -> int:
        """About how much samples.csv will take: the endurance hold (profile endurance.max_hold) at the
        sample period, plus a few minutes of samples for every other selected test."""
        from rig.recorder import ROW_BYTES

        period = rig_config.safety.sample_period
        rows = 0.0
        for item in self.items:
            if item.get_closest_marker("endurance") is not None:
                rows += self.profile.value("endurance.max_hold") / period
            else:
                rows += min(120.0, 120.0 / period)
        return int(rows * ROW_BYTES)

    def _refuse_prompts_without_operator(self) -> None:
        asking = [item.name for item in self.items if "prompt" in getattr(item, "fixturenames", ())]
        if asking and not self.config.getoption("yes") and not operator_terminal(self.config):
            raise RunRefused(f"{asking[0]}{f' and {len(asking) - 1} more' if len(asking) > 1 else ''} "
                             "ask(s) the operator to confirm a step, and there is no terminal to answer: "
                             "run from a terminal, or pass --yes (recorded)", EXIT_USAGE)

    def _refuse_expired_calibration(self, rig_config: Any) -> None:
        from rig.check import calibration_status

        if self.rig_config is None:
            return  # the simulated bench has no calibration dates
        today = dt.date.today()
        for inst in rig_config.instruments.values():
            status = calibration_status(inst, today)
            if status and status[0] == "calibration expired" and not self.config.getoption("allow_expired_calibration"):
                raise RunRefused(f"bench not ready: {inst.name}: {status[1]} "
                                 "(--allow-expired-calibration overrides, and is recorded)", EXIT_SAFETY)

    def _refuse_broken_safety_chain(self) -> None:
        from rig.safety import chain_reason

        fixture = self.rig.fresh_sample().fixture
        if fixture is None:
            raise RunRefused("bench not ready: the fixture gave no reading", EXIT_SAFETY)
        if fixture.estop_pressed or not fixture.interlock_closed:
            raise RunRefused(f"bench not ready: {chain_reason(fixture) or 'safety chain open'}; "
                             "release the E-stop and close the interlock loop, then start again", EXIT_SAFETY)

    def _on_rig_event(self, kind: str, payload: Any) -> None:
        if kind == "trip":
            expected = self.rig.trip_was_expected
            if not expected:
                self.unacknowledged_trips.append(payload)
        try:
            if kind == "sample":
                self.recorder.write_sample(payload)
            elif kind == "trip":
                self.recorder.append("safety_trips", {
                    "test": self.recorder.test, "reason": payload, "expected": expected,
                    "time_s": round(self.rig.clock.now() - self.recorder.origin, 3)})
            elif kind == "safe" and not payload.ok:
                self.recorder.append("incomplete_safe_states", {"reason": payload.reason, "steps": payload.lines()})
        except RecordingFailed as exc:
            self._stop_run(exc.reason, EXIT_SAFETY)
        if kind == "sample" and self.recorder.failure is not None:
            # On the sampler's thread, outside any safe state: the rig never holds what it cannot record.
            self.rig.trip_now(self.recorder.failure.reason)

    def _stop_run(self, reason: str, code: int) -> None:
        """The run ends before its next test (the first reason is kept)."""
        if self.stopped is None:
            self.stopped, self.stop_code = reason, code

    def stop(self) -> None:
        """Safe state and close (always, and no signal can cut it short), then stop the simulator.
        Idempotent: the session's end calls it before any other plugin writes (junit.xml)."""
        with interrupts.shielded():
            if self._stopped_rig:
                return
            self._stopped_rig = True
            try:
                if self.rig is not None:
                    self.rig.close()
                    if self.recorder is not None and self.final_safe_report is not None:
                        report = self.final_safe_report
                        with contextlib.suppress(RecordingFailed):
                            self.recorder.update(final_safe_state=report.lines(), bench_confirmed_safe=report.ok)
            finally:
                self._stop_bench()
                if self._log_handler is not None:
                    for name in ("rig", "instruments"):
                        logging.getLogger(name).removeHandler(self._log_handler)
                    self._log_handler.close()

    @property
    def final_safe_report(self) -> Any:
        """The last safe state of the session (None if the bench was never opened)."""
        return self.rig.safe_reports[-1] if self.rig is not None and self.rig.safe_reports else None

    def _stop_bench(self) -> None:
        if self.bench is not None:
            bench, self.bench = self.bench, None
            bench.stop()

    def _metadata(self, rig_config: Any, ceilings: Any, live: Any) -> dict[str, Any]:
        return {
            "run_id": self.folder.name,
            "dut": {"serial": self.dut.serial, "tier_v": self.dut.tier, "rated_current_a": self.dut.rated_current},
            "tier": self.dut.tier,
            "operator": self.operator,
            "started": dt.datetime.now().astimezone().isoformat(),
            "command": " ".join(sys.argv),
            "host": platform.node(),
            "rig": {"name": rig_config.name, "file": rig_config.source, "sha256": rig_config.sha256,
                    "simulated": self.bench is not None or rig_config.simulated, "time_scale": self.time_scale,
                    "sim_faults": self.sim_faults},
            "profile": {"name": self.profile.name, "version": self.profile.version,
                        "path": str(Path(self.profile.path).resolve()), "sha256": self.profile.sha256},
            # The profile's limits as they were for this run, so a report never depends on the file later.
            "limits": {key: {"low": lim.low, "high": lim.high, "unit": lim.unit, "source": lim.source,
                             "confidence": lim.confidence} for key, lim in self.profile.limits.items()},
            "effective_limits": {
                "setpoint_voltage": vars(ceilings.voltage), "setpoint_current": vars(ceilings.current),
                "trip_voltage": vars(live.max_voltage), "trip_current": vars(live.max_current),
                "trip_temperature": vars(live.max_temperature),
            },
            "instruments": self._instruments(rig_config),
            "capabilities": {},  # optional features per unit, found at open (issue 12)
            "calibration_override": bool(self.config.getoption("allow_expired_calibration")),
            "rearm_after_trip_option": bool(self.config.getoption("rearm_after_trip")),
            "software": {pkg: _version(pkg) for pkg in ("nacs-rig", "pyvisa", "pyvisa-py", "pymodbus", "pytest")}
            | {"python": platform.python_version()},
            "planned_tests": self.planned_tests,
            "safety_trips": [],
            "prompts": [],
            "rearms": [],
        }

    def _capabilities(self) -> dict[str, Any]:
        """Optional features each unit showed at open, and what covers for a missing one (issue 12)."""
        return {name: {key: c.as_record() for key, c in found.items()}
                for name, found in self.rig.capabilities.items()}

    def _instruments(self, rig_config: Any) -> dict[str, Any]:
        rig = self.rig
        return {name: {"driver": cfg.driver, "role": cfg.role, "resource": cfg.resource,
                       "identity": str(rig.identities.get(name, "")), "watchdog": rig.watchdogs.get(name, ""),
                       "calibration_due": cfg.calibration_due}
                for name, cfg in rig_config.instruments.items()}

    def outcome(self, exitstatus: int) -> str:
        if self.refused:
            return "refused"  # stopped by the pre-flight: nothing energised
        if self.recorder is not None and self.recorder.failure is not None:
            return "tripped"
        if exitstatus == pytest.ExitCode.INTERRUPTED and self.stopped is None:
            return "interrupted"
        if self.faults or self.stop_code == EXIT_SAFETY:
            return "tripped"
        if exitstatus == pytest.ExitCode.OK:
            return "passed"
        if exitstatus == pytest.ExitCode.TESTS_FAILED:
            return "failed"
        return "error"

    def exit_code_for(self, exitstatus: int) -> int:
        """What ``rig run`` exits with: the bench not confirmed safe or a recording failure is a safety
        fault (3) whatever else happened; then a refusal's own code, an interruption (130), a trip (3),
        and pytest's verdict."""
        report = self.final_safe_report
        if (report is not None and not report.ok) or (self.recorder is not None and self.recorder.failure):
            return EXIT_SAFETY
        if self.stop_code is not None:
            return self.stop_code
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return EXIT_INTERRUPTED
        if self.faults:
            return EXIT_SAFETY
        return {pytest.ExitCode.OK: EXIT_PASS, pytest.ExitCode.TESTS_FAILED: EXIT_FAIL,
                pytest.ExitCode.NO_TESTS_COLLECTED: EXIT_USAGE,
                pytest.ExitCode.USAGE_ERROR: EXIT_USAGE}.get(exitstatus, EXIT_SAFETY)

    # -- session hooks (this object is registered as a plugin) ------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.planned_tests = [item.nodeid for item in session.items]
        self.items = list(session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.counts[report.outcome] += 1
        elif report.when == "setup" and report.outcome != "passed":
            self.counts["skipped" if report.outcome == "skipped" else "error"] += 1

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Iterator[None]:
        # First of all plugins: the bench safe and the record finished before anything else writes
        # (junit.xml goes to the same disk, which may be the one that is full).
        self.stop()
        code = self.exit_code_for(session.exitstatus)
        self.exit_code = code
        if self.recorder is not None:
            with contextlib.suppress(RecordingFailed):
                self.recorder.finish(self.outcome(session.exitstatus), counts=dict(self.counts), faults=self.faults,
                                     stopped=self.stopped, exit_status=code,
                                     pytest_exit_status=int(session.exitstatus))
        try:
            return (yield)
        except OSError as exc:  # junit.xml on a full or read-only disk: the record failed, not the bench
            self.exit_code = EXIT_SAFETY
            self._stop_run(f"cannot record {exc.filename}: {exc.strerror or exc}", EXIT_SAFETY)
            return None
        finally:
            if self.results_db is not None:  # last: the database indexes the folder as it is left (junit.xml too)
                self.results_db.finish()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop()  # a last net: the session's own teardown may have been skipped by an error
        # A lock handed over by `rig run` is its to release; one taken here is released here, last.
        if self.bench_lock is not None and self.bench_lock not in config.pluginmanager.get_plugins():
            self.bench_lock.release()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.recorder is not None:
            terminalreporter.write_line(f"results: {self.folder}{os.sep}  "
                                        f"(outcome: {self.recorder.metadata['outcome']})")
        if self.stopped:
            terminalreporter.write_line(f"run stopped: {self.stopped}")
        report = self.final_safe_report
        if report is not None and not report.ok:
            terminalreporter.write_line(f"bench NOT confirmed safe: {'; '.join(report.unreachable)}")


class _RunLog(logging.FileHandler):
    """run.log. A write that fails (full disk) must not print a traceback per log line; the recorder's
    own failure is what stops the run."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def operator_terminal(config: pytest.Config) -> bool:
    """Whether a person can answer on this process's terminal. pytest redirects stdin while it runs:
    give the terminal back for the question, as its debugger does (``in_=True``)."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    finally:
        if capture is not None:
            capture.resume_global_capture()


def ask_operator(config: pytest.Config, text: str) -> bool:
    """Ask a yes/no question on the terminal (the live display paused); False unless answered yes."""
    manager = config.pluginmanager
    capture = manager.getplugin("capturemanager")
    displays = [p for p in manager.get_plugins() if hasattr(p, "pause_display")]  # rig run's live view
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    for display in displays:
        display.pause_display()
    try:
        if sys.stdin is None or not sys.stdin.isatty():
            return False
        return input(f"\n>>> {text} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False
    finally:
        for display in displays:
            display.resume_display()
        if capture is not None:
            capture.resume_global_capture()


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _run(config: pytest.Config) -> RigRun:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        pytest.exit("these tests need a rig: pass --sim (simulated bench) or --rig FILE", returncode=4)
    return run


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rig_run(request: pytest.FixtureRequest) -> Iterator[RigRun]:
    run = _run(request.config)
    try:
        try:
            run.start()
        except RunRefused as exc:
            # Once for the whole run, not once per test: the bench (or its record) cannot be used.
            run._stop_run(str(exc), exc.exit_code)
            run.refused = True
            pytest.exit(str(exc), returncode=exc.exit_code)
        yield run
    finally:
        run.stop()  # also after a start that failed half-way (e.g. Ctrl-C while opening)


@pytest.fixture(scope="session")
def rig(rig_run: RigRun) -> Any:
    """The open Rig: paths, safe state, limits, samples (see rig.session.Rig)."""
    return rig_run.rig


@pytest.fixture(scope="session")
def profile(rig_run: RigRun) -> Any:
    """The limits profile (rig.profile.Profile)."""
    return rig_run.profile


@pytest.fixture(scope="session")
def dut(rig_run: RigRun) -> Any:
    """The inlet under test: serial, tier (V), rated_current (A)."""
    return rig_run.dut


@pytest.fixture(scope="session")
def run_store(rig_run: RigRun) -> dict[str, Any]:
    """Values kept across the tests of one run (e.g. a before-endurance baseline)."""
    return rig_run.store


@pytest.fixture(autouse=True)
def _rig_test_boundary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that uses the rig starts re-armed and ends in the safe state."""
    if "rig" not in request.fixturenames or RUN_KEY not in request.config.stash:
        yield  # no rig in this session (e.g. a project's own unit tests with a fixture named `rig`)
        return
    run: RigRun = request.getfixturevalue("rig_run")
    if run.recorder.failure is not None:  # measurements.csv or run.json failed on the plan's thread
        run._stop_run(run.recorder.failure.reason, EXIT_SAFETY)
    if run.stopped:
        pytest.exit(run.stopped, returncode=run.stop_code or EXIT_SAFETY)
    _acknowledge_trips(run, request)
    run.recorder.test = request.node.nodeid
    try:
        run.rig.rearm()
    except (RigError, InstrumentError) as exc:  # e.g. E-stop still pressed: stop once, not once per test
        run._stop_run(str(exc), EXIT_SAFETY)
        pytest.exit(str(exc), returncode=EXIT_SAFETY)
    try:
        yield
    finally:
        with interrupts.shielded():
            if run.rig.is_open:  # the session's end may have closed it already (interrupted run)
                run.rig.safe_state(f"end of {request.node.name}")
            run.recorder.test = ""


def _acknowledge_trips(run: RigRun, request: pytest.FixtureRequest) -> None:
    """No silent re-arm: after an unexpected trip the next test is energised only once an operator says
    so at the terminal, or the run was started with --rearm-after-trip. Either way it is recorded.
    (Trips a plan causes on purpose, inside ``rig.expect_trip``, need no acknowledgement.)"""
    if not run.unacknowledged_trips:
        return
    trips = "; ".join(dict.fromkeys(run.unacknowledged_trips))
    if run.config.getoption("rearm_after_trip"):
        how = "--rearm-after-trip"
    elif operator_terminal(run.config):
        if not ask_operator(run.config, f"The bench tripped: {trips}. Cause found and removed; re-arm and "
                                        f"go on with {request.node.name}?"):
            run._stop_run(f"stopped after a safety trip ({trips}): operator did not re-arm", EXIT_SAFETY)
            pytest.exit(run.stopped or "", returncode=EXIT_SAFETY)
        how = "operator"
    else:
        run._stop_run(f"stopped after a safety trip ({trips}): re-arming needs an operator at the terminal "
                      "(or --rearm-after-trip)", EXIT_SAFETY)
        pytest.exit(run.stopped or "", returncode=EXIT_SAFETY)
    run.recorder.append("rearms", {"before": request.node.nodeid, "trips": list(run.unacknowledged_trips),
                                   "acknowledged_by": how, "time": dt.datetime.now().astimezone().isoformat()})
    run.unacknowledged_trips.clear()


class Checker:
    """``check(limit_key, value, name=None)``: record a measurement against a profile limit."""

    def __init__(self, run: RigRun, item: pytest.Item) -> None:
        self.run = run
        self.item = item
        self.results = item.stash.setdefault(CHECKS_KEY, [])

    def __call__(self, limit_key: str, value: float, *, name: str | None = None) -> Any:
        from rig.recorder import Measurement

        self.run.rig.check_not_tripped()  # no verdict from readings of a bench that tripped
        limit = self.run.profile.limit(limit_key)
        m = Measurement(
            test=self.item.nodeid, name=name or limit_key, value=float(value), unit=limit.unit, low=limit.low,
            high=limit.high, passed=limit.verdict(float(value)), limit=limit.key, source=limit.source,
            confidence=limit.confidence, time_s=self.run.rig.clock.now(), wall_time=time.time(),
        )
        self.run.recorder.write_measurement(m)
        if self.run.results_db is not None:
            self.run.results_db.measurement(m)
        self.results.append(m)
        return m


@pytest.fixture
def check(rig_run: RigRun, request: pytest.FixtureRequest) -> Checker:
    """Record a measurement against a named profile limit; a FAIL fails the test (after the body)."""
    return Checker(rig_run, request.node)


class Prompt:
    """Ask the operator to do and confirm a physical step. Only a person at the terminal, or ``--yes``
    (for CI, recorded as such), answers; without either the run refuses before anything is energised
    (``RigRun._refuse_prompts_without_operator``). A declined step aborts that test: "aborted by
    operator" (skipped, not a verdict on the DUT)."""

    def __init__(self, run: RigRun, request: pytest.FixtureRequest) -> None:
        self.run = run
        self.request = request

    def __call__(self, text: str) -> bool:
        if self.run.config.getoption("yes"):
            answer, how = True, "--yes"
        elif operator_terminal(self.run.config):
            answer, how = ask_operator(self.run.config, text), "operator"
        else:  # the pre-flight refuses such a run; never let a missing terminal answer a safety question
            self.run._stop_run("no terminal to answer the operator prompt (run from a terminal, or pass --yes)",
                               EXIT_USAGE)
            pytest.exit(self.run.stopped or "", returncode=EXIT_USAGE)
        self.run.recorder.append("prompts", {"test": self.request.node.nodeid, "text": text, "answer": answer,
                                             "answered_by": how, "time": dt.datetime.now().astimezone().isoformat()})
        if not answer:
            pytest.skip(f"aborted by operator: {text}")
        return answer


@pytest.fixture
def prompt(rig_run: RigRun, request: pytest.FixtureRequest) -> Prompt:
    return Prompt(rig_run, request)


# --- hooks ------------------------------------------------------------------------------------------


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("tier")
    run = item.config.stash.get(RUN_KEY, None)
    if marker is not None and run is not None:
        volts = int(marker.args[0])
        if volts > run.dut.tier:
            item._rig_not_applicable = True  # type: ignore[attr-defined]
            pytest.skip(f"DUT rated {run.dut.tier} V: the {volts} V tier is never applied to it")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    failed = [m for m in item.stash.get(CHECKS_KEY, []) if not m.passed]
    if failed:
        lines = [f"{m.name} = {m.value:.6g} {m.unit} outside {m.low if m.low is not None else '-inf'} .. "
                 f"{m.high if m.high is not None else '+inf'} {m.unit} (limit {m.limit}: {m.source})"
                 for m in failed]
        pytest.fail(f"{len(failed)} measurement(s) out of limits:\n  " + "\n  ".join(lines), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    run = item.config.stash.get(RUN_KEY, None)
    if run is None:
        return report
    if call.excinfo is not None and isinstance(call.excinfo.value, SafetyTrip | InstrumentFault):
        run.faults.append(f"{item.nodeid}: {call.excinfo.value}")
    failure = run.recorder.failure if run.recorder is not None else None
    if failure is not None and report.when == "call" and report.passed:
        # No verdict from unrecorded data.
        report.outcome = "failed"
        report.longrepr = f"not recorded, so no verdict: {failure.reason}"
        run.faults.append(f"{item.nodeid}: {failure}")
    if report.when == "setup" and report.skipped and getattr(item, "_rig_not_applicable", False):
        run.not_applicable.add(item.nodeid)
    return report
