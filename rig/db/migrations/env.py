"""Alembic environment for the results database: migrations run on a connection the rig hands over
(``rig.db.store.migrate``), never from a URL in an ini file."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
