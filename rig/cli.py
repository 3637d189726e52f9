"""The ``rig`` command line for lab technicians.

Heavy imports (pyvisa, pymodbus, rich, matplotlib, pytest) happen inside the commands, so that
``rig --help`` starts fast on a rig PC.

Exit codes: 0 pass, 1 test failure, 2 usage or config error, 3 safety trip or instrument fault,
130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from rig.errors import EXIT_INTERRUPTED, EXIT_SAFETY, EXIT_USAGE


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
        from rig.errors import DutRefused, RigError

        try:
            return func(*args, **kwargs)
        except (ConfigError, DutRefused) as exc:
            raise RigClickError(str(exc), EXIT_USAGE) from None
        except (RigError, InstrumentError) as exc:
            raise RigClickError(str(exc), EXIT_SAFETY) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def sigterm_as_interrupt() -> None:
    """SIGTERM kills Python without running ``finally`` blocks: make it a KeyboardInterrupt, once, so
    the safe-state path runs; a second SIGTERM during that teardown is ignored."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def rig_source(func: Callable[..., Any]) -> Callable[..., Any]:
    """The --rig FILE / --sim pair shared by commands that talk to a bench."""
    func = click.option("--sim", is_flag=True, help="Use a simulated bench started in this process.")(func)
    func = click.option("--rig", "rig_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Rig config (TOML) describing the real bench.")(func)
    return func


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
    fault, 130 interrupted.
    """


@main.command()
@rig_source
@one_line_errors
def check(rig_file: Path | None, sim: bool) -> None:
    """Identify every instrument of a rig and show a table; exit 3 if any is missing or the wrong model.

    Nothing is switched: each instrument is opened, asked who it is, and closed.

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
    try:
        rows = check_rig(config)
    finally:
        if bench is not None:
            bench.stop()
    from rich.table import Table

    table = Table(title=f"{config.name} ({config.source})")
    for column in ("name", "role", "driver", "resource", "identity", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.name, row.role, row.driver, row.resource, row.identity,
                      f"[{status_style(row.status)}]{row.status}[/]")
    out = console()
    out.print(table)
    for row in rows:
        if row.detail:
            out.print(row.detail if row.detail.startswith(row.name) else f"{row.name}: {row.detail}")
    bad = [row.name for row in rows if row.fatal]
    if bad:
        raise RigClickError(f"not ready: {', '.join(bad)} missing or not the expected model", EXIT_SAFETY)
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
@one_line_errors
def sim(time_scale: float, host: str, port_base: int, write_config: Path | None, faults: tuple[str, ...]) -> None:
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

    from instruments.sim.bench import SimulatedBench, parse_fault
    from rig.clock import Clock

    for fault in faults:
        try:
            parse_fault(fault)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--fault") from None
    sigterm_as_interrupt()
    bench = SimulatedBench(clock=Clock(time_scale), host=host, port_base=port_base).start()
    try:
        for fault in faults:
            bench.inject(fault)
        for name, server in bench.servers.items():
            click.echo(f"{name:10} {server.resource}")
        click.echo(f"{'inlet':10} {bench.fixture.resource} (unit 1)")
        if write_config:
            write_config.write_text(bench.config_toml())
            click.echo(f"rig config written to {write_config}")
        click.echo(f"simulated bench running at time scale {time_scale:g}; Ctrl-C to stop", err=True)
        threading.Event().wait()
    finally:
        bench.stop()
