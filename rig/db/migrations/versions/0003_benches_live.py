"""Live readings on a bench's status row (``benches.live``), for the lab dashboard (``rig serve``): bus
voltage, inlet current, the hottest contact's trip limit, the current test's elapsed time and the hold in
progress (label, elapsed, at most remaining), as one JSON object the session rewrites every 2 s.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("benches") as batch:
        batch.add_column(sa.Column("live", sa.JSON().with_variant(JSONB(), "postgresql")))


def downgrade() -> None:
    with op.batch_alter_table("benches") as batch:
        batch.drop_column("live")
