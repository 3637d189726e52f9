"""``rig report RUN_DIR``: the document a lab files for one run.

    run = load_run(Path("results/20261128-101500-INLET-42"))
    print_summary(run)
    files = write_report(run)  # files.html (self-contained), files.images (the PNGs beside it)

Parts, one idea each: ``run`` (load a run folder into a plain ``Run``), ``verdicts`` (every test's verdict
and the reason for each non-pass, trips marked expected or not), ``series`` (what the samples show:
roles, temperatures, limit and trip lines, test phases), ``plots`` (PNG bytes), ``html`` (the page),
``summary`` (the terminal view). Numbers are formatted by ``rig.si``. A results database or a web
dashboard can build a ``Run`` from its own rows and call ``render_html``.

rich and matplotlib are imported only where used: importing this package is cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.report.plots import Plot, plots, time_axis
from rig.report.run import Case, Result, Run, Samples, load_run
from rig.report.series import Bench, TemperatureLimit, bench, temperature_columns, temperature_limit
from rig.report.verdicts import Trip, VerdictRow, trips, verdicts

__all__ = [
    "Bench",
    "Case",
    "Plot",
    "ReportFiles",
    "Result",
    "Run",
    "Samples",
    "TemperatureLimit",
    "Trip",
    "VerdictRow",
    "bench",
    "load_run",
    "plots",
    "print_summary",
    "render_html",
    "report",
    "temperature_columns",
    "temperature_limit",
    "time_axis",
    "trips",
    "verdicts",
    "write_report",
]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    images: list[Path]


def render_html(run: Run) -> tuple[str, list[Plot]]:
    """The page and the plots it embeds, for a run however it was loaded."""
    from rig.report import html

    rows = verdicts(run)
    images = plots(run, rows)
    return html.render(run, rows, images), images


def write_report(run: Run, folder: str | Path | None = None) -> ReportFiles:
    """Write the PNGs and report.html (atomically) into ``folder`` (default: the run folder)."""
    folder = Path(folder or run.folder)
    page, images = render_html(run)
    written = []
    for image in images:
        (folder / image.name).write_bytes(image.png)
        written.append(folder / image.name)
    path = folder / "report.html"
    tmp = folder / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return ReportFiles(path, written)


def print_summary(run: Run, console: Any = None) -> None:
    """Print the summary; rich colours on a terminal, plain ASCII tables otherwise (logs, pipes)."""
    from rig.display import console as make_console
    from rig.report.summary import summary

    out = console or make_console()
    out.print(summary(run, verdicts(run), plain=not out.is_terminal))


def report(folder: str | Path, console: Any = None) -> ReportFiles:
    """``rig report RUN_DIR`` in one call: load, print the summary, write the files, say where."""
    from rig.display import console as make_console

    run = load_run(folder)
    out = console or make_console()
    print_summary(run, out)
    files = write_report(run)
    out.print(f"report: {files.html}")
    return files
