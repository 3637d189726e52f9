"""The Trend page's plot as inline SVG: one measurement across runs (x: the run's start, y: the value),
one colour per measurement name, FAIL points as red crosses, the limits as dashed step lines.

Built as text in one pass so that 10 000 points render in milliseconds: each series is one ``<path>``
whose points are zero-length segments drawn with round caps (a dot each), not 10 000 elements. Every text
placed in the SVG is escaped.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape

from rig import si
from rig.web.queries import TrendPoints

WIDTH, HEIGHT = 1000, 380
LEFT, RIGHT, TOP, BOTTOM = 84, 16, 14, 30
COLOURS = ("#1f5fa8", "#d9822b", "#2a8a4a", "#7b4fa8", "#8c564b", "#c2417f", "#5f6b73", "#17a2b8")
FAIL = "#c0001a"
LIMIT = "#b00020"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _time_ticks(start: float, end: float) -> list[tuple[float, str]]:
    """About six ticks on the time axis, labelled by day (or hour within one day), local time."""
    span = max(end - start, 1.0)
    steps = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400,
             91 * 86400, 182 * 86400, 365 * 86400)
    step = next((s for s in steps if span / s <= 7), steps[-1])
    fmt = "%H:%M" if step < 86400 and span < 86400 else ("%m-%d %H:%M" if step < 86400 else "%Y-%m-%d")
    offset = dt.datetime.now().astimezone().utcoffset()
    shift = offset.total_seconds() if offset else 0.0
    first = math.ceil((start + shift) / step) * step - shift
    ticks = []
    t = first
    while t <= end:
        ticks.append((t, dt.datetime.fromtimestamp(t).strftime(fmt)))
        t += step
    return ticks


def trend_svg(trend: TrendPoints, title: str) -> tuple[str, list[tuple[str, str]]]:
    """The plot of one trend (oldest first) and its legend (colour, label) for the page to lay out (it
    wraps there, not in the SVG); ("", []) without a value to draw."""
    keep = [i for i, v in enumerate(trend.value) if v is not None and math.isfinite(v)]
    if not keep:
        return "", []
    unit = trend.unit
    times = [trend.started[i] for i in keep]
    values = [trend.value[i] for i in keep]
    names = [trend.name[i] for i in keep]
    bounds = [b for b in (*trend.low, *trend.high) if b is not None and math.isfinite(b)]
    y_low, y_high = min(min(values), *bounds, math.inf), max(max(values), *bounds, -math.inf)
    pad = (y_high - y_low) * 0.06 or abs(y_high) * 0.1 or 1.0
    y_low, y_high = y_low - pad, y_high + pad
    t_low, t_high = times[0], times[-1]
    margin = max((t_high - t_low) * 0.03, 30.0)  # no point on the frame
    t_low, t_high = t_low - margin, t_high + margin
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - t_low) / (t_high - t_low) * plot_w

    def y(v: float) -> float:
        return TOP + (y_high - v) / (y_high - y_low) * plot_h

    out = [f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
           'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
           f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#999"/>']
    for tick in _nice_ticks(y_low, y_high):
        ty = y(tick)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e4e4e4"/>'
                   f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" class="tick">'
                   f'{escape(si.quantity(tick, unit, 3))}</text>')
    for t, label in _time_ticks(t_low, t_high):
        tx = x(t)
        out.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#eee"/>'
                   f'<text x="{tx:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" class="tick">'
                   f'{escape(label)}</text>')
    # The limits as step lines: each run's limit holds until the next run's.
    for bound, column in (("low", trend.low), ("high", trend.high)):
        d, previous = [], None
        for t, value in zip(trend.started, column, strict=True):
            if value is None or not math.isfinite(value):
                previous = None
                continue
            if previous is None:  # the first run's limit from the left edge; a gap restarts at its run
                d.append(f"M{LEFT if not d else x(t):.1f},{y(value):.1f}")
            elif value != previous:  # a step only where the limit changed: a handful, not one per run
                d.append(f"H{x(t):.1f}V{y(value):.1f}")
            previous = value
        if d:
            out.append(f'<path d="{"".join(d)}H{WIDTH - RIGHT}" fill="none" stroke="{LIMIT}" stroke-width="1.5" '
                       f'stroke-dasharray="6 4" class="limit {bound}"/>')
    # Points in integer half units of the view box, inside a scale(0.5) group: integer formatting is what
    # keeps 10 000 points to a few tens of milliseconds.
    kx, ky = 2 * plot_w / (t_high - t_low), 2 * plot_h / (y_high - y_low)
    x0, y0 = 2 * LEFT - t_low * kx, 2 * TOP + y_high * ky
    xs = [int(x0 + t * kx) for t in times]
    ys = [int(y0 - v * ky) for v in values]
    legend = []
    dot = 10 if len(xs) <= 1000 else 6  # dense trends in finer dots
    out.append('<g transform="scale(0.5)">')
    for i, name in enumerate(dict.fromkeys(names)):
        colour = COLOURS[i % len(COLOURS)]
        d = "".join([f"M{px},{py}h0" for px, py, n in zip(xs, ys, names, strict=True) if n == name])
        out.append(f'<path d="{d}" stroke="{colour}" stroke-width="{dot}" stroke-linecap="round" class="series"/>')
        legend.append((colour, name))
    verdicts = [trend.verdict[i] for i in keep]
    failed = "".join([f"M{px - 8},{py - 8}l16,16m0,-16l-16,16"
                      for px, py, v in zip(xs, ys, verdicts, strict=True) if v == "FAIL"])
    if failed:
        out.append(f'<path d="{failed}" stroke="{FAIL}" stroke-width="4" class="fails"/>')
        legend.append((FAIL, "FAIL"))
    out.append("</g>")
    if bounds:
        legend.append((LIMIT, "limit"))
    out.append(f'<text x="6" y="{TOP + plot_h / 2:.0f}" class="tick">{escape(unit)}</text></svg>')
    return "".join(out), legend
