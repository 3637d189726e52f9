"""Bench status for the lab (``benches``), ``runs.calibration_expired`` (filled in for the runs already
stored, from their instruments' calibration dates), and a covering index for ``rig trend``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TREND_COLUMNS = ["limit_key", "run_pk", "seq", "name", "value", "unit", "low", "high", "verdict"]


def upgrade() -> None:
    op.create_table(
        "benches",
        sa.Column("bench_key", sa.String(64), primary_key=True),
        sa.Column("rig_name", sa.String(200)),
        sa.Column("owner", sa.String(200)),
        sa.Column("host", sa.String(200)),
        sa.Column("pid", sa.Integer),
        sa.Column("run_id", sa.String(200)),
        sa.Column("dut_serial", sa.String(200)),
        sa.Column("test", sa.Text),
        sa.Column("state", sa.String(40)),
        sa.Column("outcome", sa.String(40)),
        sa.Column("hottest_c", sa.Float),
        sa.Column("hottest_contact", sa.String(40)),
        sa.Column("since", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("calibration_expired", sa.Boolean))
    # rig trend reads one limit key across every run: an index holding every column it shows answers
    # without visiting the table (a limit's values are scattered one per run through it).
    op.create_index("ix_measurements_trend", "measurements", TREND_COLUMNS)
    # A run used an expired calibration when any of its instruments was due before the run's day.
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("started", sa.DateTime),
                    sa.column("calibration_expired", sa.Boolean))
    instruments = sa.table("instruments", sa.column("run_pk", sa.Integer), sa.column("calibration_due", sa.Date))
    connection = op.get_bind()
    due = dict(connection.execute(
        sa.select(instruments.c.run_pk, sa.func.min(instruments.c.calibration_due))
        .where(instruments.c.calibration_due.is_not(None)).group_by(instruments.c.run_pk)).all())
    values = [{"pk": run_pk, "expired": started is not None and run_pk in due and due[run_pk] < started.date()}
              for run_pk, started in connection.execute(sa.select(runs.c.id, runs.c.started)).all()]
    if values:
        connection.execute(runs.update().where(runs.c.id == sa.bindparam("pk"))
                           .values(calibration_expired=sa.bindparam("expired")), values)

def downgrade() -> None:
    op.drop_index("ix_measurements_trend", "measurements")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("calibration_expired")
    op.drop_table("benches")
