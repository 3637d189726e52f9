"""``python -m bench [--quick] [--json PATH] [--only MODULE ...]``: run every benchmark, print each figure
with its goal, the ratio to the goal and PASS/MISS, and optionally write them all as one JSON object::

    {"sample_rate_ratio": {"value": 1.01, "unit": "x", "goal": 0.9, "ratio": 1.12, "op": ">=", "pass": true,
                           "note": "...", "detail": {...}},
     ...,
     "machine": {"cpu": "...", "cores_logical": 2, "python": "3.11.7", ..., "quick": false, "bench_wall_s": 95.1}}

A figure whose benchmark failed is still present, with ``"value": null`` and the error in its note.
Exit status 0 whatever the figures say (they are measurements, not tests); 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
import time
import traceback
from pathlib import Path

from bench import FIGURES, Figure
from bench.machine import machine, one_line

#: Module -> the figures it reports (the fallback names if it fails).
MODULES = {
    "sample_rate": ("sample_rate_ratio", "sample_rate_ratio_no_gap", "sample_rate_ratio_no_gap_ext"),
    "concurrency": ("concurrent_period_ratio", "concurrent_period_ms", "sequential_period_ms"),
    "trip": ("trip_latency_ms", "trip_latency_periods", "trip_latency_ms_no_gap"),
    "cli_runs": ("endurance_1h_wall_s", "suite_wall_s", "cli_help_s"),
    "recorder_memory": ("rss_growth_mb_1m_samples", "recorder_samples_per_s"),
    "db": ("db_sampler_ratio_sqlite", "db_samples_per_s_sqlite", "db_sampler_ratio_postgresql",
           "db_samples_per_s_postgresql", "history_wall_s_sqlite", "trend_wall_s_sqlite",
           "history_wall_s_postgresql", "trend_wall_s_postgresql"),
    "web": ("web_runs_ms_sqlite", "web_trend_ms_sqlite", "web_runs_ms_postgresql", "web_trend_ms_postgresql"),
}
assert sorted(n for names in MODULES.values() for n in names) == sorted(FIGURES)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}".rstrip()


def _line(f: Figure) -> str:
    goal = f"{f.op} {_fmt(f.goal, f.unit)}" if f.goal is not None else "-"
    ratio = f"{f.ratio:.3f}" if f.ratio is not None else "-"
    return f"{f.name:<30} {_fmt(f.value, f.unit):>14} {goal:>16} {ratio:>7}  {f.verdict}"


HEADER = f"{'figure':<30} {'value':>14} {'goal':>16} {'ratio':>7}  verdict"


def run_module(name: str, quick: bool) -> list[Figure]:
    try:
        module = importlib.import_module(f"bench.{name}")
        return list(module.run(quick))
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        note = f"benchmark failed: {type(exc).__name__}: {exc}"
        return [Figure(n, float("nan"), "", None, "<=", note) for n in MODULES[name]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure and the machine as JSON")
    parser.add_argument("--quick", action="store_true", help="a reduced run (smoke test): fewer and shorter "
                        "rounds, 100k recorded samples, the suite reduced to -k proximity")
    parser.add_argument("--only", action="append", choices=sorted(MODULES), metavar="MODULE",
                        help=f"run only these benchmark modules (repeatable): {', '.join(MODULES)}")
    args = parser.parse_args(argv)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    started = time.perf_counter()
    info = machine()
    print(f"machine: {one_line(info)}")
    print(f"run: {'QUICK (reduced; not comparable) ' if args.quick else ''}"
          f"python -m bench{' --quick' if args.quick else ''}\n", flush=True)
    print(HEADER, flush=True)
    figures: list[Figure] = []
    for name in args.only or MODULES:
        t0 = time.perf_counter()
        produced = run_module(name, args.quick)
        for figure in produced:
            print(_line(figure))
            if figure.note:
                print(f"{'':<32}{figure.note}")
        print(f"{'':<32}({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
        figures += produced
    wall = time.perf_counter() - started

    print(f"\n{HEADER}")
    for figure in figures:
        print(_line(figure))
    missed = [f.name for f in figures if f.passed is False]
    print(f"\n{len(figures)} figures, {len(missed)} missed{': ' + ', '.join(missed) if missed else ''}; "
          f"{wall:.1f} s")

    if args.json is not None:
        out: dict[str, object] = {f.name: f.as_json() for f in figures}
        out["machine"] = {**info, "quick": args.quick, "bench_wall_s": round(wall, 2),
                          "modules": list(args.only or MODULES)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
