"""pytest plugin (entry point ``pytest11``, name ``nacs_rig``): a rig, its measurements and its results
folder as fixtures, so test plans are ordinary pytest modules.

    pytest test_plans --sim                              # simulated bench, in this process
    pytest test_plans --rig rigs/bench1.toml --dut SN123 --tier 1000 -k endurance

Fixtures: ``rig`` (the open ``Rig``), ``check`` (record a measurement against a profile limit),
``profile``, ``dut``, ``prompt`` (ask the operator), ``run_store`` (session-wide values, e.g. a
baseline). Markers: ``tier(V)`` (skip unless the DUT is rated for that tier), ``endurance`` (long).

Safety: the rig is opened once per session and every test starts re-armed and ends in the safe state;
SIGTERM is turned into KeyboardInterrupt (once) so teardown — the safe state — runs on every exit.
A measurement outside its limit fails the test after the test body has recorded all of its
measurements: the record and the verdict can never disagree.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import platform
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from instruments.errors import InstrumentFault
from rig.errors import SafetyTrip

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
    _sigterm_runs_teardown()


def _sigterm_runs_teardown() -> None:
    """pytest dies on SIGTERM without teardown; turn the first one into KeyboardInterrupt."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not break the teardown
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # `pytest &` starts with SIGINT ignored


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
    results_db: Any = None  # rig.db.feed.RunFeed: rows into the results database as the run goes
    busy: str | None = None  # set when another session owns the bench (exit 75)
    bench_lock: Any = None
    planned_tests: list[str] = field(default_factory=list)  # node ids selected to run, for the report
    _log_handler: logging.Handler | None = None

    @classmethod
    def from_options(cls, config: pytest.Config) -> RigRun:
        from instruments.sim.bench import parse_fault
        from rig.check import calibration_status
        from rig.config import ConfigError, load_config
        from rig.errors import DutRefused
        from rig.limits import Dut, check_dut
        from rig.profile import load_profile
        from rig.recorder import run_id

        opt = config.getoption
        if opt("rig_file") and opt("sim"):
            raise pytest.UsageError("give --rig FILE or --sim, not both")
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
        if rig_config is not None:
            if opt("time_scale") not in (None, rig_config.time_scale):
                raise pytest.UsageError("--time-scale applies to --sim only; a rig config sets its own")
            today = dt.date.today()
            for inst in rig_config.instruments.values():
                status = calibration_status(inst, today)
                if status and status[0] == "calibration expired" and not opt("allow_expired_calibration"):
                    raise pytest.UsageError(f"{inst.name}: {status[1]}; refusing to run "
                                            "(--allow-expired-calibration overrides, and is recorded)")
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
        """Open the bench (starting the simulator for --sim), the results folder and the rig."""
        from instruments.sim.bench import SimulatedBench
        from rig.bench_lock import Owner
        from rig.clock import Clock
        from rig.db.feed import RunFeed  # imported before the sampler starts: attaching it must take no time
        from rig.errors import EXIT_BUSY, BenchBusy
        from rig.limits import effective_limits
        from rig.recorder import RunRecorder
        from rig.sampler import columns
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
        try:
            self.rig.open()
        except BenchBusy as exc:  # another PC's session holds the fixture: stop the whole run, once
            self.busy = self.open_error = str(exc)
            self._stop_bench()
            pytest.exit(str(exc), returncode=EXIT_BUSY)
        except Exception as exc:
            self.open_error = str(exc)
            self._stop_bench()
            raise
        self.recorder = RunRecorder(self.folder, self._metadata(rig_config, ceilings, live),
                                    columns(self.rig.instruments), origin=clock.now())
        self._log_handler = logging.FileHandler(self.folder / "run.log", encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for name in ("rig", "instruments"):
            logging.getLogger(name).addHandler(self._log_handler)
            logging.getLogger(name).setLevel(logging.INFO)
        # The results database (rig.db): an index beside the CSV files, fed from a thread of its own. Its
        # listener is attached in the same step as the recorder's, so both see exactly the same samples.
        self.results_db = RunFeed.start_for(self, rig_config)
        self.rig.listeners += [self._on_rig_event, *([self.results_db.on_rig_event] if self.results_db else [])]

    def _on_rig_event(self, kind: str, payload: Any) -> None:
        if kind == "sample":
            self.recorder.write_sample(payload)
        elif kind == "trip":
            self.recorder.append("safety_trips", {"test": self.recorder.test, "reason": payload,
                                                  "time_s": round(self.rig.clock.now() - self.recorder.origin, 3),
                                                  "expected": self.rig.trip_was_expected})
        elif kind == "safe" and not payload.ok:
            self.recorder.append("incomplete_safe_states", {"reason": payload.reason, "steps": payload.lines()})

    def stop(self) -> None:
        """Safe state and close (always), then stop the simulator."""
        try:
            if self.rig is not None:
                self.rig.close()
                if self.recorder is not None and self.rig.safe_reports:
                    self.recorder.update(final_safe_state=self.rig.safe_reports[-1].lines())
        finally:
            self._stop_bench()
            if self._log_handler is not None:
                for name in ("rig", "instruments"):
                    logging.getLogger(name).removeHandler(self._log_handler)
                self._log_handler.close()

    def _stop_bench(self) -> None:
        if self.bench is not None:
            self.bench.stop()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # A lock handed over by `rig run` is its to release; one taken here is released here.
        if self.bench_lock is not None and self.bench_lock not in config.pluginmanager.get_plugins():
            self.bench_lock.release()

    def _metadata(self, rig_config: Any, ceilings: Any, live: Any) -> dict[str, Any]:
        rig = self.rig
        return {
            "run_id": self.folder.name,
            "dut": {"serial": self.dut.serial, "tier_v": self.dut.tier, "rated_current_a": self.dut.rated_current},
            "tier": self.dut.tier,
            "operator": self.operator,
            "started": dt.datetime.now().astimezone().isoformat(),
            "command": " ".join(sys.argv),
            "host": platform.node(),
            "rig": {"name": rig_config.name, "file": rig_config.source, "sha256": rig_config.sha256,
                    "simulated": self.bench is not None, "time_scale": self.time_scale,
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
            "instruments": {
                name: {"driver": cfg.driver, "role": cfg.role, "resource": cfg.resource,
                       "identity": str(rig.identities.get(name, "")), "watchdog": rig.watchdogs.get(name, ""),
                       "calibration_due": cfg.calibration_due}
                for name, cfg in rig_config.instruments.items()
            },
            "calibration_override": bool(self.config.getoption("allow_expired_calibration")),
            "software": {pkg: _version(pkg) for pkg in ("nacs-rig", "pyvisa", "pyvisa-py", "pymodbus", "pytest")}
            | {"python": platform.python_version()},
            "planned_tests": self.planned_tests,
            "safety_trips": [],
            "prompts": [],
        }

    def outcome(self, exitstatus: int) -> str:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return "interrupted"
        if self.faults:
            return "tripped"
        if exitstatus == pytest.ExitCode.OK:
            return "passed"
        if exitstatus == pytest.ExitCode.TESTS_FAILED:
            return "failed"
        return "error"

    # -- session hooks (this object is registered as a plugin) ------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.planned_tests = [item.nodeid for item in session.items]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.counts[report.outcome] += 1
        elif report.when == "setup" and report.outcome != "passed":
            self.counts["skipped" if report.outcome == "skipped" else "error"] += 1

    @pytest.hookimpl(trylast=True)  # after the runner's, which tears the session fixtures (the rig) down
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.recorder is not None:
            self.recorder.finish(self.outcome(exitstatus), counts=dict(self.counts), faults=self.faults,
                                 exit_status=int(exitstatus))
            if self.results_db is not None:
                self.results_db.finish()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.recorder is not None:
            terminalreporter.write_line(f"results: {self.folder}{os.sep}  "
                                        f"(outcome: {self.recorder.metadata['outcome']})")


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
        run.start()
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
    run.recorder.test = request.node.nodeid
    run.rig.rearm()
    try:
        yield
    finally:
        run.rig.safe_state(f"end of {request.node.name}")
        run.recorder.test = ""


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
    """Ask the operator to do and confirm a physical step; ``--yes`` or no terminal answers for CI."""

    def __init__(self, run: RigRun, request: pytest.FixtureRequest) -> None:
        self.run = run
        self.request = request

    def __call__(self, text: str) -> bool:
        if self.run.config.getoption("yes"):
            answer, how = True, "--yes"
        else:
            manager = self.request.config.pluginmanager
            # pytest redirects stdin (fd 0 and sys.stdin) while a test runs: give the terminal back as its
            # debugger does (in_=True), then ask the real stdin whether a person is there.
            capture = manager.getplugin("capturemanager")
            capture.suspend_global_capture(in_=True)
            try:
                if sys.stdin is None or not sys.stdin.isatty():
                    answer, how = True, "no terminal"
                else:
                    answer, how = self._ask(text, manager), "operator"
            finally:
                capture.resume_global_capture()
        self.run.recorder.append("prompts", {"test": self.request.node.nodeid, "text": text, "answer": answer,
                                             "answered_by": how, "time": dt.datetime.now().astimezone().isoformat()})
        if not answer:
            pytest.fail(f"operator declined: {text}", pytrace=False)
        return answer

    @staticmethod
    def _ask(text: str, manager: Any) -> bool:
        displays = [p for p in manager.get_plugins() if hasattr(p, "pause_display")]  # rig run's live view
        for display in displays:
            display.pause_display()
        try:
            return input(f"\n>>> {text} [y/N] ").strip().lower() in ("y", "yes")
        finally:
            for display in displays:
                display.resume_display()


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


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    run = item.config.stash.get(RUN_KEY, None)
    if run is None or call.excinfo is None:
        return
    exc = call.excinfo.value
    if isinstance(exc, SafetyTrip | InstrumentFault):
        run.faults.append(f"{item.nodeid}: {exc}")
