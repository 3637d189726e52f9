"""The report's plots, as PNG bytes: temperatures, inlet voltage and current, control pilot and proximity.

Every time plot shades the test phases (numbered as in the verdict table; a phase whose test did not
pass is tinted red), marks safety trips (expected ones dotted grey, others solid red) and draws the
rig's trip level. Legends sit outside the axes so they never hide data.

matplotlib is imported inside the functions: importing this module is cheap. No pyplot: no global
state, no GUI, safe in a thread (a dashboard can render plots on demand).
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from rig import si
from rig.report.run import Result, Run, junit_key
from rig.report.series import (
    NO_LIMIT_LINE,
    ambient_column,
    bench,
    phases,
    temperature_columns,
    temperature_limit,
    time_order,
    trip_level,
)
from rig.report.verdicts import PASS, SKIPPED, VerdictRow, trips

DPI = 110
TRIP_RED = "#c00000"
LIMIT_ORANGE = "#e07000"


@dataclass(eq=False)
class Plot:
    name: str  # file name beside the report, e.g. "temperatures.png"
    title: str
    caption: str
    figure: Any  # the matplotlib Figure (tests read its lines and legends)

    @cached_property
    def png(self) -> bytes:
        out = io.BytesIO()
        self.figure.savefig(out, format="png")
        return out.getvalue()


def time_axis(span_s: float) -> tuple[float, str]:
    """Divisor and unit for a time axis: seconds up to 3 min, minutes up to 3 h, then hours."""
    if span_s <= 180:
        return 1.0, "s"
    if span_s <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


@dataclass(frozen=True)
class Timeline:
    """The samples in rig-time order, and how to put a rig time on the x axis."""

    order: list[int]
    start: float
    divisor: float
    label: str

    def x(self, time_s: float) -> float:
        return (time_s - self.start) / self.divisor

    def series(self, values: Sequence[float]) -> list[float]:
        return [values[i] for i in self.order]


def timeline(run: Run) -> Timeline:
    order = time_order(run)
    t = run.samples.numbers("time_s")
    start = t[order[0]] if order else 0.0
    end = t[order[-1]] if order else 0.0
    divisor, unit = time_axis(end - start)
    return Timeline(order, start, divisor, f"rig time since the first sample ({unit})")


def _figure(width: float, height: float) -> Any:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _outside_legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8, frameon=False)


def mark_phases(ax: Any, run: Run, line: Timeline, rows: Sequence[VerdictRow], label: bool) -> None:
    """Shade each test's stretch of time; number the stretches as in the verdict table on a top axis
    (a test too short for its number to fit beside its neighbour's stays unlabelled)."""
    numbers = {junit_key(v.nodeid): v for v in rows}
    spans = [(line.x(p.start_s), line.x(p.end_s), numbers.get(junit_key(p.test))) for p in phases(run)]
    low, high = ax.get_xlim() if ax.has_data() else (0.0, max((b for _, b, _ in spans), default=1.0))
    room = (high - low) * 0.022 or 1.0
    ticks: list[tuple[float, str, bool]] = []
    for i, (a, b, verdict) in enumerate(spans):
        bad = verdict is not None and verdict.verdict not in (PASS, SKIPPED)
        ax.axvspan(a, b, color="#f6c8c8" if bad else ("#e6e6e6" if i % 2 else "#f4f4f4"), zorder=0, linewidth=0)
        middle = (a + b) / 2
        if verdict is not None and (not ticks or middle - ticks[-1][0] > room or (bad and not ticks[-1][2])):
            if ticks and middle - ticks[-1][0] <= room:
                ticks.pop()  # a failed test's number wins over a passing neighbour's
            ticks.append((middle, str(verdict.number), bad))
    if label and ticks:
        top = ax.secondary_xaxis("top")
        top.set_xticks([t for t, _, _ in ticks], [n for _, n, _ in ticks], fontsize=6.5)
        top.tick_params(length=2, pad=1)
        for text, (_, _, bad) in zip(top.get_xticklabels(), ticks, strict=True):
            text.set_color(TRIP_RED if bad else "#555")
            text.set_fontweight("bold" if bad else "normal")
        top.set_xlabel("test # (as in the verdict table)", fontsize=7, color="#555", labelpad=2)


def mark_trips(ax: Any, run: Run, line: Timeline, legend: bool) -> None:
    shown: set[bool] = set()
    for trip in trips(run, {junit_key(c.nodeid): c for c in run.cases or []}):
        if trip.time_s is None:
            continue
        style = dict(color="#777", linestyle=":", linewidth=1.2) if trip.expected else \
            dict(color=TRIP_RED, linestyle=(0, (6, 3)), linewidth=2.2)
        name = "expected trip (test's own)" if trip.expected else "SAFETY TRIP (unexpected)"
        ax.axvline(line.x(trip.time_s), label=name if legend and trip.expected not in shown else None, **style)
        shown.add(trip.expected)


def plot_temperatures(run: Run, rows: Sequence[VerdictRow]) -> Plot | None:
    """Every contact and inlet temperature vs time, ambient, the rise-limit line and the trip line."""
    columns = temperature_columns(run)
    if not columns or len(run.samples) == 0:
        return None
    line = timeline(run)
    x = line.series(run.samples.numbers("time_s"))
    x = [line.x(t) for t in x]
    fig = _figure(10, 5.0)
    ax = fig.add_subplot()
    # DC+ and DC− often read alike: DC+ wide and pale underneath, DC− narrow and dashed on top, both visible.
    styles = {"DC+ contact": dict(color="#d62728", linewidth=3.2, alpha=0.55, zorder=3),
              "DC− contact": dict(color="#1f3fbf", linewidth=1.3, linestyle=(0, (5, 2)), zorder=4),
              "inlet sensor 1": dict(color="#2ca02c", linewidth=2.4, alpha=0.5, zorder=3),
              "inlet sensor 2": dict(color="#6b3fa0", linewidth=1.1, linestyle=(0, (2, 1.5)), zorder=4)}
    for column, label in columns:
        style = next((s for key, s in styles.items() if label.endswith(key)), dict(linewidth=1.4, zorder=3))
        ax.plot(x, line.series(run.samples.numbers(column)), label=label, **style)
    ambient = ambient_column(run)
    if ambient:
        ax.plot(x, line.series(run.samples.numbers(ambient)), label="ambient", color="grey", linestyle="--",
                linewidth=1, zorder=3)
    limit = temperature_limit(run)
    if limit is not None:
        ax.axhline(limit.value_c, color=LIMIT_ORANGE, linestyle="-.", linewidth=1.5, zorder=5,
                   label=f"rise limit {limit.value_c:.1f} °C\n(ambient {limit.ambient_c:.1f} °C + {limit.rise_k:g} K)")
    trip = trip_level(run, "trip_temperature")
    if trip is not None:
        ax.axhline(trip.value, color=TRIP_RED, linewidth=1.5, zorder=5,
                   label=f"rig trips at {si.quantity(trip.value, '°C')}")
    mark_trips(ax, run, line, legend=True)
    mark_phases(ax, run, line, rows, label=True)
    ax.set(xlabel=line.label, ylabel="temperature (°C)")
    ax.set_title("Temperatures", loc="left", fontsize=11)
    ax.grid(True, alpha=0.3)
    _outside_legend(ax)
    caption = _temperature_caption(run)
    return Plot("temperatures.png", "Temperatures", caption, fig)


def _temperature_caption(run: Run) -> str:
    limit = temperature_limit(run)
    text = "Contact and inlet temperatures vs rig time; grey bands are the tests (numbers as in the verdict table)."
    if limit is None:
        text += f" {NO_LIMIT_LINE}"
    else:
        text += (f" Rise limit {limit.value_c:.1f} °C = ambient {limit.ambient_c:.1f} °C (median) + {limit.rise_k:g} K;"
                 f" source: {limit.source}.")
    trip = trip_level(run, "trip_temperature")
    if trip is not None:
        text += f" The rig trips at {si.quantity(trip.value, '°C')} ({trip.source})."
    return text


def plot_power(run: Run, rows: Sequence[VerdictRow]) -> Plot | None:
    """Inlet and instrument voltages (top), inlet current with supply and load totals (bottom), linear."""
    b = bench(run)
    many = len(b.fixtures) > 1
    voltages = [(f"{n}.voltage_v", f"inlet ({n})" if many else "inlet", dict(linewidth=2.2, color="#1f3fbf"))
                for n in b.fixtures]
    voltages += [(f"{n}.voltage_v", f"supply {n}", dict(linewidth=0.9)) for n in b.supplies]
    voltages = [v for v in voltages if run.samples.has(v[0])]
    currents = [(f"{n}.current_a", f"inlet ({n})" if many else "inlet") for n in b.fixtures]
    currents = [c for c in currents if run.samples.has(c[0])]
    totals = [(_total(run, names), label) for names, label in ((b.supplies, "supplies"), (b.loads, "loads"))]
    totals = [(series, label) for series, label in totals if series is not None]
    if not (voltages or currents or totals) or len(run.samples) == 0:
        return None
    line = timeline(run)
    x = [line.x(t) for t in line.series(run.samples.numbers("time_s"))]
    fig = _figure(10, 6.4)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for column, label, style in voltages:
        top.plot(x, line.series(run.samples.numbers(column)), label=label, zorder=3, **style)
    for column, label in currents:
        bottom.plot(x, line.series(run.samples.numbers(column)), label=label, linewidth=2.2, color="#1f3fbf", zorder=3)
    for (series, names), style in zip(totals, ("--", ":"), strict=False):
        bottom.plot(x, line.series(series), label=f"{names} total", linestyle=style, linewidth=1.3, zorder=4)
    for ax, name, unit in ((top, "trip_voltage", "V"), (bottom, "trip_current", "A")):
        level = trip_level(run, name)
        if level is not None:
            ax.axhline(level.value, color=TRIP_RED, linewidth=1.3, zorder=5,
                       label=f"rig trips at {si.quantity(level.value, unit)}")
        mark_trips(ax, run, line, legend=ax is top)
        mark_phases(ax, run, line, rows, label=ax is top)
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        _outside_legend(ax)
    top.set_ylabel("voltage (V)")
    top.set_title("Inlet voltage and current", loc="left", fontsize=11)
    bottom.set(ylabel="current (A)", xlabel=line.label)
    caption = ("Inlet voltage (with each supply's output) and inlet current (with the supply and load totals) vs "
               "rig time, linear scales; red lines are the rig's trip levels; grey bands are the tests.")
    return Plot("power.png", "Inlet voltage and current", caption, fig)


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


def plot_pilot(run: Run, rows: Sequence[VerdictRow]) -> Plot | None:
    """Each CP/PP voltage as a marker against its window (a horizontal bar), green pass, red fail."""
    results = pilot_results(run)
    if not results:
        return None
    edges = [v for r in results for v in (r.value, r.low, r.high) if v is not None]
    left, right = min(edges) - 1.0, max(edges) + 1.0
    fig = _figure(10, 1.0 + 0.34 * len(results))
    ax = fig.add_subplot()
    for y, r in enumerate(results):
        low = r.low if r.low is not None else left
        high = r.high if r.high is not None else right
        ax.barh(y, high - low, left=low, height=0.6, color="#cfe8cf", edgecolor="#5a9a5a",
                label="limit window" if y == 0 else None)
        ok = r.verdict == PASS
        ax.plot(r.value, y, marker="o" if ok else "X", markersize=7 if ok else 10, linestyle="",
                color="#1a7f1a" if ok else TRIP_RED)
        ax.annotate(si.quantity(r.value, r.unit), (r.value, y), xytext=(6, 3), textcoords="offset points", fontsize=7)
    ax.plot([], [], marker="o", linestyle="", color="#1a7f1a", label="measured: PASS")
    ax.plot([], [], marker="X", linestyle="", color=TRIP_RED, label="measured: FAIL")
    ax.set_yticks(range(len(results)), [f"{r.name}  [{si.window(r.low, r.high, r.unit)}]" for r in results],
                  fontsize=7.5)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set(xlim=(left, right), xlabel="voltage (V)")
    ax.set_title("Control pilot and proximity", loc="left", fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    _outside_legend(ax)
    caption = "CP and PP voltages measured (markers) against their windows from the limits profile (bars)."
    return Plot("pilot.png", "Control pilot and proximity", caption, fig)


PLOTTERS: tuple[Callable[[Run, Sequence[VerdictRow]], Plot | None], ...] = (plot_temperatures, plot_power, plot_pilot)


def plots(run: Run, rows: Sequence[VerdictRow]) -> list[Plot]:
    """The plots that apply to this run (a run without fixture or CP/PP results has fewer)."""
    return [p for p in (plotter(run, rows) for plotter in PLOTTERS) if p is not None]

