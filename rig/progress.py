"""What `rig run` shows while pytest runs the plans: a live display on a terminal, plain lines otherwise.

On a terminal: the current test, tests done / total with pass/fail counts, the hold in progress
(elapsed / remaining on the rig clock) and live readings — bus voltage, inlet current and the hottest
contact against its trip limit. Off a terminal (CI logs, pipes): one line per test, and a line per
tenth of a long hold. At the end, in both: a summary table (test, verdict, key figures) and the
results folder.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from rig.display import engineering
from rig.plugin import CHECKS_KEY, RUN_KEY

VERDICT = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "skipped", "running": "not run"}


@dataclass
class TestLine:
    nodeid: str
    outcome: str = "running"
    seconds: float = 0.0
    message: str = ""
    figures: list[str] = field(default_factory=list)


def short_name(nodeid: str) -> str:
    return nodeid.split("/")[-1].replace(".py::", "::")


def crash_message(report: pytest.TestReport) -> str:
    """The one line that says why a test did not pass (no traceback)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = str(crash.message)
    elif isinstance(report.longrepr, tuple):  # skip: (file, line, reason)
        text = str(report.longrepr[2])
    else:
        text = str(report.longrepr or "")
    text = text.replace("Skipped: ", "").replace("Failed: ", "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines[:3])


class Progress:
    """A pytest plugin object: pass it to ``pytest.main(args, plugins=[Progress(console, live=...)])``."""

    def __init__(self, console: Any, live: bool) -> None:
        self.console = console
        self.live = live
        self.total = 0
        self.lines: dict[str, TestLine] = {}
        self.current: TestLine | None = None
        self.run: Any = None
        self.collect_errors: list[str] = []
        self._live: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_hold_decile = -1
        self._items: dict[str, pytest.Item] = {}

    # -- pytest hooks ----------------------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {crash_message(report) or report.longreprtext[-300:]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        self.run = session.config.stash.get(RUN_KEY, None)
        if self.live:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self._live.start()
        self._thread = threading.Thread(target=self._refresh, name="progress", daemon=True)
        self._thread.start()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.current = self.lines.setdefault(nodeid, TestLine(nodeid))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        line = self.lines.setdefault(report.nodeid, TestLine(report.nodeid))
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed") or (
                report.when == "teardown" and report.outcome == "failed"):
            line.outcome = "error" if report.when != "call" and report.outcome == "failed" else report.outcome
            line.seconds += report.duration
            if report.outcome != "passed":
                line.message = crash_message(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        line = self.lines[nodeid]
        item_checks = self._checks_for(nodeid)
        line.figures = [f"{m.name} = {engineering(m.value, m.unit)}" + ("" if m.passed else " FAIL")
                        for m in item_checks][:4]
        if not self.live:
            done = sum(1 for t in self.lines.values() if t.outcome != "running")
            self.console.print(f"[{done:>3}/{self.total}] {VERDICT.get(line.outcome, line.outcome):7} "
                               f"{short_name(nodeid)}" + (f"  {line.message}" if line.message else ""),
                               highlight=False, markup=False)
        self.current = None

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._items[item.nodeid] = item

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._live is not None:
            self._live.stop()
        self.print_summary()

    # -- live display ----------------------------------------------------------------------------

    def pause_display(self) -> None:
        """Stop redrawing while the operator answers a prompt."""
        if self._live is not None:
            self._live.stop()

    def resume_display(self) -> None:
        if self._live is not None:
            self._live.start()

    def _checks_for(self, nodeid: str) -> list[Any]:
        item = self._items.get(nodeid)
        return list(item.stash.get(CHECKS_KEY, [])) if item is not None else []

    def _refresh(self) -> None:
        while not self._stop.wait(0.25):
            try:
                if self._live is not None:
                    self._live.update(self._render())
                else:
                    self._plain_hold_line()
            except Exception:  # a display glitch must never disturb a run
                pass

    def _plain_hold_line(self) -> None:
        """Off a terminal: one line per tenth of a long hold, with the key readings."""
        rig = getattr(self.run, "rig", None)
        activity = rig.activity if rig is not None else None
        if activity is None or activity.duration is None:
            self._last_hold_decile = -1
            return
        now = rig.clock.now()
        decile = min(10, int(activity.elapsed(now) / activity.duration * 10))
        if decile == self._last_hold_decile:
            return
        self._last_hold_decile = decile
        sample = rig.sampler.latest
        fixture = sample.fixture if sample is not None else None
        readings = "" if fixture is None else (
            f"  {fixture.inlet_voltage:.1f} V {fixture.inlet_current:.1f} A hottest contact "
            f"{fixture.hottest_contact:.1f} °C (trip {rig.limits.max_temperature.value:g} °C)")
        self.console.print(f"        {activity.label}: {fmt_duration(activity.elapsed(now))} of at most "
                           f"{fmt_duration(activity.duration)}{readings}", highlight=False, markup=False)

    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        done = [t for t in self.lines.values() if t.outcome != "running"]
        passed = sum(t.outcome == "passed" for t in done)
        failed = sum(t.outcome in ("failed", "error") for t in done)
        skipped = sum(t.outcome == "skipped" for t in done)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("rig run", Text.assemble(
            f"{len(done)}/{self.total} tests  ", (f"{passed} passed ", "green"),
            (f"{failed} failed ", "red" if failed else "dim"), (f"{skipped} skipped", "yellow" if skipped else "dim")))
        grid.add_row("", ProgressBar(total=max(self.total, 1), completed=len(done), width=50))
        if self.current is not None:
            grid.add_row("now", Text(short_name(self.current.nodeid), style="cyan"))
        rig = getattr(self.run, "rig", None)
        if rig is not None and rig.activity is not None:
            now = rig.clock.now()
            a = rig.activity
            remaining = a.remaining(now)
            label = f"{a.label}: {fmt_duration(a.elapsed(now))} elapsed"
            if remaining is not None:
                label += f", at most {fmt_duration(remaining)} to go"
            grid.add_row("hold", Text(label))
            if a.duration:
                grid.add_row("", ProgressBar(total=a.duration, completed=min(a.elapsed(now), a.duration), width=50))
        if rig is not None:
            grid.add_row("readings", readings_line(rig))
        return grid

    # -- summary ---------------------------------------------------------------------------------

    def print_summary(self) -> None:
        from rich.table import Table
        from rich.text import Text

        from rig.display import status_style

        c = self.console
        for error in self.collect_errors:
            c.print(f"collection error: {error}", highlight=False, markup=False)
        if self.lines:
            table = Table(title="summary")
            for column in ("test", "verdict", "key figures / reason"):
                table.add_column(column)
            for line in self.lines.values():
                verdict = VERDICT.get(line.outcome, line.outcome)
                detail = line.message if line.outcome != "passed" else ", ".join(line.figures)
                table.add_row(Text(short_name(line.nodeid)), Text(verdict, style=status_style(verdict)), Text(detail))
            c.print(table)
        headline = self.headline()
        if headline is not None:
            verdict, detail = headline
            c.print(Text.assemble((verdict, status_style(verdict)), f": {detail}"))
        if self.run is not None and self.run.recorder is not None:
            c.print(Text(f"results: {self.run.folder}"))

    def headline(self) -> tuple[str, str] | None:
        """(verdict, counts) for the last line, from the run's exit code: a run that was interrupted,
        tripped or stopped never says PASS, and tests that did not run are counted and named."""
        if not self.lines:
            return None  # nothing ran: `rig run` says why in one line
        not_applicable = self.run.not_applicable if self.run is not None else set()
        counts = {k: sum(t.outcome == k for t in self.lines.values()) for k in ("passed", "failed", "error")}
        skipped = [t for t in self.lines.values() if t.outcome == "skipped" and t.nodeid not in not_applicable]
        counts["not applicable"] = sum(t.outcome == "skipped" for t in self.lines.values()) - len(skipped)
        counts["not run"] = len(skipped) + max(0, self.total - len(self.lines)) + sum(
            t.outcome == "running" for t in self.lines.values())
        code = getattr(self.run, "exit_code", None)
        if code is None:
            verdict = "PASS" if not counts["failed"] and not counts["error"] and counts["passed"] else "FAIL"
        else:
            verdict = {0: "PASS", 1: "FAIL", 2: "NOT RUN", 3: "TRIPPED", 130: "INTERRUPTED"}.get(code, "ERROR")
        if getattr(self.run, "refused", False):
            verdict = "NOT RUN"  # the pre-flight refused the bench, the record or the operator
        if verdict == "PASS" and (counts["not run"] or not counts["passed"]):
            verdict = "INCOMPLETE"  # nothing failed, but not everything selected was run
        detail = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        if skipped and verdict == "INCOMPLETE":
            detail += " (" + "; ".join(f"{short_name(t.nodeid)}: {t.message}" for t in skipped[:3]) + ")"
        return verdict, detail


def readings_line(rig: Any) -> Any:
    """Bus voltage, inlet current and the hottest contact against its trip limit, from the last sample."""
    from rich.text import Text

    sample = rig.sampler.latest if rig._sampler is not None else None
    fixture = sample.fixture if sample is not None else None
    if fixture is None:
        return Text("-")
    hottest = fixture.hottest_contact
    limit = rig.limits.max_temperature.value
    style = "red" if not math.isnan(hottest) and hottest > limit - 10 else "green"
    return Text.assemble(f"bus {fixture.inlet_voltage:.1f} V   inlet {fixture.inlet_current:.1f} A   "
                         "hottest contact ", (f"{hottest:.1f} °C", style), f" (trip at {limit:g} °C)")


def fmt_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"
