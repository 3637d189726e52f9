"""The ``rig`` command line for lab technicians.

Heavy imports (pyvisa, pymodbus, rich, matplotlib, pytest) happen inside the commands, so that
``rig --help`` starts fast on a rig PC.

Exit codes: 0 pass, 1 test failure, 2 usage or config error, 3 safety trip or instrument fault,
75 bench in use by another session (nothing was sent), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from rig.errors import EXIT_BUSY, EXIT_INTERRUPTED, EXIT_SAFETY, EXIT_USAGE


class RigClickError(click.ClickException):
    """A one-line error with our exit code (no traceback)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn config, DUT, rig and instrument errors into one-line messages with the documented codes."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from instruments.errors import InstrumentError
        from rig.config import ConfigError
        from rig.errors import BenchBusy, DutRefused, RigError

        try:
            return func(*args, **kwargs)
        except (ConfigError, DutRefused) as exc:
            raise RigClickError(str(exc), EXIT_USAGE) from None
        except BenchBusy as exc:
            raise RigClickError(str(exc), EXIT_BUSY) from None
        except (RigError, InstrumentError) as exc:
            raise RigClickError(str(exc), EXIT_SAFETY) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def sigterm_as_interrupt() -> None:
    """SIGTERM kills Python without running ``finally`` blocks: make the first SIGTERM or Ctrl-C a
    KeyboardInterrupt so the safe-state path runs; later ones cannot cut it short (rig.interrupts)."""
    from rig import interrupts

    interrupts.install()


def validate_faults(faults: tuple[str, ...], param_hint: str) -> None:
    from instruments.sim.bench import parse_fault

    for fault in faults:
        try:
            parse_fault(fault)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=param_hint) from None


def rig_source(func: Callable[..., Any]) -> Callable[..., Any]:
    """The --rig FILE / --sim pair shared by commands that talk to a bench."""
    func = click.option("--sim", is_flag=True, help="Use a simulated bench started in this process.")(func)
    func = click.option("--rig", "rig_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Rig config (TOML) describing the real bench.")(func)
    return func


def take_bench(config: Any, dut: str) -> Any:
    """This PC's lock on a real bench, and no other PC's claim on its fixture; ``BenchBusy`` (exit 75)
    naming the owner otherwise. Returns the lock (None for a simulated bench of this process)."""
    from instruments.errors import InstrumentError
    from rig.bench_lock import BenchLock, Owner, fixture_claim
    from rig.errors import BenchBusy

    if config.source == "<simulated bench>":
        return None
    lock = BenchLock.acquire(config, Owner.here(dut))
    try:
        claim = fixture_claim(config)
    except InstrumentError:
        claim = None  # an unreachable fixture is reported by the command itself
    if claim is not None:
        lock.release()
        raise BenchBusy(f"bench {config.name} is in use by another session (fixture {claim}); "
                        "nothing was sent to it")
    return lock


def load_rig_config(rig_file: Path | None, sim: bool) -> Any:
    if bool(rig_file) == bool(sim):
        raise click.UsageError("give exactly one of --rig FILE or --sim")
    if rig_file:
        from rig.config import load_config

        return load_config(rig_file)
    return None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="nacs-rig", prog_name="rig")
def main() -> None:
    """Orchestrate a NACS (SAE J3400) inlet test rig: DC supplies and electronic loads over SCPI, the
    inlet fixture over Modbus, pytest plans, every measurement to CSV.

    \b
    Start here (no hardware needed):
      rig check --sim                       every simulated instrument identified
      rig run --sim --dut DEMO-1 --tier 1000  the whole NACS suite, results in results/
      rig report results/<run>             summary, HTML report and plots

    Exit codes: 0 pass, 1 test failure, 2 usage or config error, 3 safety trip or instrument
    fault, 75 bench in use by another session (nothing was sent to it), 130 interrupted.
    """


@main.command()
@rig_source
@one_line_errors
def check(rig_file: Path | None, sim: bool) -> None:
    """Identify every instrument of a rig and show a table; exit 3 if any is missing, the wrong model,
    or lacks an optional feature the rig config requires (`require = [...]`).

    Nothing is switched and no setting written: each instrument is opened, asked who it is and which
    optional features its firmware has (queries only), and closed. Missing optional features are
    listed with what covers for them. A bench owned by another session is left alone (exit 75).

    \b
    Examples:
      rig check --rig rigs/bench1.toml
      rig check --sim
    """
    from rig.check import check_rig
    from rig.display import console, status_style

    config = load_rig_config(rig_file, sim)
    bench = None
    if config is None:
        from instruments.sim.bench import SimulatedBench

        bench = SimulatedBench().start()
        config = bench.config()
    lock = take_bench(config, dut="")
    try:
        rows = check_rig(config)
        chain = safety_chain_problem(config) if not any(row.fatal for row in rows) else None
    finally:
        if lock is not None:
            lock.release()
        if bench is not None:
            bench.stop()
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{config.name} ({config.source})"))
    for column in ("name", "role", "driver", "resource", "identity", "missing features", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(Text(row.name), Text(row.role), Text(row.driver), Text(row.resource), Text(row.identity),
                      Text(", ".join(c.key for c in row.lacking) or "-"),
                      Text(row.status, style=status_style(row.status)))
    out = console()
    out.print(table)
    for row in rows:
        if row.detail:
            out.print(row.detail if row.detail.startswith(row.name) else f"{row.name}: {row.detail}", markup=False)
    for row in rows:
        for capability in row.lacking:
            out.print(f"{row.name}: no {capability.key}: {capability.detail}", markup=False)
    why = {"capability missing": "lacking a required capability"}
    bad = [f"{row.name} ({why.get(row.status, row.status)})" for row in rows
           if row.fatal or row.status == "calibration expired"]
    if chain:
        out.print(f"{config.fixture.name}: safety chain: {chain}", markup=False)
        bad.append(f"{config.fixture.name} ({chain})")
    if bad:
        raise RigClickError(f"not ready: {', '.join(bad)}; `rig run` refuses this bench", EXIT_SAFETY)
    click.echo(f"all {len(rows)} instruments identified")


@main.command()
@click.option("--time-scale", type=click.FloatRange(min=0.001, max=1e5), default=1.0, show_default=True,
              help="Rig seconds per real second (an hour of endurance at 1000 takes 3.6 s).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Loopback unless you mean to share the simulator on a network.")
@click.option("--port-base", type=click.IntRange(0, 65000), default=0, show_default=True,
              help="First TCP port (instruments take consecutive ports, the fixture the last); 0 = free ports.")
@click.option("--write-config", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a rig config pointing at this simulator.")
@click.option("--fault", "faults", multiple=True, metavar="NAME[=VALUE]",
              help="Inject a fault at start (see the list below); repeatable.")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write what each unit receives (connections, lines, fixture commands) to DIR/<name>.log.")
@one_line_errors
def sim(time_scale: float, host: str, port_base: int, write_config: Path | None, faults: tuple[str, ...],
        log_dir: Path | None) -> None:
    """Run the simulated NACS bench until interrupted (Ctrl-C or SIGTERM).

    Every instrument speaks its real protocol on its own TCP port: SCPI for supplies and loads,
    Modbus TCP for the inlet fixture. Point `rig check`, `rig run` or plain pyvisa / pymodbus at it.

    \b
    Example:
      rig sim --write-config /tmp/sim.toml        # terminal 1
      rig check --rig /tmp/sim.toml               # terminal 2

    \b
    Faults: degraded_contact[=x3], slow_contactor[=0.25 s], low_insulation[=40e3 ohm],
    wrong_cp_resistor[=x1.6], open_thermocouple[=DC+], interlock_open, estop, ambient[=40 C],
    latency_ms[=5].
    """
    import threading

    from instruments.sim.bench import SimulatedBench
    from rig.clock import Clock

    validate_faults(faults, "--fault")
    sigterm_as_interrupt()
    bench = SimulatedBench(clock=Clock(time_scale), host=host, port_base=port_base, log_dir=log_dir).start()
    try:
        for fault in faults:
            bench.inject(fault)
        for name, server in bench.servers.items():
            click.echo(f"{name:10} {server.resource}")
        click.echo(f"{'inlet':10} {bench.fixture.resource} (unit 1)")
        if write_config:  # atomically: a reader that sees the file sees all of it
            partial = write_config.with_name(write_config.name + ".partial")
            partial.write_text(bench.config_toml())
            partial.replace(write_config)
            click.echo(f"rig config written to {write_config}")
        click.echo(f"simulated bench running at time scale {time_scale:g}; Ctrl-C to stop", err=True)
        threading.Event().wait()
    finally:
        bench.stop()


def safety_chain_problem(config: Any) -> str | None:
    """Why the fixture's safety chain would stop a run (E-stop pressed, interlock open, a latched trip),
    read once, read-only; None if it is fine."""
    from instruments.errors import InstrumentError
    from rig.safety import chain_reason
    from rig.session import make_instrument

    fixture = make_instrument(config.fixture)
    try:
        fixture.open()
        return chain_reason(fixture.read())  # type: ignore[attr-defined]
    except InstrumentError as exc:
        return f"unreadable ({exc})"
    finally:
        fixture.close()


def default_plans() -> Path:
    import test_plans

    return Path(next(iter(test_plans.__path__))).resolve()


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("plans", nargs=-1, type=click.Path(exists=True, path_type=Path))
@rig_source
@click.option("--dut", required=True, metavar="SERIAL", help="Serial number of the inlet under test.")
@click.option("--tier", type=click.Choice(["500", "1000"]), default="500", show_default=True,
              help="The DUT's DC configuration (V). A 500 V DUT is never driven to 1000 V.")
@click.option("--rated-current", type=click.FloatRange(min=0, min_open=True), metavar="A",
              help="DUT rated continuous current [default: profile dut.rated_current, 900 A].")
@click.option("--profile", "profile_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Limits profile (TOML) [default: the J3400 public-figures profile].")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Folder that receives one sub-folder per run.")
@click.option("--operator", help="Who runs the test (recorded) [default: login name].")
@click.option("-k", "keyword", metavar="EXPR", help="Only tests matching this pytest -k expression.")
@click.option("-m", "markers", metavar="EXPR", help="Only tests matching this pytest -m expression, "
              "e.g. \"not endurance\".")
@click.option("--yes", is_flag=True, help="Answer operator prompts with yes (recorded as such); for CI.")
@click.option("--allow-expired-calibration", is_flag=True, help="Run despite an expired calibration (recorded).")
@click.option("--rearm-after-trip", is_flag=True, help="After an unexpected safety trip, re-arm and go on "
              "without asking the operator (recorded). Default: ask at the terminal; stop without one.")
@click.option("--sim-fault", "sim_faults", multiple=True, metavar="NAME[=VALUE]",
              help="With --sim: inject a fault (see `rig sim --help`); repeatable.")
@click.option("--time-scale", type=click.FloatRange(min=0.001, max=1e5), metavar="X",
              help="With --sim: rig seconds per real second [default: 1000].")
@click.option("--plain", is_flag=True, help="Line-by-line output even on a terminal.")
@one_line_errors
def run(plans: tuple[Path, ...], rig_file: Path | None, sim: bool, dut: str, tier: str, rated_current: float | None,
        profile_file: Path | None, results: Path, operator: str | None, keyword: str | None, markers: str | None,
        yes: bool, allow_expired_calibration: bool, rearm_after_trip: bool, sim_faults: tuple[str, ...],
        time_scale: float | None, plain: bool) -> None:
    """Run NACS test plans (pytest) on a rig, with progress, a PASS/FAIL summary and a results folder.

    PLANS are plan files or folders [default: every plan in test_plans/]. Results go to
    RESULTS/<time>-<DUT>/: samples.csv, measurements.csv, run.json, junit.xml, run.log.

    \b
    Examples:
      rig run --sim --dut DEMO-1 --tier 1000             whole suite, simulated bench
      rig run --rig rigs/bench1.toml --dut SN123 -m "not endurance"
      rig run test_plans/test_control_pilot.py --rig rigs/bench1.toml --dut SN123
      rig run --sim --dut DEMO-1 --sim-fault slow_contactor -k shutdown

    Exit codes: 0 all passed, 1 a test failed, 2 usage/config error, nothing selected or no
    terminal for a prompt, 3 safety trip, instrument fault, bench not ready or not confirmed safe,
    results not writable, 130 interrupted (bench confirmed safe). run.json `exit_status` holds it.
    """
    import sys as _sys

    plugins: list[Any] = []
    if rig_file and not sim:  # own the bench before anything else: a second technician is told at once
        from rig.bench_lock import BenchLock, Owner
        from rig.config import load_config

        plugins.append(BenchLock.acquire(load_config(rig_file), Owner.here(dut)))

    import pytest

    from rig.display import console, real_stdout
    from rig.progress import Progress
    from rig.recorder import run_id

    if bool(rig_file) == bool(sim):
        raise click.UsageError("give exactly one of --rig FILE or --sim")
    if not sim and (sim_faults or time_scale):
        raise click.UsageError("--sim-fault and --time-scale apply to --sim only")
    if not dut.strip() or not dut.isprintable():
        raise click.BadParameter(f"expected the DUT's serial number, got {dut!r}", param_hint="--dut")
    validate_faults(sim_faults, "--sim-fault")
    args = [str(p) for p in plans] or [str(default_plans())]
    args += ["-p", "no:terminal", "-p", "no:cacheprovider", "--dut", dut, "--tier", tier,
             "--results", str(results), "--run-id", run_id(dut)]
    args += ["--sim"] if sim else ["--rig", str(rig_file)]
    for flag, value in (("--rated-current", rated_current), ("--profile", profile_file),
                        ("--operator", operator), ("-k", keyword), ("-m", markers), ("--time-scale", time_scale)):
        if value is not None:
            args += [flag, str(value)]
    args += [a for fault in sim_faults for a in ("--sim-fault", fault)]
    args += ["--yes"] if yes else []
    args += ["--allow-expired-calibration"] if allow_expired_calibration else []
    args += ["--rearm-after-trip"] if rearm_after_trip else []
    out = console(file=real_stdout())
    progress = Progress(out, live=out.is_terminal and not plain)
    from rig import interrupts

    interrupts.install(message_fd=os.dup(2))  # "please wait" must reach the terminal, not pytest's capture
    try:
        code = pytest.main(args, plugins=[progress, *plugins])
    finally:
        out.file.flush()
    run_state = progress.run
    if run_state is not None and run_state.busy:
        raise RigClickError(run_state.busy, EXIT_BUSY)
    if run_state is None or run_state.exit_code is None:  # pytest stopped before the session (usage)
        _sys.exit({pytest.ExitCode.OK: 0, pytest.ExitCode.INTERRUPTED: EXIT_INTERRUPTED}.get(code, EXIT_USAGE))
    exit_code = run_state.exit_code
    report = run_state.final_safe_report
    if report is not None and not report.ok:
        failed = "; ".join(line.removeprefix("FAIL ") for line in report.lines() if line.startswith("FAIL"))
        click.echo(f"bench NOT confirmed safe: {failed}", err=True)
    if run_state.stopped:
        click.echo(f"stopped: {run_state.stopped}", err=True)
    elif exit_code == EXIT_INTERRUPTED:
        click.echo("interrupted: the bench was left in the safe state" if report is not None and report.ok
                   else "interrupted (the bench was not opened)", err=True)
    elif code == pytest.ExitCode.NO_TESTS_COLLECTED:
        click.echo("error: no test matched the selection (plans, -k, -m); nothing was run", err=True)
    elif exit_code == EXIT_SAFETY and run_state.faults:
        more = f" (and {len(run_state.faults) - 1} more)" if len(run_state.faults) > 1 else ""
        click.echo(f"tripped: {run_state.faults[0]}{more}", err=True)
    _sys.exit(exit_code)


@main.command()
@rig_source
@one_line_errors
def safe(rig_file: Path | None, sim: bool) -> None:
    """Put the bench in the safe state now and report each step.

    Load inputs off, supply outputs off, wait for the bus below the safe voltage, contactors open.
    Every instrument that answers is made safe even if others are unreachable; those are named and
    the command exits 3. It works whoever owns the bench (that is its purpose): it names the session
    it interrupted, and that run records the trip and stops with exit 3.

    \b
    Example:
      rig safe --rig rigs/bench1.toml
    """
    from rich.markup import escape

    from rig.display import console, status_style
    from rig.session import Rig

    config = load_rig_config(rig_file, sim)
    sigterm_as_interrupt()  # a Ctrl-C cannot cut the safe state short
    bench = None
    if config is None:
        from instruments.sim.bench import SimulatedBench

        bench = SimulatedBench().start()
        config = bench.config()
    from instruments.errors import InstrumentError
    from rig.bench_lock import current_owner

    local_owner = current_owner(config) if config.source != "<simulated bench>" else None
    rig = Rig(config)
    interrupted = None
    try:
        failures = rig.open_best_effort()
        fixture = getattr(rig, "fixture", None)
        if fixture is not None:
            try:
                claim_tag = fixture.read().claim_tag
                fixture.request_safe()  # the owner's run learns who stopped it, on any PC
            except InstrumentError:
                claim_tag = None
            if local_owner is not None:
                interrupted = local_owner.describe()
            elif claim_tag is not None:
                interrupted = f"the session holding the fixture's claim (tag {claim_tag:04x}), on another PC"
        report = rig.safe_state("rig safe (operator)")
    finally:
        rig.close_instruments(release_remote=interrupted is None)
        if bench is not None:
            bench.stop()
    out = console()
    if interrupted:
        out.print(f"interrupted: {interrupted}", highlight=False, markup=False)
    for failure in failures:
        out.print(f"[{status_style('FAIL')}]FAIL[/] unreachable: {escape(failure)}", highlight=False)
    for step in report.steps:
        out.print(f"[{status_style('ok' if step.ok else 'FAIL')}]{'ok  ' if step.ok else 'FAIL'}[/] "
                  f"{escape(step.name)}: {escape(step.detail)}", highlight=False)
    if failures or not report.ok:
        raise RigClickError("bench NOT confirmed safe: see the FAIL lines", EXIT_SAFETY)
    click.echo("bench safe")


@main.command()
@rig_source
@click.option("--rate", type=click.FloatRange(min=0.1, max=50), default=2.0, show_default=True,
              help="Readings per second.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many readings [default: run until Ctrl-C].")
@one_line_errors
def monitor(rig_file: Path | None, sim: bool, rate: float, count: int | None) -> None:
    """Live table of every reading of the rig. Read-only: it never changes an output or a setting.

    Instruments are only identified and read (no remote lock, no setpoint). Ctrl-C exits.

    \b
    Example:
      rig monitor --rig rigs/bench1.toml --rate 5
    """
    import time as _time

    from rig.display import console
    from rig.monitor import open_read_only, reading_rows

    config = load_rig_config(rig_file, sim)
    bench = None
    if config is None:
        from instruments.sim.bench import SimulatedBench

        bench = SimulatedBench().start()
        config = bench.config()
    out = console()
    sampler, instruments = open_read_only(config)
    try:
        from rich.live import Live
        from rich.table import Table

        def table() -> Table:
            sample = sampler.sample_once()
            t = Table(title=f"{config.name}  {_time.strftime('%H:%M:%S')}")
            for column in ("instrument", "quantity", "value"):
                t.add_column(column)
            for name, quantity, value in reading_rows(sample):
                t.add_row(name, quantity, value)
            return t

        taken = 0
        if out.is_terminal:
            with Live(table(), console=out, refresh_per_second=rate) as live:
                taken = 1
                while count is None or taken < count:
                    _time.sleep(1 / rate)
                    live.update(table())
                    taken += 1
        else:
            while count is None or taken < count:
                sample = sampler.sample_once()
                click.echo(f"{_time.strftime('%H:%M:%S')}  "
                           + "  ".join(f"{n}.{q}={v}" for n, q, v in reading_rows(sample)))
                taken += 1
                if count is None or taken < count:
                    _time.sleep(1 / rate)
    except KeyboardInterrupt:
        pass
    finally:
        sampler.stop()
        for inst in instruments.values():
            inst.close()
        if bench is not None:
            bench.stop()


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-html", is_flag=True, help="Only the terminal summary; write no files.")
@one_line_errors
def report(run_dir: Path, no_html: bool) -> None:
    """Summarise a run (a verdict per test) and write a self-contained HTML report with PNG plots into
    its folder: the document a lab files, printable on A4 (a browser's Print, or chromium --print-to-pdf).

    Works on an unfinished (interrupted or killed) run too: it says so and shows what was recorded.
    Exit status is 1 if any measurement failed or the run did not pass, else 0.

    \b
    Example:
      rig report results/20261128-143000-SN123
    """
    from rig.display import console
    from rig.report import load_run, print_summary, write_report

    run_data = load_run(run_dir)
    out = console()
    print_summary(run_data, out)
    if not no_html:
        files = write_report(run_data, run_dir)
        out.print(f"report: {files.html}", highlight=False)
        for image in files.images:
            out.print(f"plot:   {image}", highlight=False)
    if run_data.count("FAIL") or run_data.outcome not in ("passed",):
        sys.exit(1)


# --- the results database: rig sync, runs, history, trend, benches ------------------------------------


def database_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Where the results database is: --db URL, else $RIG_DATABASE_URL, else the rig config's
    [database] url_env, else RESULTS/rig.sqlite."""
    func = click.option("--db", "db_url", metavar="URL",
                        help="Database URL, e.g. postgresql://rig@labdb/results [default: $RIG_DATABASE_URL, "
                        "the rig config's [database] url_env, else RESULTS/rig.sqlite].")(func)
    func = click.option("--rig", "rig_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Rig config whose [database] url_env names the lab database.")(func)
    func = click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
                        show_default=True, help="Results folder (holds the embedded database rig.sqlite).")(func)
    return func


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (for Excel, pandas).")(func)
    func = click.option("--json", "as_json", is_flag=True, help="JSON on stdout (for scripts, pandas).")(func)
    return func


def open_results_db(results: Path, rig_file: Path | None, db_url: str | None, create: bool = False) -> Any:
    """The results database, upgraded in place; a one-line error (exit 2) when there is none to open.
    An embedded (SQLite) database is only created by ``create`` (rig sync), not by a question."""
    from rig.config import load_config
    from rig.db import locate

    where = locate(results, load_config(rig_file) if rig_file else None, db_url)
    if where.url is None:
        raise RigClickError(f"no results database: {where.origin}", EXIT_USAGE)
    if not create and where.url.startswith("sqlite:///") and not Path(where.url[len("sqlite:///"):]).exists():
        raise RigClickError(f"no results database at {where.url[len('sqlite:///'):]} (rig run creates it, rig sync "
                            "imports runs recorded before it; --results DIR or --db URL names another)", EXIT_USAGE)
    try:
        from rig.db.store import Database, display_url

        return Database(where.url)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RigClickError(f"results database {display_url(where.url)}: {first}", EXIT_USAGE) from None


def _when(value: str | None, end_of_day: bool = False) -> Any:
    """YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] in local time (a bare date as --until includes that day)."""
    import datetime as dt

    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date such as 2026-03-01 or 2026-03-01T14:00, got {value!r}") from None
    if end_of_day and len(value) <= 10:
        when += dt.timedelta(days=1)
    return when if when.tzinfo else when.astimezone()


def emit(rows: list[dict[str, Any]], as_json: bool, as_csv: bool, table: Callable[[], Any]) -> None:
    """Rows as JSON, CSV or a rich table (built by ``table``)."""
    import datetime as dt
    import json

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")

    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value

    if as_json:
        click.echo(json.dumps([{k: plain(v) for k, v in r.items()} for r in rows], indent=1, default=str))
    elif as_csv:
        import csv

        if rows:
            keys = list(rows[0])
            # Only the columns that hold times or JSON need converting: thousands of rows stay quick.
            special = {k for k in keys if any(isinstance(r[k], dt.datetime | dt.date | dict | list) for r in rows[:50])}
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(keys)
            for key in special:  # column by column: thousands of rows stay quick (the rows are ours to change)
                for r in rows:
                    value = r[key]
                    if value is not None:
                        r[key] = json.dumps(value) if isinstance(value, dict | list) else plain(value)
            writer.writerows([list(r.values()) for r in rows])
    else:
        from rig.display import console

        console().print(table())


def _local(when: Any) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M") if when is not None else ""


def _window(low: float | None, high: float | None, unit: str) -> str:
    from rig.display import engineering

    if low is None and high is None:
        return ""
    if high is None:
        return f">= {engineering(low, unit)}" if low is not None else ""
    if low is None:
        return f"<= {engineering(high, unit)}"
    return f"{engineering(low, unit)} .. {engineering(high, unit)}"


@main.command()
@click.argument("results_dir", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--db", "db_url", metavar="URL", help="Database URL [default: $RIG_DATABASE_URL, the rig "
              "config's [database] url_env, else RESULTS_DIR/rig.sqlite].")
@click.option("--rig", "rig_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Rig config whose [database] url_env names the lab database.")
@one_line_errors
def sync(results_dir: Path | None, db_url: str | None, rig_file: Path | None) -> None:
    """Upload to the results database every run folder it does not hold whole.

    RESULTS_DIR is a folder of runs or one run folder [default: results]. A run is identified by its
    id and the hash of its files: one already stored is left alone (syncing twice changes nothing), one
    that is missing or incomplete (the database was unreachable during the run) is written whole.
    Folders recorded before the database existed import the same way.

    \b
    Examples:
      rig sync                                   results/ into results/rig.sqlite (or the lab database)
      RIG_DATABASE_URL=postgresql://rig@labdb/results rig sync /mnt/old-runs
    """
    from rig.db.sync import run_folders
    from rig.db.sync import sync as sync_runs

    results_dir = results_dir or Path("results")
    folders = run_folders(results_dir)
    home = results_dir.parent if folders == [results_dir] else results_dir
    db = open_results_db(home, rig_file, db_url, create=True)
    try:
        result = sync_runs(db, folders, progress=lambda what, run_id: click.echo(f"{what:8} {run_id}"))
    finally:
        db.close()
    for folder, reason in result.skipped:
        click.echo(f"skipped  {folder}: {reason}")
    click.echo(f"{db.name}: {len(result.added)} added, {len(result.updated)} completed, "
               f"{len(result.unchanged)} already stored ({result.samples} samples written)")


@main.command()
@database_options
@click.option("--dut", metavar="SERIAL", help="Only this DUT serial (* matches anything: 'LOT7-*').")
@click.option("--rig-name", "rig_name", metavar="NAME", help="Only runs on this rig (its [rig] name; * allowed).")
@click.option("--since", metavar="DATE", help="Runs started on or after, e.g. 2026-03-01.")
@click.option("--until", metavar="DATE", help="Runs started before the end of this day (or before this time).")
@click.option("--outcome", type=click.Choice(["passed", "failed", "tripped", "interrupted", "error", "running"]),
              help="Only runs with this outcome.")
@click.option("--operator", metavar="NAME", help="Only runs by this operator (* allowed).")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="At most this many runs, newest first (0: all).")
@output_options
@one_line_errors
def runs(results: Path, rig_file: Path | None, db_url: str | None, dut: str | None, rig_name: str | None,
         since: str | None, until: str | None, outcome: str | None, operator: str | None, limit: int,
         as_json: bool, as_csv: bool) -> None:
    """List runs from the results database, newest first.

    \b
    Examples:
      rig runs --dut 'LOT7-*' --outcome failed
      rig runs --since 2026-03-01 --rig-name "NACS bench 1" --csv > runs.csv
    """
    from rich.table import Table

    from rig.db.queries import list_runs

    db = open_results_db(results, rig_file, db_url)
    try:
        rows = list_runs(db, dut=dut, rig=rig_name, since=_when(since), until=_when(until, end_of_day=True),
                         outcome=outcome, operator=operator, limit=limit or None)
    finally:
        db.close()

    def table() -> Table:
        t = Table(title=f"{len(rows)} run(s) in {db.name}")
        for column in ("started", "run", "DUT", "tier", "rig", "operator", "outcome", "tests", "measurements",
                       "notes"):
            t.add_column(column)
        for r in rows:
            counts = r["counts"] or {}
            tests = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            notes = [n for n, on in (("simulated", r["simulated"]), ("expired calibration", r["calibration_expired"]),
                                     ("not finished (killed?)", not r["finished"]),
                                     ("partial in database: rig sync", not r["complete"])) if on]
            style = "green" if r["outcome"] == "passed" else "bold red"
            t.add_row(_local(r["started"]), r["run_id"], r["dut"] or "", str(r["tier_v"] or ""), r["rig"] or "",
                      r["operator"] or "", f"[{style}]{r['outcome']}[/]", tests,
                      f"{r['measurements']} ({r['failed_measurements']} FAIL)" if r["failed_measurements"]
                      else str(r["measurements"]), "; ".join(notes))
        return t

    emit(rows, as_json, as_csv, table)


@main.command()
@click.argument("dut")
@database_options
@output_options
@one_line_errors
def history(dut: str, results: Path, rig_file: Path | None, db_url: str | None, as_json: bool, as_csv: bool) -> None:
    """Every run and every measurement of one DUT serial, oldest first.

    \b
    Example:
      rig history INLET-42
      rig history INLET-42 --csv > inlet-42.csv
    """
    from rig.db.queries import history as dut_history
    from rig.display import engineering

    db = open_results_db(results, rig_file, db_url)
    try:
        rows = dut_history(db, dut)
    finally:
        db.close()
    if not rows and not (as_json or as_csv):
        click.echo(f"no run of DUT {dut} in {db.name}")
        return

    if as_json or as_csv:
        emit(rows, as_json, as_csv, lambda: None)
        return
    # A DUT's history is hundreds of lines: plain aligned columns print at once where a rich table takes
    # a second to lay out.
    lines, previous = [], None
    for r in rows:
        first = r["run_id"] != previous
        previous = r["run_id"]
        lines.append([r["run_id"] if first else "", _local(r["started"]) if first else "",
                      (r["outcome"] or "") if first else "", (r["test"] or "").split("::")[-1], r["name"] or "",
                      engineering(r["value"], r["unit"] or "") if r["value"] is not None else "",
                      _window(r["low"], r["high"], r["unit"] or ""), r["verdict"] or ""])
    click.echo(f"DUT {dut}: {len({r['run_id'] for r in rows})} run(s), {sum(r['name'] is not None for r in rows)} "
               f"measurement(s) in {db.name}")
    aligned_columns(("run", "started", "outcome", "test", "measurement", "value", "limits", "verdict"), lines)


def aligned_columns(headers: tuple[str, ...], lines: list[list[str]]) -> None:
    """Plain left-aligned columns; verdicts and outcomes in colour on a terminal."""
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(headers)]
    colour = sys.stdout.isatty()

    def cell(text: str, width: int) -> str:
        padded = text.ljust(width)
        if colour and text in ("PASS", "passed"):
            return click.style(padded, fg="green")
        if colour and text in ("FAIL", "failed", "tripped", "error", "interrupted"):
            return click.style(padded, fg="red", bold=True)
        return padded

    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(cell(c, w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    click.echo("\n".join(out))


@main.command()
@click.argument("limit_key")
@database_options
@click.option("--dut", metavar="SERIAL", help="Only this DUT serial (* allowed).")
@click.option("--rig-name", "rig_name", metavar="NAME", help="Only runs on this rig (* allowed).")
@click.option("--since", metavar="DATE", help="Runs started on or after this day.")
@click.option("--until", metavar="DATE", help="Runs started up to the end of this day.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="Write the plot (with limits) here.")
@click.option("--all", "show_all", is_flag=True, help="Table of every point [default: the last 20].")
@output_options
@one_line_errors
def trend(limit_key: str, results: Path, rig_file: Path | None, db_url: str | None, dut: str | None,
          rig_name: str | None, since: str | None, until: str | None, png: Path | None, show_all: bool,
          as_json: bool, as_csv: bool) -> None:
    """One measurement across runs, with its limits: every value recorded against profile limit LIMIT_KEY.

    \b
    Examples:
      rig trend endurance.temperature_rise --since 2026-03-01 --png rise.png
      rig trend contact.resistance --dut 'LOT7-*' --csv > lot7.csv
    """
    from rich.table import Table

    from rig.db.queries import limit_keys
    from rig.db.queries import trend as limit_trend
    from rig.display import engineering

    db = open_results_db(results, rig_file, db_url)
    try:
        rows = limit_trend(db, limit_key, dut=dut, rig=rig_name, since=_when(since),
                           until=_when(until, end_of_day=True))
        known = limit_keys(db) if not rows else []
    finally:
        db.close()
    if not rows and not (as_json or as_csv):
        hint = f" (limit keys stored: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})" if known else ""
        raise RigClickError(f"no measurement against limit {limit_key} in {db.name}{hint}", EXIT_USAGE)
    if png is not None and rows:
        trend_plot(rows, limit_key, png)

    def table() -> Table:
        values = [r["value"] for r in rows if r["value"] is not None]
        unit = rows[-1]["unit"] or ""
        fails = sum(r["verdict"] == "FAIL" for r in rows)
        shown = rows if show_all else rows[-20:]
        title = (f"{limit_key}: {len(rows)} value(s) in {len({r['run_id'] for r in rows})} run(s), "
                 f"{engineering(min(values), unit)} .. {engineering(max(values), unit)}, "
                 f"mean {engineering(sum(values) / len(values), unit)}, {fails} FAIL"
                 + ("" if show_all or len(rows) <= 20 else f"; last {len(shown)} shown (--all for every one)"))
        t = Table(title=title)
        for column in ("started", "run", "DUT", "rig", "measurement", "value", "limits", "verdict"):
            t.add_column(column)
        for r in shown:
            verdict = r["verdict"] or ""
            t.add_row(_local(r["started"]), r["run_id"], r["dut"] or "", r["rig"] or "", r["name"],
                      engineering(r["value"], r["unit"] or "") if r["value"] is not None else "",
                      _window(r["low"], r["high"], r["unit"] or ""),
                      f"[{'green' if verdict == 'PASS' else 'bold red'}]{verdict}[/]")
        return t

    emit(rows, as_json, as_csv, table)
    if png is not None and rows and not (as_json or as_csv):
        click.echo(f"plot: {png}")


def trend_plot(rows: list[dict[str, Any]], limit_key: str, path: Path) -> None:
    """Values against run start time, one series per measurement name, the limits as step lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = rows[-1]["unit"] or ""
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    names = list(dict.fromkeys(r["name"] for r in rows))
    for name in names:
        points = [r for r in rows if r["name"] == name and r["value"] is not None]
        ax.plot([r["started"] for r in points], [r["value"] for r in points], "o-", ms=3, lw=0.8, label=name)
        failed = [r for r in points if r["verdict"] == "FAIL"]
        if failed:
            ax.plot([r["started"] for r in failed], [r["value"] for r in failed], "x", color="red", ms=7)
    for bound, label in (("low", "low limit"), ("high", "high limit")):
        if any(r[bound] is not None for r in rows):
            ax.step([r["started"] for r in rows], [r[bound] for r in rows], where="post", color="firebrick",
                    ls="--", lw=1.2, label=label)
    ax.set_title(f"{limit_key} across {len({r['run_id'] for r in rows})} run(s)")
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


@main.command()
@database_options
@click.option("--stale-after", type=click.FloatRange(min=1), default=30.0, show_default=True, metavar="S",
              help="A bench whose session has not updated its row for this many seconds is shown STALE.")
@output_options
@one_line_errors
def benches(results: Path, rig_file: Path | None, db_url: str | None, stale_after: float, as_json: bool,
            as_csv: bool) -> None:
    """Every bench of the lab and who holds it: owner, DUT, test, state, hottest contact, since when.

    A running session refreshes its bench's row every 2 s; a row not refreshed for --stale-after
    seconds belongs to a session that died (or lost the database) and is shown STALE.

    \b
    Example:
      RIG_DATABASE_URL=postgresql://rig@labdb/results rig benches
    """
    from rich.table import Table

    from rig.db.queries import list_benches

    db = open_results_db(results, rig_file, db_url)
    try:
        rows = list_benches(db, stale_after)
    finally:
        db.close()

    def age(seconds: float | None) -> str:
        if seconds is None:
            return "never"
        for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
            if seconds >= size:
                return f"{seconds / size:.0f} {unit} ago"
        return f"{seconds:.0f} s ago"

    def table() -> Table:
        t = Table(title=f"{len(rows)} bench(es) in {db.name}")
        for column in ("rig", "state", "owner", "DUT", "test", "hottest", "since", "last update"):
            t.add_column(column)
        for r in rows:
            state = "STALE (session gone?)" if r["stale"] else r["state"]
            if r["state"] == "free" and r["outcome"]:
                state = f"free (last run {r['outcome']})"
            style = "bold red" if r["stale"] or r["state"] == "tripped" else ("green" if r["state"] == "free"
                                                                             else "yellow")
            hottest = f"{r['hottest_c']:.1f} °C {r['hottest_contact']}" if r["hottest_c"] is not None else ""
            t.add_row(f"{r['rig_name']} [{r['bench_key']}]", f"[{style}]{state}[/]", f"{r['owner']}@{r['host']}",
                      r["dut_serial"] or "", (r["test"] or "").split("::")[-1], hottest, _local(r["since"]),
                      age(r["age_s"]))
        return t

    emit(rows, as_json, as_csv, table)


# --- the lab dashboard ------------------------------------------------------------------------------------

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@main.command()
@database_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but this PC (e.g. 0.0.0.0, the lab network) needs --token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8400, show_default=True)
@click.option("--token", envvar="RIG_SERVE_TOKEN", metavar="TOKEN",
              help="Access token every request must carry [env: RIG_SERVE_TOKEN]; required off this PC.")
@click.option("--stale-after", type=click.FloatRange(min=1), default=30.0, show_default=True, metavar="S",
              help="A bench whose session has not updated its row for this many seconds is shown stale.")
@one_line_errors
def serve(results: Path, rig_file: Path | None, db_url: str | None, host: str, port: int, token: str | None,
          stale_after: float) -> None:
    """The lab dashboard in a browser: every bench live, every run, every DUT, trends (read-only).

    Reads the results database (the same one `rig runs` reads) and never changes a bench. It listens on
    this PC only unless --host says otherwise; then it requires an access token: open
    http://HOST:PORT/?token=TOKEN once (a cookie keeps it), or send 'Authorization: Bearer TOKEN'.

    \b
    Examples:
      rig serve                                       http://127.0.0.1:8400 on this PC
      RIG_SERVE_TOKEN=$(openssl rand -hex 16) rig serve --host 0.0.0.0 --db postgresql://rig@labdb/results
    """
    if host not in LOOPBACK and not token:
        raise click.UsageError(f"--host {host} serves the dashboard beyond this PC: give --token TOKEN (or set "
                               "RIG_SERVE_TOKEN) so that only the lab's people can read it")
    if token is not None and len(token) < 8:
        raise click.UsageError("--token: at least 8 characters (e.g. openssl rand -hex 16)")
    from rig.config import load_config
    from rig.db import locate
    from rig.db.store import display_url

    where = locate(results, load_config(rig_file) if rig_file else None, db_url)
    if where.url is None:
        raise RigClickError(f"no results database: {where.origin}", EXIT_USAGE)
    if where.url.startswith("sqlite:///") and not Path(where.url[len("sqlite:///"):]).exists():
        raise RigClickError(f"no results database at {where.url[len('sqlite:///'):]} (rig run creates it; "
                            "--results DIR or --db URL names another)", EXIT_USAGE)
    import threading

    import uvicorn

    from rig.web.app import DashboardError, create_app

    stopping = threading.Event()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping.set()  # the Lab pages' live streams end, so Ctrl-C stops the server at once
            super().handle_exit(sig, frame)

    try:  # opened as it is: the dashboard never migrates or writes
        app = create_app(where.url, token=token, stale_after_s=stale_after, stopping=stopping)
    except DashboardError as exc:
        raise RigClickError(str(exc), EXIT_USAGE) from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"lab dashboard on http://{shown}:{port}/ (read-only; {display_url(where.url)}); Ctrl-C stops it")
    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)).run()
