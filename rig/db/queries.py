"""What ``rig runs``, ``rig history``, ``rig trend`` and ``rig benches`` ask the database.

Each returns plain rows (dicts with times as aware UTC datetimes), so the commands can print a table,
JSON or CSV from the same rows. The indexes they rely on: runs(dut_serial), runs(started),
runs(rig_name), runs(operator), runs(outcome); measurements(run_pk, seq) and
ix_measurements_trend (limit_key, run_pk, seq and the columns rig trend shows).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from rig.db.schema import benches as benches_table
from rig.db.schema import measurements, runs
from rig.db.store import Database, now_utc

STALE_AFTER_S = 30.0  # a running session refreshes its bench row every 2 s; silence this long means it is gone


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) else v for k, v in row.items()}


TIMES = ("started", "ended", "since", "updated_at", "wall_time")


def _fetch(db: Database, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """Rows as dicts, times as aware UTC datetimes; lean per row, since ``rig trend`` returns thousands."""
    with db.engine.connect() as connection:
        result = connection.execute(query)
        keys = list(result.keys())
        rows = result.all()
    times = [k for k in keys if k in TIMES]
    out = []
    for values in rows:
        row = dict(zip(keys, values, strict=True))
        for key in times:
            if row[key] is not None:
                row[key] = row[key].replace(tzinfo=dt.UTC)
        out.append(row)
    return out


def _like(column: sa.ColumnElement[Any], pattern: str) -> sa.ColumnElement[bool]:
    """``*`` matches anything (``--dut 'LOT7-*'``); otherwise exact."""
    if "*" in pattern:
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
        return column.like(escaped, escape="\\")
    return column == pattern


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(dt.UTC).replace(tzinfo=None)


def list_runs(db: Database, *, dut: str | None = None, rig: str | None = None, since: dt.datetime | None = None,
              until: dt.datetime | None = None, outcome: str | None = None, operator: str | None = None,
              limit: int | None = 100) -> list[dict[str, Any]]:
    """Newest first. ``since``/``until`` are datetimes (aware, or naive UTC) on the run's start."""
    m = measurements
    n_measurements = (sa.select(sa.func.count()).where(m.c.run_pk == runs.c.id).scalar_subquery())
    n_fail = (sa.select(sa.func.count()).where(m.c.run_pk == runs.c.id, m.c.verdict == "FAIL").scalar_subquery())
    query = sa.select(
        runs.c.run_id, runs.c.started, runs.c.dut_serial.label("dut"), runs.c.tier_v, runs.c.rig_name.label("rig"),
        runs.c.operator, runs.c.outcome, runs.c.finished, runs.c.simulated, runs.c.calibration_expired,
        runs.c.counts, n_measurements.label("measurements"), n_fail.label("failed_measurements"),
        runs.c.source, (runs.c.content_hash.is_not(None)).label("complete"),
    )
    for column, value in ((runs.c.dut_serial, dut), (runs.c.rig_name, rig), (runs.c.operator, operator)):
        if value:
            query = query.where(_like(column, value))
    if outcome:
        query = query.where(runs.c.outcome == outcome)
    if since is not None:
        query = query.where(runs.c.started >= _utc(since))
    if until is not None:
        query = query.where(runs.c.started < _utc(until))
    query = query.order_by(runs.c.started.desc(), runs.c.id.desc())
    if limit:
        query = query.limit(limit)
    return _fetch(db, query)


MEASUREMENT_COLUMNS = (measurements.c.test, measurements.c.name, measurements.c.value, measurements.c.unit,
                       measurements.c.low, measurements.c.high, measurements.c.verdict,
                       measurements.c.limit_key, measurements.c.source, measurements.c.confidence)


def history(db: Database, dut: str) -> list[dict[str, Any]]:
    """Every measurement of every run of one DUT serial, oldest run first (a run without measurements
    gives one row with the measurement fields empty)."""
    joined = runs.outerjoin(measurements, measurements.c.run_pk == runs.c.id)
    query = (sa.select(runs.c.run_id, runs.c.started, runs.c.rig_name.label("rig"), runs.c.operator,
                       runs.c.outcome, *MEASUREMENT_COLUMNS)
             .select_from(joined).where(runs.c.dut_serial == dut)
             .order_by(runs.c.started, runs.c.id, measurements.c.seq))
    return _fetch(db, query)


def trend(db: Database, limit_key: str, *, dut: str | None = None, rig: str | None = None,
          since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every measurement against one profile limit, across runs, oldest first, with its limits. Only the
    columns of ``ix_measurements_trend`` are read from measurements, so the index alone answers."""
    m = measurements
    query = trend_where(sa.select(runs.c.started, runs.c.run_id, runs.c.dut_serial.label("dut"),
                                  runs.c.rig_name.label("rig"), m.c.name, m.c.value, m.c.unit, m.c.low, m.c.high,
                                  m.c.verdict),
                        limit_key, dut, rig, since, until)
    return _fetch(db, query.order_by(runs.c.started, runs.c.id, m.c.seq))


def trend_where(query: sa.Select[Any], key: str, dut: str | None, rig: str | None, since: dt.datetime | None,
                until: dt.datetime | None) -> sa.Select[Any]:
    """The measurements against one limit key, joined to their runs and filtered (``*`` in DUT or rig
    matches anything): shared by ``rig trend`` and the dashboard's Trend page."""
    m = measurements
    query = query.select_from(m.join(runs, m.c.run_pk == runs.c.id)).where(m.c.limit_key == key)
    if dut:
        query = query.where(_like(runs.c.dut_serial, dut))
    if rig:
        query = query.where(_like(runs.c.rig_name, rig))
    if since is not None:
        query = query.where(runs.c.started >= _utc(since))
    if until is not None:
        query = query.where(runs.c.started < _utc(until))
    return query


def limit_keys(db: Database) -> list[str]:
    with db.engine.connect() as connection:
        return [k for (k,) in connection.execute(sa.select(measurements.c.limit_key).distinct()
                                                 .order_by(measurements.c.limit_key)) if k]


def list_benches(db: Database, stale_after_s: float = STALE_AFTER_S) -> list[dict[str, Any]]:
    """Every bench of the lab: who holds it, doing what, and how old its last update is. A row whose
    session stopped updating it while not free is ``stale`` (the session died or lost the database)."""
    now = now_utc()
    with db.engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(sa.select(benches_table)
                                                             .order_by(benches_table.c.rig_name))]
    for row in rows:
        age = (now - row["updated_at"]).total_seconds() if row["updated_at"] else None
        row["age_s"] = None if age is None else round(age, 1)
        row["stale"] = row["state"] != "free" and (age is None or age > stale_after_s)
    return [_aware(r) for r in rows]
