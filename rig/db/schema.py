"""The results database's tables, as the newest migration leaves them (SQLAlchemy Core).

One row per run (everything in run.json, the whole file kept in ``meta``), and beside it the run's tests
with their outcomes, measurements (with limit, source and confidence), samples (one row per sample, its
columns as a JSON object), safety trips, operator prompts, overrides, and the instruments with their
identities and calibration dates. ``benches`` holds one status row per physical bench of the lab.

Times are stored as naive UTC datetimes (SQLite keeps no zone). The schema changes only through a new
Alembic revision in ``rig/db/migrations/versions``; ``tests/test_db.py`` checks that the migrations and
this file describe the same tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

#: JSON in SQLite (text), JSONB in PostgreSQL.
Json = sa.JSON().with_variant(JSONB(), "postgresql")

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(200), nullable=False, unique=True),
    sa.Column("dut_serial", sa.String(200), index=True),
    sa.Column("tier_v", sa.Integer),
    sa.Column("rated_current_a", sa.Float),
    sa.Column("operator", sa.String(200), index=True),
    sa.Column("rig_name", sa.String(200), index=True),
    sa.Column("bench_key", sa.String(64)),
    sa.Column("rig_file", sa.Text),
    sa.Column("rig_sha256", sa.String(64)),
    sa.Column("profile_name", sa.String(200)),
    sa.Column("profile_version", sa.String(100)),
    sa.Column("profile_sha256", sa.String(64)),
    sa.Column("simulated", sa.Boolean),
    sa.Column("host", sa.String(200)),
    sa.Column("started", sa.DateTime, index=True),
    sa.Column("ended", sa.DateTime),
    sa.Column("finished", sa.Boolean, nullable=False, default=False),
    sa.Column("outcome", sa.String(40), index=True),
    sa.Column("counts", Json),
    sa.Column("meta", Json),  # run.json as it was
    sa.Column("content_hash", sa.String(64)),  # of the folder's files once the database holds all of them
    sa.Column("folder", sa.Text),
    sa.Column("source", sa.String(20)),  # "live" (fed by the session) or "sync" (imported from the folder)
    sa.Column("updated_at", sa.DateTime),
    sa.Column("calibration_expired", sa.Boolean),  # revision 0002
)

tests = sa.Table(
    "tests", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("nodeid", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(20)),  # passed | failed | error | skipped | unfinished
    sa.Column("duration_s", sa.Float),
    sa.Column("message", sa.Text),
)

measurements = sa.Table(
    "measurements", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("test", sa.Text),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(40)),
    sa.Column("low", sa.Float),
    sa.Column("high", sa.Float),
    sa.Column("verdict", sa.String(10)),
    sa.Column("limit_key", sa.String(200)),
    sa.Column("source", sa.Text),
    sa.Column("confidence", sa.String(20)),
    sa.Column("time_s", sa.Float),
    sa.Column("wall_time", sa.DateTime),
    sa.UniqueConstraint("run_pk", "seq", name="uq_measurements_run_seq"),
    # revision 0002: rig trend answers from this index alone (rig.db.queries.trend selects only these)
    sa.Index("ix_measurements_trend", "limit_key", "run_pk", "seq", "name", "value", "unit", "low", "high", "verdict"),
)

samples = sa.Table(
    "samples", metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("time_s", sa.Float),
    sa.Column("wall_time", sa.DateTime),
    sa.Column("test", sa.Text),
    sa.Column("data", Json),  # column -> value, as in samples.csv (empty cells left out)
    sa.Column("errors", sa.Text),
)

safety_trips = sa.Table(
    "safety_trips", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("test", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("time_s", sa.Float),
)

prompts = sa.Table(
    "prompts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("test", sa.Text),
    sa.Column("text", sa.Text),
    sa.Column("answer", sa.Boolean),
    sa.Column("answered_by", sa.String(100)),
    sa.Column("time", sa.String(40)),
)

overrides = sa.Table(
    "overrides", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("kind", sa.String(100)),
    sa.Column("detail", sa.Text),
)

instruments = sa.Table(
    "instruments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(100)),
    sa.Column("driver", sa.String(100)),
    sa.Column("role", sa.String(20)),
    sa.Column("resource", sa.Text),
    sa.Column("identity", sa.Text),
    sa.Column("watchdog", sa.Text),
    sa.Column("calibration_due", sa.Date),
)

# revision 0002: one row per bench of the lab, kept current by the session that owns it.
benches = sa.Table(
    "benches", metadata,
    sa.Column("bench_key", sa.String(64), primary_key=True),
    sa.Column("rig_name", sa.String(200)),
    sa.Column("owner", sa.String(200)),  # operator
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
    sa.Column("run_id", sa.String(200)),
    sa.Column("dut_serial", sa.String(200)),
    sa.Column("test", sa.Text),
    sa.Column("state", sa.String(40)),  # running | tripped | free (the session ended)
    sa.Column("outcome", sa.String(40)),  # of the last run, once it ended
    sa.Column("hottest_c", sa.Float),
    sa.Column("hottest_contact", sa.String(40)),
    sa.Column("since", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    # revision 0003: bus_v, inlet_a, trip_c, test_elapsed_s, hold (label), hold_elapsed_s, hold_remaining_s
    sa.Column("live", Json),
)

#: A run's child tables, deleted and re-filled together when a folder is synced again.
CHILDREN = (tests, measurements, samples, safety_trips, prompts, overrides, instruments)
