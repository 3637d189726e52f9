"""First schema: runs, tests, measurements, samples, safety trips, prompts, overrides, instruments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _run_fk() -> sa.Column:
    return sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(200), nullable=False, unique=True),
        sa.Column("dut_serial", sa.String(200)),
        sa.Column("tier_v", sa.Integer),
        sa.Column("rated_current_a", sa.Float),
        sa.Column("operator", sa.String(200)),
        sa.Column("rig_name", sa.String(200)),
        sa.Column("bench_key", sa.String(64)),
        sa.Column("rig_file", sa.Text),
        sa.Column("rig_sha256", sa.String(64)),
        sa.Column("profile_name", sa.String(200)),
        sa.Column("profile_version", sa.String(100)),
        sa.Column("profile_sha256", sa.String(64)),
        sa.Column("simulated", sa.Boolean),
        sa.Column("host", sa.String(200)),
        sa.Column("started", sa.DateTime),
        sa.Column("ended", sa.DateTime),
        sa.Column("finished", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(40)),
        sa.Column("counts", Json),
        sa.Column("meta", Json),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("folder", sa.Text),
        sa.Column("source", sa.String(20)),
        sa.Column("updated_at", sa.DateTime),
    )
    for column in ("dut_serial", "operator", "rig_name", "started", "outcome"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    op.create_table(
        "tests",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("nodeid", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20)),
        sa.Column("duration_s", sa.Float),
        sa.Column("message", sa.Text),
    )
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
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
    )
    op.create_table(
        "samples",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("time_s", sa.Float),
        sa.Column("wall_time", sa.DateTime),
        sa.Column("test", sa.Text),
        sa.Column("data", Json),
        sa.Column("errors", sa.Text),
    )
    op.create_table(
        "safety_trips",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("test", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("time_s", sa.Float),
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("test", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("answer", sa.Boolean),
        sa.Column("answered_by", sa.String(100)),
        sa.Column("time", sa.String(40)),
    )
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("kind", sa.String(100)),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("name", sa.String(100)),
        sa.Column("driver", sa.String(100)),
        sa.Column("role", sa.String(20)),
        sa.Column("resource", sa.Text),
        sa.Column("identity", sa.Text),
        sa.Column("watchdog", sa.Text),
        sa.Column("calibration_due", sa.Date),
    )
    for table in ("tests", "safety_trips", "prompts", "overrides", "instruments"):
        op.create_index(f"ix_{table}_run_pk", table, ["run_pk"])


def downgrade() -> None:
    for table in ("instruments", "overrides", "prompts", "safety_trips", "samples", "measurements", "tests", "runs"):
        op.drop_table(table)
