"""Performance benchmark of the rig orchestrator: ``python -m bench [--quick] [--json PATH]``.

Every figure is a measurement against a goal, printed with the ratio to its goal and PASS/MISS, never
an assertion: the numbers depend on the machine (see ``docs/performance.md`` for the figures and how
each one is taken). One module per figure:

- ``bench.sample_rate``: the rig's sampler vs a hand-written pyvisa + pymodbus loop (``sample_rate_ratio``
  on the default bench; ``sample_rate_ratio_no_gap`` and ``..._no_gap_ext`` on a bench without EA gaps, the
  simulator in this process and in its own)
- ``bench.concurrency``: sample period of three instruments at 5 ms latency over the simulator's
  pipelined floor (``concurrent_period_ratio``; ``concurrent_period_ms``, ``sequential_period_ms``)
- ``bench.trip``: limit excursion in the model to ``OUTP OFF`` at the supply (``trip_latency_ms``,
  ``trip_latency_periods``; ``trip_latency_ms_no_gap`` with a supply without the EA gap)
- ``bench.cli_runs``: ``rig run`` / ``rig --help`` timed in subprocesses (``endurance_1h_wall_s``,
  ``suite_wall_s``, ``cli_help_s``)
- ``bench.recorder_memory``: RSS growth over one million recorded samples (``rss_growth_mb_1m_samples``,
  ``recorder_samples_per_s``)
- ``bench.db``: the results database: the sampler's rate with the session's database feed over without
  (``db_sampler_ratio_sqlite``, ``..._postgresql``), samples stored per second (``db_samples_per_s_*``),
  ``rig history`` / ``rig trend`` on 10 000 runs x 60 measurements (``history_wall_s_*``, ``trend_wall_s_*``)
- ``bench.web``: the lab dashboard's Runs and Trend pages on that database, server time
  (``web_runs_ms_*``, ``web_trend_ms_*``)

Shared pieces: ``bench.specs`` (the simulated benches used), ``bench.simproc`` (a simulated bench in its
own process), ``bench.hand_loop`` (the plain pyvisa + pymodbus baseline), ``bench.machine``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured figure. ``ratio`` is ``value / goal``; PASS is ``value >= goal`` or ``value <= goal``
    as ``op`` says. A figure without a goal is reported beside another one (``goal`` None)."""

    name: str
    value: float
    unit: str
    goal: float | None = None
    op: str = "<="  # "<=" or ">="
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.goal is None or self.goal == 0 or not math.isfinite(self.value):
            return None
        return self.value / self.goal

    @property
    def passed(self) -> bool | None:
        if self.goal is None:
            return None
        if not math.isfinite(self.value):
            return False
        return self.value >= self.goal if self.op == ">=" else self.value <= self.goal

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: "-"}[self.passed]

    def as_json(self) -> dict[str, Any]:
        return {
            "value": _finite_or_none(self.value),
            "unit": self.unit,
            "goal": self.goal,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "op": self.op if self.goal is not None else None,
            "pass": self.passed,
            "note": self.note,
            "detail": {k: _plain(v) for k, v in self.detail.items()},
        }


def _finite_or_none(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return _finite_or_none(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


#: Every figure ``python -m bench`` reports, in order (the JSON has each of them, plus ``machine``).
FIGURES = (
    "sample_rate_ratio",
    "sample_rate_ratio_no_gap",
    "sample_rate_ratio_no_gap_ext",
    "concurrent_period_ratio",
    "concurrent_period_ms",
    "sequential_period_ms",
    "trip_latency_ms",
    "trip_latency_periods",
    "trip_latency_ms_no_gap",
    "endurance_1h_wall_s",
    "suite_wall_s",
    "cli_help_s",
    "rss_growth_mb_1m_samples",
    "recorder_samples_per_s",
    "db_sampler_ratio_sqlite",
    "db_samples_per_s_sqlite",
    "db_sampler_ratio_postgresql",
    "db_samples_per_s_postgresql",
    "history_wall_s_sqlite",
    "trend_wall_s_sqlite",
    "history_wall_s_postgresql",
    "trend_wall_s_postgresql",
    "web_runs_ms_sqlite",
    "web_trend_ms_sqlite",
    "web_runs_ms_postgresql",
    "web_trend_ms_postgresql",
)
