"""Recording a run: one folder per run with samples.csv, measurements.csv and run.json.

Rows are written as they are taken and flushed at once, so a crash (even ``kill -9``) keeps every row
already sampled: the data sits in the kernel's page cache and reaches the file whatever happens to
this process. ``run.json`` is written at the start with ``"finished": false`` and rewritten atomically
(temp file + rename) as the run goes on and when it ends, so a reader never sees half a file and an
interrupted run says it did not finish.

Files:
- ``samples.csv``: one wide row per sample: ``time_s`` (rig seconds since the run started), ``wall_time`` (ISO 8601),
  ``test`` (pytest node id, empty between tests), one column per polled quantity (see
  ``rig.sampler.columns``), and ``errors``.
- ``measurements.csv``: ``time_s, wall_time, test, name, value, unit, low, high, verdict, limit,
  source, confidence``; verdict is PASS or FAIL.
- ``run.json``: ``run_id``, ``dut`` {serial, tier_v, rated_current_a}, ``tier``, ``operator``,
  ``started``/``ended``, ``rig`` {name, file, sha256, simulated, time_scale, sim_faults}, ``profile``
  {name, version, path, sha256}, ``limits`` (the profile's limits as used: key -> {low, high, unit,
  source, confidence}), ``effective_limits`` (setpoint ceilings and trip levels with their sources),
  ``instruments`` {name: {driver, role, resource, identity, watchdog, calibration_due}}, ``software``,
  ``planned_tests`` (the node ids selected to run), ``safety_trips`` [{test, reason, time_s, expected}]
  (``expected``: inside the test's ``rig.expect_trip`` block), ``prompts``, ``calibration_override``, and at the end
  ``finished``, ``outcome`` (running | passed | failed | tripped | interrupted | error), ``counts``,
  ``faults``, ``final_safe_state``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.sampler import Sample, row

SAMPLE_HEAD = ("time_s", "wall_time", "test")
MEASUREMENT_COLUMNS = ("time_s", "wall_time", "test", "name", "value", "unit", "low", "high", "verdict",
                       "limit", "source", "confidence")


@dataclass(frozen=True)
class Measurement:
    test: str
    name: str
    value: float
    unit: str
    low: float | None
    high: float | None
    passed: bool
    limit: str  # profile key
    source: str
    confidence: str
    time_s: float
    wall_time: float

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def iso(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds")


def run_id(dut: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", dut).strip("_") or "dut"
    return f"{now:%Y%m%d-%H%M%S}-{safe}"


def _cell(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class RunRecorder:
    """Writes one run's folder. Thread-safe: the sampler thread and the plan thread both write."""

    def __init__(self, folder: Path, metadata: dict[str, Any], columns: Sequence[str], origin: float = 0.0) -> None:
        """``origin``: the rig-clock reading at the start of the run; ``time_s`` columns count from it."""
        self.folder = folder
        self.origin = origin
        folder.mkdir(parents=True, exist_ok=False)
        self.metadata = {**metadata, "finished": False, "outcome": "running"}
        self.columns = list(columns)
        self._lock = threading.Lock()
        self.test = ""
        self.sample_count = 0
        self.measurements: list[Measurement] = []
        self._samples_file = open(folder / "samples.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._samples = csv.writer(self._samples_file)
        self._samples.writerow([*SAMPLE_HEAD, *self.columns, "errors"])
        self._measurements_file = open(folder / "measurements.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._measurements = csv.writer(self._measurements_file)
        self._measurements.writerow(MEASUREMENT_COLUMNS)
        self._samples_file.flush()
        self._measurements_file.flush()
        self.write_metadata()

    # -- rows ------------------------------------------------------------------------------------

    def write_sample(self, sample: Sample) -> None:
        values = row(sample)
        errors = "; ".join(str(e) for e in sample.errors.values())
        with self._lock:
            if self._samples_file.closed:
                return
            self._samples.writerow([f"{sample.time_s - self.origin:.3f}", iso(sample.wall_time), self.test,
                                    *(_cell(values.get(c, "")) for c in self.columns), errors])
            self._samples_file.flush()
            self.sample_count += 1

    def write_measurement(self, m: Measurement) -> None:
        with self._lock:
            self.measurements.append(m)
            if self._measurements_file.closed:
                return
            self._measurements.writerow([
                f"{m.time_s - self.origin:.3f}", iso(m.wall_time), m.test, m.name, _cell(m.value), m.unit,
                "" if m.low is None else _cell(m.low), "" if m.high is None else _cell(m.high),
                m.verdict, m.limit, m.source, m.confidence,
            ])
            self._measurements_file.flush()

    # -- metadata --------------------------------------------------------------------------------

    def update(self, **fields: Any) -> None:
        """Merge fields into run.json and rewrite it atomically."""
        with self._lock:
            self.metadata.update(fields)
        self.write_metadata()

    def append(self, key: str, item: Any) -> None:
        with self._lock:
            self.metadata.setdefault(key, []).append(item)
        self.write_metadata()

    def write_metadata(self) -> None:
        with self._lock:
            text = json.dumps(self.metadata, indent=2, default=str)
            tmp = self.folder / "run.json.tmp"
            tmp.write_text(text + "\n", encoding="utf-8")
            os.replace(tmp, self.folder / "run.json")

    def finish(self, outcome: str, **fields: Any) -> None:
        self.update(finished=True, outcome=outcome, ended=dt.datetime.now().astimezone().isoformat(), **fields)
        with self._lock:
            self._samples_file.close()
            self._measurements_file.close()
