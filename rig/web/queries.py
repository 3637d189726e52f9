"""What the dashboard's pages read from the results database, as plain rows and a report ``Run``.

Only SELECTs: the dashboard never writes (``rig.web`` opens the database without migrating it). The
run listing and a DUT's history are ``rig.db.queries``' (the same rows as ``rig runs`` and ``rig
history``); this module adds the lab view of the bench rows, the report of one run (from its folder when
this PC can read it: the record, and the freshest view of a run in progress; else from the database's
rows), and ``rig trend``'s query read column by column for the Trend page's plot of 10 000 values.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rig.db import schema
from rig.db.queries import limit_keys, list_benches, trend_where
from rig.db.store import Database
from rig.report import Case, Result, Run, Samples, load_run


def bench_state(row: dict[str, Any]) -> str:
    """idle (no session), owned (a session holds the bench between tests), running (a test in progress),
    tripped (the safety stopped the run), stale (its session stopped updating the row: died or lost the
    database)."""
    if row["stale"]:
        return "stale"
    if row["state"] == "tripped":
        return "tripped"
    if row["state"] == "free":
        return "idle"
    return "running" if row["test"] else "owned"


def lab(db: Database, stale_after_s: float) -> list[dict[str, Any]]:
    """Every bench with its lab state and live readings (``live`` is {} when the session stored none)."""
    rows = list_benches(db, stale_after_s)
    for row in rows:
        row["lab_state"] = bench_state(row)
        row["live"] = (row.get("live") or {}) if row["lab_state"] != "idle" else {}
    rows.sort(key=lambda r: (r["rig_name"] or "", r["bench_key"]))
    return rows


class LimitKeys:
    """The limit keys stored, for the Trend page's chooser: a DISTINCT over every measurement costs
    tens of milliseconds on a large database, and the list changes only when a new plan is run."""

    def __init__(self, db: Database, ttl_s: float = 60.0) -> None:
        self.db, self.ttl_s = db, ttl_s
        self._keys: list[str] = []
        self._at = -ttl_s

    def get(self) -> list[str]:
        if time.monotonic() - self._at >= self.ttl_s:
            self._keys, self._at = limit_keys(self.db), time.monotonic()
        return self._keys


# --- one run as a report ---------------------------------------------------------------------------------


def run_record(db: Database, run_id: str) -> dict[str, Any] | None:
    runs = schema.runs
    with db.engine.connect() as connection:
        row = connection.execute(sa.select(runs.c.id, runs.c.run_id, runs.c.folder, runs.c.meta, runs.c.finished,
                                           runs.c.updated_at)
                                 .where(runs.c.run_id == run_id)).mappings().first()
    return dict(row) if row else None


def load_report_run(db: Database, record: dict[str, Any]) -> Run:
    """The report's ``Run`` of a ``run_record``: from the run folder the database points at when this PC can
    read it, else rebuilt from the database's rows (a run recorded on another rig PC)."""
    folder = Path(record["folder"]) if record["folder"] else None
    if folder is not None and (folder / "run.json").is_file():
        return load_run(folder)
    return run_from_rows(db, record)


def run_from_rows(db: Database, record: dict[str, Any]) -> Run:
    pk = record["id"]
    s, m, t = schema.samples, schema.measurements, schema.tests
    with db.engine.connect() as connection:
        samples = connection.execute(sa.select(s.c.time_s, s.c.wall_time, s.c.test, s.c.data, s.c.errors)
                                     .where(s.c.run_pk == pk).order_by(s.c.seq)).all()
        measured = connection.execute(sa.select(m.c.time_s, m.c.test, m.c.name, m.c.value, m.c.unit, m.c.low, m.c.high,
                                                m.c.verdict, m.c.limit_key, m.c.source, m.c.confidence)
                                      .where(m.c.run_pk == pk).order_by(m.c.seq)).all()
        tests = connection.execute(sa.select(t.c.nodeid, t.c.outcome, t.c.message, t.c.duration_s)
                                   .where(t.c.run_pk == pk).order_by(t.c.id)).all()
    columns: dict[str, None] = {}
    for sample in samples:
        columns.update(dict.fromkeys(sample.data or {}))
    header = ["time_s", "wall_time", "test", *columns, "errors"]

    def cells(sample: Any) -> list[str]:
        data = sample.data or {}
        wall = sample.wall_time.replace(tzinfo=dt.UTC).isoformat() if sample.wall_time else ""
        return ["" if sample.time_s is None else repr(sample.time_s), wall, sample.test or "",
                *("" if data.get(c) is None else str(data[c]) for c in columns), sample.errors or ""]

    results = [Result(r.time_s if r.time_s is not None else float("nan"), r.test or "", r.name,
                      r.value if r.value is not None else float("nan"), r.unit or "", r.low, r.high,
                      (r.verdict or "").upper(), r.limit_key or "", r.source or "", r.confidence or "")
               for r in measured]
    # pytest's verdicts (junit.xml) as stored; a test known only by its measurements (no junit.xml: the run
    # is still going or was killed) has none, and the report then reads the measurements, as from a folder.
    cases = [Case(r.nodeid, r.outcome, r.message or "", r.duration_s) for r in tests
             if r.outcome in ("passed", "failed", "error", "skipped")] or None
    notes = ["rebuilt from the results database (the run folder is not readable on this PC)"]
    return Run(Path(record["folder"] or record["run_id"]), dict(record["meta"] or {}),
               Samples.from_rows(header, (cells(x) for x in samples)), results, cases, notes)


# --- the Trend page ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoints:
    """One limit key across runs, oldest first, column by column (10 000 values cost no dict per row):
    the run's start (POSIX seconds), its primary key, and the measurement's name, value, limits, verdict."""

    started: list[float]
    run_pk: list[int]
    name: list[str]
    value: list[float | None]
    low: list[float | None]
    high: list[float | None]
    verdict: list[str | None]
    unit: str

    def __len__(self) -> int:
        return len(self.started)


def _epoch(value: Any) -> float:
    """A stored start as POSIX seconds: SQLite hands back text (read raw: parsing it is the costly part of
    10 000 rows through the column type), PostgreSQL a naive UTC datetime."""
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return when.replace(tzinfo=dt.UTC).timestamp()


def trend_points(db: Database, key: str, *, dut: str | None = None, rig: str | None = None,
                 since: dt.datetime | None = None, until: dt.datetime | None = None) -> TrendPoints:
    """What ``rig trend`` reads (``rig.db.queries.trend``, the same filters and order), only the columns a
    plot and its figures need, from ``ix_measurements_trend`` and ``ix_runs_started``."""
    m, runs = schema.measurements, schema.runs
    started = sa.type_coerce(runs.c.started, sa.String) if db.engine.dialect.name == "sqlite" else runs.c.started
    query = trend_where(sa.select(started, m.c.run_pk, m.c.name, m.c.value, m.c.low, m.c.high, m.c.verdict, m.c.unit),
                         key, dut, rig, since, until).order_by(runs.c.started, runs.c.id, m.c.seq)
    with db.engine.connect() as connection:
        rows = connection.execute(query).all()
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(8)]
    return TrendPoints([_epoch(s) for s in columns[0]], list(columns[1]), list(columns[2]), list(columns[3]),
                       list(columns[4]), list(columns[5]), list(columns[6]), (rows[-1][7] or "") if rows else "")


def trend_newest(db: Database, key: str, count: int, *, dut: str | None = None, rig: str | None = None,
                 since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The newest ``count`` rows of the same trend, newest first, with their run, DUT and rig."""
    m, runs = schema.measurements, schema.runs
    query = trend_where(sa.select(runs.c.started, runs.c.run_id, runs.c.dut_serial.label("dut"),
                                   runs.c.rig_name.label("rig"), m.c.name, m.c.value, m.c.unit, m.c.low, m.c.high,
                                   m.c.verdict), key, dut, rig, since, until)
    query = query.order_by(runs.c.started.desc(), runs.c.id.desc(), m.c.seq.desc()).limit(count)
    with db.engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    for row in rows:
        if row["started"] is not None:
            row["started"] = row["started"].replace(tzinfo=dt.UTC)
    return rows
