"""The run report behind ``rig report RUN_DIR``: load one run folder, summarise it in the terminal, and
write a self-contained ``report.html`` (inline CSS, plots embedded as ``data:`` URIs, so the one file
can be mailed) with the PNG plots beside it.

    run = load_run(Path("results/20261128-101500-INLET-42"))
    print_summary(run)
    files = write_report(run)  # files.html, files.images

Formats are those of ``rig.recorder`` and ``rig.sampler``. Unfinished runs are normal input: run.json
says ``"finished": false`` and a ``kill -9`` may have cut the last CSV line short; such a line is
skipped and said so. Instruments are found by their column suffixes (``<supply>.output``,
``<load>.input``, ``<fixture>.temp_dc_plus_c``...), never by fixed names, so any rig's run reads.

rich and matplotlib are imported inside the functions that use them: importing this module is cheap.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import html
import json
import math
import os
import sys
import textwrap
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RISE_LIMIT = "endurance.temperature_rise"  # profile key of the temperature-rise limit (K above ambient)
AMBIENT = "temp_ambient_c"
TEMPERATURE_LABELS = {
    "temp_dc_plus_c": "DC+ contact",
    "temp_dc_minus_c": "DC− contact",
    "temp_inlet_1_c": "inlet sensor 1",
    "temp_inlet_2_c": "inlet sensor 2",
    AMBIENT: "ambient",
}
PLOTS = ("temperatures.png", "power.png", "pilot.png")
NO_LIMIT_LINE = (f"No limit line: the run has no ambient reading, or no {RISE_LIMIT} limit (neither measured, nor "
                 "in run.json, nor in an unchanged profile file named by run.json).")


# --- the run ----------------------------------------------------------------------------------------


def _is_text(column: str) -> bool:
    return column in ("wall_time", "test", "errors") or column.endswith(".protection")


@dataclass(frozen=True)
class Samples:
    """samples.csv by column, complete rows only: numbers as compact float arrays (a day at 1 Hz stays
    small), the few text columns (``test``, ``wall_time``, ``errors``, ``<unit>.protection``) as strings."""

    header: tuple[str, ...]
    values: dict[str, array[float]]
    text: dict[str, list[str]]

    @classmethod
    def from_rows(cls, header: Sequence[str], rows: Iterable[list[str]]) -> Samples:
        values = {c: array("d") for c in header if not _is_text(c)}
        text: dict[str, list[str]] = {c: [] for c in header if _is_text(c)}
        cells = [(values.get(c), text.get(c)) for c in header]
        for row in rows:
            for cell, (numbers, strings) in zip(row, cells, strict=True):
                if numbers is not None:
                    numbers.append(_float(cell))
                elif strings is not None:
                    strings.append(cell)
        return cls(tuple(header), values, text)

    def __len__(self) -> int:
        return len(self.values.get("time_s", ()))

    def numbers(self, column: str) -> Sequence[float]:
        """A numeric column; empty or non-numeric cells (an instrument that did not answer) are NaN."""
        return self.values.get(column, array("d"))

    def has(self, column: str) -> bool:
        return column in self.header


@dataclass(frozen=True)
class Result:
    """One row of measurements.csv."""

    time_s: float
    test: str
    name: str
    value: float
    unit: str
    low: float | None
    high: float | None
    verdict: str
    limit: str
    source: str
    confidence: str

    @property
    def window(self) -> str:
        return window(self.low, self.high, self.unit)


@dataclass
class Run:
    folder: Path
    meta: dict[str, Any]
    samples: Samples
    results: list[Result]
    notes: list[str] = field(default_factory=list)  # what the reader had to skip or guess

    @property
    def finished(self) -> bool:
        return self.meta.get("finished") is True

    @property
    def outcome(self) -> str:
        return str(self.meta.get("outcome", "unknown"))

    @property
    def trips(self) -> list[str]:
        raw = self.meta.get("safety_trips", self.meta.get("trips")) or []
        return [_one_line(t) for t in (raw if isinstance(raw, list) else [raw])]

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.results)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    images: list[Path]


def load_run(folder: str | Path) -> Run:
    """Read run.json, samples.csv and measurements.csv; tolerant of an interrupted or partial run."""
    folder = Path(folder)
    if not folder.is_dir() or not any((folder / n).exists() for n in ("run.json", "samples.csv", "measurements.csv")):
        from rig.config import ConfigError

        raise ConfigError(f"{folder}: not a run folder (expected run.json, samples.csv and measurements.csv)")
    notes: list[str] = []
    meta = _read_meta(folder / "run.json", notes)
    rows = _rows(folder / "samples.csv", notes)
    samples = Samples.from_rows(next(rows, []), rows)
    rows = _rows(folder / "measurements.csv", notes)
    header = next(rows, [])
    results = [_result(dict(zip(header, row, strict=True))) for row in rows]
    return Run(folder, meta, samples, results, notes)


def _read_meta(path: Path, notes: list[str]) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(f"{path.name}: missing; run metadata unknown")
        return {}
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name}: unreadable ({exc}); run metadata unknown")
        return {}
    if not isinstance(meta, dict):
        notes.append(f"{path.name}: not a JSON object; run metadata unknown")
        return {}
    return meta


def _rows(path: Path, notes: list[str]) -> Iterator[list[str]]:
    """The header, then every complete row, streamed. Rows of the wrong length are skipped with a note."""
    try:
        file = path.open(encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        notes.append(f"{path.name}: {exc.strerror or exc}; no rows")
        return
    header: list[str] | None = None
    bad = 0
    with file:
        try:
            for record in csv.reader(_complete_lines(file, path.name, notes)):
                if header is None:
                    header = record
                    yield record
                elif len(record) == len(header):
                    yield record
                elif record:
                    bad += 1
        except csv.Error as exc:
            notes.append(f"{path.name}: unreadable ({exc}); rest skipped")
    if bad:
        notes.append(f"{path.name}: {bad} malformed row(s) skipped")


def _complete_lines(lines: Iterable[str], name: str, notes: list[str]) -> Iterator[str]:
    """Lines up to the last newline: a last line without one was cut short (kill -9 mid-write)."""
    for line in lines:
        if not line.endswith(("\n", "\r")):
            notes.append(f"{name}: last line incomplete (run interrupted while writing it); skipped")
            return
        yield line


def _result(cells: dict[str, str]) -> Result:
    def optional(key: str) -> float | None:
        return None if cells.get(key, "") == "" else _float(cells[key])

    return Result(_float(cells.get("time_s", "")), cells.get("test", ""), cells.get("name", ""),
                  _float(cells.get("value", "")), cells.get("unit", ""), optional("low"), optional("high"),
                  cells.get("verdict", "").upper(), cells.get("limit", ""), cells.get("source", ""),
                  cells.get("confidence", ""))


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


# --- formatting -------------------------------------------------------------------------------------


def window(low: float | None, high: float | None, unit: str) -> str:
    """A limit window as ``rig.profile.Limit.describe`` writes it."""
    if low is not None and high is not None:
        return f"{low:g} .. {high:g} {unit}".strip()
    if low is not None:
        return f">= {low:g} {unit}".strip()
    if high is not None:
        return f"<= {high:g} {unit}".strip()
    return ""


def number(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def _one_line(item: Any) -> str:
    if isinstance(item, dict):
        return "; ".join(f"{k}: {v}" for k, v in item.items())
    return str(item)


def _named(value: Any, *keys: str) -> str:
    """A metadata field that may be a plain value or a table (``{"name": ..., "file": ...}``)."""
    if isinstance(value, dict):
        parts = [str(value[k]) for k in keys if value.get(k) not in (None, "")]
        return " ".join(parts[:1] + [f"({p})" for p in parts[1:]]) or _one_line(value)
    return "" if value is None else str(value)


def headline(run: Run) -> dict[str, str]:
    """The fields a reader wants first, as text ("" where run.json does not say)."""
    meta = run.meta
    tier = meta.get("tier")
    return {
        "run": run.folder.name,
        "DUT": _named(meta.get("dut"), "name", "serial"),
        "tier": f"{tier} V" if isinstance(tier, int | float) else _named(tier),
        "operator": _named(meta.get("operator")),
        "rig": _named(meta.get("rig"), "name", "file"),
        "profile": _named(meta.get("profile"), "name", "version"),
        "started": _named(meta.get("started")),
        "ended": _named(meta.get("ended")),
        "outcome": run.outcome,
        "finished": "yes" if run.finished else "NO: partial data",
    }


def _short_test(test: str) -> str:
    return test.rsplit("::", 1)[-1]


# --- terminal summary -------------------------------------------------------------------------------


def summary(run: Run, plain: bool = False) -> Any:
    """A rich renderable: header, unfinished/trip warnings, the measurements table, counts, notes."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from rig.display import status_style

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for key, value in headline(run).items():
        if value:
            head.add_row(key, Text(value, style="" if key != "finished" or run.finished else "bold yellow"))
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAVY, title="measurements", title_justify="left")
    for name in ("test", "name", "value", "unit", "limits", "verdict", "source", "confidence"):
        table.add_column(name, overflow="fold", justify="right" if name == "value" else "left",
                         max_width=60 if name == "source" else None)
    for r in run.results:
        table.add_row(Text(_short_test(r.test)), Text(r.name), number(r.value), Text(r.unit), Text(r.window),
                      Text(r.verdict, style=status_style(r.verdict)), Text(r.source), Text(r.confidence))
    parts: list[Any] = [head]
    if not run.finished:
        parts.append(Text(f"RUN DID NOT FINISH (outcome: {run.outcome}): results are partial", style="bold yellow"))
    parts += [Text(f"SAFETY TRIP: {trip}", style="bold red") for trip in run.trips]
    parts.append(table if run.results else Text("no measurements recorded"))
    parts.append(counts_text(run))
    parts += [Text(f"note: {note}", style="dim") for note in run.notes]
    return Group(*parts)


def counts_text(run: Run) -> Any:
    from rich.text import Text

    text = Text()
    text.append(f"{run.count('PASS')} PASS", style="green")
    text.append(", ")
    text.append(f"{run.count('FAIL')} FAIL", style="bold red" if run.count("FAIL") else "")
    other = len(run.results) - run.count("PASS") - run.count("FAIL")
    if other:
        text.append(f", {other} other")
    text.append(f"  ({len(run.samples)} samples)")
    return text


def print_summary(run: Run, console: Any = None) -> None:
    """Print the summary; rich colours on a terminal, plain ASCII tables otherwise (logs, pipes)."""
    from rig.display import console as make_console

    out = console or make_console()
    out.print(summary(run, plain=not out.is_terminal))


# --- what the samples hold --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """Instrument names found in samples.csv, by role."""

    supplies: list[str]
    loads: list[str]
    fixtures: list[str]


def bench(run: Run) -> Bench:
    """Roles from the column suffixes ``rig.sampler.columns`` writes (or run.json's instrument roles)."""
    from rig.sampler import FIXTURE_COLUMNS

    names = list(dict.fromkeys(c.rsplit(".", 1)[0] for c in run.samples.header if "." in c))
    fixture_only = set(FIXTURE_COLUMNS) - {"voltage_v", "current_a"}
    instruments = run.meta.get("instruments")
    declared = instruments if isinstance(instruments, dict) else {}

    def role(name: str) -> str:
        entry = declared.get(name)
        if isinstance(entry, dict) and entry.get("role") in ("supply", "load", "fixture"):
            return str(entry["role"])
        if run.samples.has(f"{name}.output"):
            return "supply"
        if run.samples.has(f"{name}.input"):
            return "load"
        return "fixture" if any(run.samples.has(f"{name}.{k}") for k in fixture_only) else ""

    return Bench(*([n for n in names if role(n) == r] for r in ("supply", "load", "fixture")))


def temperature_columns(run: Run) -> list[tuple[str, str]]:
    """(column, label) of every contact and inlet temperature, ambient excluded."""
    out = []
    fixtures = bench(run).fixtures
    for column in run.samples.header:
        name, _, key = column.rpartition(".")
        if name in fixtures and key.startswith("temp_") and key.endswith("_c") and key != AMBIENT:
            label = TEMPERATURE_LABELS.get(key, key.removeprefix("temp_").removesuffix("_c").replace("_", " "))
            out.append((column, label if len(fixtures) == 1 else f"{name} {label}"))
    return out


def ambient_column(run: Run) -> str | None:
    return next((f"{f}.{AMBIENT}" for f in bench(run).fixtures if run.samples.has(f"{f}.{AMBIENT}")), None)


# --- the temperature limit line ---------------------------------------------------------------------


@dataclass(frozen=True)
class TemperatureLimit:
    ambient_c: float
    rise_k: float
    source: str  # where the rise limit came from, for the label

    @property
    def value_c(self) -> float:
        return self.ambient_c + self.rise_k


def temperature_limit(run: Run) -> TemperatureLimit | None:
    """Ambient + the temperature-rise limit: from the run's own measurement, else run.json's
    ``limits`` table, else the profile file run.json names (if its hash still matches). The ambient is
    the median over the samples of the test that measured the rise (else over the whole run)."""
    rise = _rise_limit(run)
    column = ambient_column(run)
    if rise is None or column is None:
        return None
    high, source, test = rise
    tests = run.samples.text.get("test", [])
    values = run.samples.numbers(column)
    in_test = [v for v, t in zip(values, tests, strict=False) if t == test and math.isfinite(v)]
    ambient = _median(in_test or [v for v in values if math.isfinite(v)])
    return None if ambient is None else TemperatureLimit(ambient, high, source)


def _rise_limit(run: Run) -> tuple[float, str, str] | None:
    """(high K, source text, test) of the temperature-rise limit."""
    for r in reversed(run.results):
        if r.limit == RISE_LIMIT and r.high is not None:
            where = f"as measured by {_short_test(r.test)}"
            return r.high, f"{RISE_LIMIT} {where}: {r.source} (confidence {r.confidence})", r.test
    limits = run.meta.get("limits")
    entry = limits.get(RISE_LIMIT) if isinstance(limits, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("high"), int | float):
        return float(entry["high"]), f"{RISE_LIMIT} from run.json: {entry.get('source', 'no source given')}", ""
    return _rise_from_profile(run)


def _rise_from_profile(run: Run) -> tuple[float, str, str] | None:
    profile = run.meta.get("profile")
    if not isinstance(profile, dict) or not profile.get("path") or not profile.get("sha256"):
        return None
    path = Path(str(profile["path"]))
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() != profile["sha256"]:
            return None  # the file changed since the run: its limits are not the run's
        from rig.profile import load_profile

        limit = load_profile(path).limits.get(RISE_LIMIT)
    except (OSError, ValueError):
        return None
    if limit is None or limit.high is None:
        return None
    return limit.high, f"{RISE_LIMIT} from profile {path.name}: {limit.source} (confidence {limit.confidence})", ""


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- plots ------------------------------------------------------------------------------------------


def time_axis(span_s: float) -> tuple[float, str]:
    """Divisor and unit for a time axis: seconds up to 3 min, minutes up to 3 h, then hours."""
    if span_s <= 180:
        return 1.0, "s"
    if span_s <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _times(run: Run) -> tuple[list[float], str]:
    """Rig time since the first sample, scaled, and the axis label."""
    t = run.samples.numbers("time_s")
    finite = [v for v in t if math.isfinite(v)]
    start = finite[0] if finite else 0.0
    divisor, unit = time_axis(max(finite, default=start) - start)
    return [(v - start) / divisor for v in t], f"rig time since the first sample ({unit})"


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas (no pyplot: no global state, no GUI, thread-safe)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def _subtitle(run: Run) -> str:
    head = headline(run)
    text = " · ".join(v for v in (head["DUT"], head["tier"], head["run"]) if v)
    return text + ("" if run.finished else "  (UNFINISHED RUN)")


def plot_temperatures(run: Run, path: Path) -> Path | None:
    """Every contact and inlet temperature vs time, ambient, and the ambient + rise limit line."""
    columns = temperature_columns(run)
    if not columns or len(run.samples) == 0:
        return None
    x, xlabel = _times(run)
    fig = _figure(10, 5.5)
    ax = fig.add_subplot()
    for column, label in columns:
        ax.plot(x, run.samples.numbers(column), label=label, linewidth=1.6)
    ambient = ambient_column(run)
    if ambient:
        ax.plot(x, run.samples.numbers(ambient), label="ambient", color="grey", linestyle="--", linewidth=1)
    limit = temperature_limit(run)
    if limit is not None:
        ax.axhline(limit.value_c, color="red", linestyle="-.", linewidth=1.5,
                   label=f"limit {limit.value_c:.1f} °C = ambient {limit.ambient_c:.1f} °C + {limit.rise_k:g} K")
    note = f"Limit source: {limit.source}" if limit else NO_LIMIT_LINE
    fig.text(0.01, 0.0, "\n".join(textwrap.wrap(note, 150)), fontsize=7, va="bottom", ha="left", color="dimgrey")
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    ax.set(xlabel=xlabel, ylabel="temperature (°C)", title=f"Temperatures: {_subtitle(run)}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_power(run: Run, path: Path) -> Path | None:
    """Inlet and bus voltage (top) and inlet current with supply and load totals (bottom) vs time."""
    b = bench(run)
    voltages = [(f"{n}.voltage_v", f"inlet ({n})" if len(b.fixtures) > 1 else "inlet", 2.0) for n in b.fixtures]
    voltages += [(f"{n}.voltage_v", f"supply {n}", 0.8) for n in b.supplies]
    voltages += [(f"{n}.voltage_v", f"load {n}", 0.8) for n in b.loads]
    currents = [(f"{n}.current_a", f"inlet ({n})" if len(b.fixtures) > 1 else "inlet") for n in b.fixtures]
    voltages = [v for v in voltages if run.samples.has(v[0])]
    currents = [c for c in currents if run.samples.has(c[0])]
    totals = [(_total(run, names), label) for names, label in ((b.supplies, "supplies"), (b.loads, "loads"))]
    totals = [(series, label) for series, label in totals if series is not None]
    if not (voltages or currents or totals) or len(run.samples) == 0:
        return None
    x, xlabel = _times(run)
    fig = _figure(10, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for column, label, width in voltages:
        top.plot(x, run.samples.numbers(column), label=label, linewidth=width)
    for column, label in currents:
        bottom.plot(x, run.samples.numbers(column), label=label, linewidth=2.0)
    for (series, names), style in zip(totals, ("--", ":"), strict=False):
        bottom.plot(x, series, label=f"{names} total", linestyle=style, linewidth=1.2)
    top.set(ylabel="voltage (V)", title=f"Inlet and bus: {_subtitle(run)}")
    bottom.set(ylabel="current (A)", xlabel=xlabel)
    for ax in (top, bottom):
        if wide_range([v for line in ax.get_lines() for v in line.get_ydata()]):
            ax.set_yscale("symlog", linthresh=1.0)  # 8 V endurance and 1000 V insulation both readable
            ax.set_ylabel(ax.get_ylabel() + ", log scale above 1")
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(loc="upper right", fontsize=8, ncol=2)
    return _save(fig, path)


def wide_range(values: Iterable[float], ratio: float = 50.0) -> bool:
    """True if the values of magnitude >= 1 span more than ``ratio`` (a linear axis would flatten some)."""
    big = [abs(v) for v in values if math.isfinite(v) and abs(v) >= 1.0]
    return bool(big) and max(big) / min(big) > ratio


def _total(run: Run, names: Sequence[str]) -> list[float] | None:
    """Sum of ``<name>.current_a`` per sample (NaN where no unit read), or None without such columns."""
    series = [run.samples.numbers(f"{n}.current_a") for n in names if run.samples.has(f"{n}.current_a")]
    if not series:
        return None
    return [_finite_sum(values) for values in zip(*series, strict=True)]


def _finite_sum(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) if finite else math.nan


def pilot_results(run: Run) -> list[Result]:
    """CP and PP voltage measurements (other CP quantities, e.g. frequency, stay in the table)."""
    return [r for r in run.results
            if r.name.startswith(("cp.", "pp.")) and r.unit == "V" and math.isfinite(r.value)]


def plot_pilot(run: Run, path: Path) -> Path | None:
    """Each CP/PP voltage as a marker against its window (a horizontal bar), green pass, red fail."""
    results = pilot_results(run)
    if not results:
        return None
    edges = [v for r in results for v in (r.value, r.low, r.high) if v is not None]
    left, right = min(edges) - 1.0, max(edges) + 1.0
    fig = _figure(10, 1.2 + 0.42 * len(results))
    ax = fig.add_subplot()
    for y, r in enumerate(results):
        low = r.low if r.low is not None else left
        high = r.high if r.high is not None else right
        ax.barh(y, high - low, left=low, height=0.6, color="#cfe8cf", edgecolor="#5a9a5a",
                label="window (limit)" if y == 0 else None)
        ok = r.verdict == "PASS"
        ax.plot(r.value, y, marker="o" if ok else "X", markersize=8 if ok else 10, linestyle="",
                color="#1a7f1a" if ok else "#d00000", label=None)
        ax.annotate(f"{r.value:.4g} V", (r.value, y), xytext=(6, 5), textcoords="offset points", fontsize=7)
    ax.plot([], [], marker="o", linestyle="", color="#1a7f1a", label="measured: PASS")
    ax.plot([], [], marker="X", linestyle="", color="#d00000", label="measured: FAIL")
    ax.set_yticks(range(len(results)), [f"{r.name}  [{r.window}]" for r in results], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set(xlim=(left, right), xlabel="voltage (V)", title=f"Control pilot and proximity: {_subtitle(run)}")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def write_plots(run: Run, folder: Path) -> list[Path]:
    """The PNGs that apply to this run (a run without fixture or CP/PP results has fewer)."""
    plots = (plot_temperatures, plot_power, plot_pilot)
    made = (plot(run, folder / name) for plot, name in zip(plots, PLOTS, strict=True))
    return [p for p in made if p is not None]


# --- HTML -------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.banner { padding: .7em 1em; margin: .8em 0; border-radius: 4px; font-weight: bold; }
.banner.unfinished { background: #fff3cd; border: 1px solid #e0b000; }
.banner.trip { background: #f8d7da; border: 1px solid #c00; color: #700; }
.banner.fail { background: #f8d7da; border: 1px solid #c00; }
.banner.pass { background: #d4edda; border: 1px solid #2a7; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td { background: #fde2e2; }
.verdict-PASS { color: #1a7f1a; font-weight: bold; } .verdict-FAIL { color: #c00; font-weight: bold; }
table.kv th { width: 12em; } table.kv table.kv { margin: 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
.notes { color: #555; font-size: .9em; } footer { margin-top: 2em; font-size: .8em; color: #777; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def html_value(value: Any) -> str:
    """Any run.json value as escaped HTML: tables for objects, lists for arrays."""
    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{html_value(v)}</td></tr>" for k, v in value.items())
        return f'<table class="kv">{rows}</table>' if rows else "—"
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{html_value(v)}</li>" for v in value) + "</ul>" if value else "—"
    return _e(value)


def banners(run: Run) -> str:
    out = []
    if not run.finished:
        times = [t for t in run.samples.numbers("time_s") if math.isfinite(t)]
        end = f" (rig time {number(times[-1])} s)" if times else ""
        out.append(f'<div class="banner unfinished">UNFINISHED RUN: run.json says finished = false (outcome '
                   f"&ldquo;{_e(run.outcome)}&rdquo;). The data end at the last complete sample{_e(end)}; "
                   f"results are partial.</div>")
    out += [f'<div class="banner trip">SAFETY TRIP: {_e(trip)}</div>' for trip in run.trips]
    fails = run.count("FAIL")
    kind = "fail" if fails else "pass"
    out.append(f'<div class="banner {kind}">{run.count("PASS")} PASS, {fails} FAIL '
               f"of {len(run.results)} measurements</div>")
    return "\n".join(out)


def measurements_html(results: Iterable[Result]) -> str:
    """Every measurement with its window, verdict, limit key, source and confidence; FAIL rows marked."""
    head = ("rig time (s)", "test", "name", "value", "unit", "limits", "verdict", "limit key", "limit source",
            "confidence")
    rows = []
    for r in results:
        cells = (number(r.time_s), r.test, r.name, number(r.value), r.unit, r.window, r.verdict, r.limit,
                 r.source, r.confidence)
        css = ("num", "", "", "num", "", "num", f"verdict-{r.verdict}", "", "", "")
        tds = "".join(f'<td class="{_e(c)}">{_e(v)}</td>' if c else f"<td>{_e(v)}</td>" for v, c in zip(
            cells, css, strict=True))
        rows.append(f'<tr class="fail">{tds}</tr>' if r.verdict != "PASS" else f"<tr>{tds}</tr>")
    if not rows:
        return "<p>No measurements recorded.</p>"
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def figure_html(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(path.name)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _caption(run: Run, path: Path) -> str:
    if path.name == "temperatures.png":
        limit = temperature_limit(run)
        if limit is None:
            return f"Temperatures vs rig time. {NO_LIMIT_LINE}"
        return (f"Temperatures vs rig time. Limit line at {limit.value_c:.1f} °C = ambient "
                f"{limit.ambient_c:.1f} °C (median) + {limit.rise_k:g} K. Source: {limit.source}")
    if path.name == "power.png":
        return "Inlet and bus voltage, inlet current and the supply / load totals vs rig time."
    return "CP and PP voltages measured (markers) against their windows (bars) from the limits profile."


def render_html(run: Run, images: Sequence[Path]) -> str:
    head = headline(run)
    title = f"Run report {head['DUT'] or ''} {head['run']}".strip()
    summary_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v) or '—'}</td></tr>" for k, v in head.items())
    figures = "\n".join(figure_html(p, _caption(run, p)) for p in images)
    notes = "".join(f"<li>{_e(n)}</li>" for n in run.notes)
    generated = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
{banners(run)}
<table class="kv">{summary_rows}<tr><th>samples</th><td>{len(run.samples)}</td></tr></table>
<h2>Plots</h2>
{figures or "<p>No plottable data.</p>"}
<h2>Measurements</h2>
{measurements_html(run.results)}
<h2>Run metadata (run.json)</h2>
{html_value(run.meta)}
{f'<h2>Reader notes</h2><ul class="notes">{notes}</ul>' if notes else ""}
<footer>Generated by rig report at {_e(generated)} from {_e(run.folder.resolve())}</footer>
</body></html>
"""


def write_report(run: Run, folder: Path | None = None) -> ReportFiles:
    """Write the PNGs and report.html (atomically) into ``folder`` (default: the run folder)."""
    folder = Path(folder or run.folder)
    images = write_plots(run, folder)
    path = folder / "report.html"
    tmp = folder / "report.html.tmp"
    tmp.write_text(render_html(run, images), encoding="utf-8")
    os.replace(tmp, path)
    return ReportFiles(path, images)


def report(folder: str | Path, console: Any = None) -> ReportFiles:
    """``rig report RUN_DIR`` in one call: load, print the summary, write the files, say where."""
    run = load_run(folder)
    print_summary(run, console)
    files = write_report(run)
    from rig.display import console as make_console

    (console or make_console()).print(f"report: {files.html}")
    return files
