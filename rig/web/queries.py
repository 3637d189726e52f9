"""What the dashboard's pages read from the results database, as plain rows and a report ``Run``.

Only SELECTs: the dashboard never writes (``rig.web`` opens the database without migrating it). The
run listing, a DUT's history and a limit's trend are ``rig.db.queries``' (the same rows as ``rig runs``,
``rig history``, ``rig trend``); this module adds the lab view of the bench rows and the report of one
run, from its folder when this PC can read it (the record, and the freshest view of a run in progress)
or else from the database's rows.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rig.db import schema
from rig.db.queries import limit_keys, list_benches
from rig.db.store import Database
from rig.report import Case, Result, Run, Samples, load_run

#: Lab states, in the order a lab lead looks for them.
STATES = ("tripped", "stale", "running", "owned", "idle")


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
