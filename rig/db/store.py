"""The results database: open (and upgrade in place), write a run, read it back.

    db = Database("sqlite:///results/rig.sqlite")     # or postgresql://user@host/lab
    db.write_folder(read_folder(Path("results/20261128-093000-INLET-42")), content_hash(folder))

Opening runs the Alembic migrations shipped in ``rig/db/migrations`` up to the newest revision, so a
lab's database upgrades in place when a rig PC gets a newer ``nacs-rig``. On PostgreSQL an advisory
lock makes two rig PCs that start at once migrate one after the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rig.db import schema
from rig.db.records import FolderRun

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x4E414353  # "NACS": pg_advisory_xact_lock key while migrating
SQLITE_BUSY_TIMEOUT_S = 5.0  # a writer waits this long for another writer's lock, then gives up
SAMPLE_CHUNK = 2000
#: The newest migration's revision (a test checks it against rig/db/migrations): a database already there
#: is recognised without importing Alembic, which costs a command a good part of its start.
HEAD_REVISION = "0003"


def make_engine(url: str) -> sa.Engine:
    """An engine for ``sqlite:///path`` or ``postgresql://...`` (driven by psycopg 3)."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, record: Any) -> None:
            cursor = connection.cursor()
            # WAL: readers (rig runs, rig trend) never wait for the writer of a running session.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""


def current_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest); nothing to do when it is there."""
    with engine.connect() as connection:
        if revision == "head" and current_revision(connection) == HEAD_REVISION:
            return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unreadable database URL>"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Database:
    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if upgrade:
            migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def name(self) -> str:
        return display_url(self.url)

    # -- runs -------------------------------------------------------------------------------------

    @staticmethod
    def run_pk(connection: sa.Connection, run_id: str) -> int | None:
        return connection.execute(sa.select(schema.runs.c.id).where(schema.runs.c.run_id == run_id)).scalar()

    def run_hash(self, run_id: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(schema.runs.c.content_hash)
                                      .where(schema.runs.c.run_id == run_id)).scalar()

    @staticmethod
    def put_run(connection: sa.Connection, row: Mapping[str, Any], *, replace_children: bool) -> int:
        """Insert or update the ``runs`` row of ``row["run_id"]``; with ``replace_children`` its tests,
        measurements, samples, trips, prompts, overrides and instruments are deleted first."""
        runs = schema.runs
        # run.json does not name the bench; keep what the live session stored.
        values = {**{k: v for k, v in row.items() if not (k == "bench_key" and v is None)}, "updated_at": now_utc()}
        pk = Database.run_pk(connection, row["run_id"])
        if pk is None:
            return connection.execute(runs.insert().values(values)).inserted_primary_key[0]
        connection.execute(runs.update().where(runs.c.id == pk).values(values))
        if replace_children:
            for table in schema.CHILDREN:
                connection.execute(table.delete().where(table.c.run_pk == pk))
        return pk

    @staticmethod
    def insert(connection: sa.Connection, table: sa.Table, pk: int, rows: Iterable[Mapping[str, Any]]) -> int:
        batch = [{**r, "run_pk": pk} for r in rows]
        if batch:
            connection.execute(table.insert(), batch)
        return len(batch)

    @staticmethod
    def put_meta_children(connection: sa.Connection, pk: int, tests: list[dict[str, Any]],
                          children: Mapping[str, list[dict[str, Any]]]) -> None:
        """Replace the tests and the run.json-derived rows (trips, prompts, overrides, instruments)."""
        for table in (schema.tests, schema.safety_trips, schema.prompts, schema.overrides, schema.instruments):
            connection.execute(table.delete().where(table.c.run_pk == pk))
        Database.insert(connection, schema.tests, pk, tests)
        for name, rows in children.items():
            Database.insert(connection, schema.metadata.tables[name], pk, rows)

    def write_folder(self, run: FolderRun, content_hash: str, source: str = "sync") -> int:
        """Store a whole run folder in one transaction, replacing what the database held of that run.
        Returns the number of samples stored."""
        count = 0
        with self.engine.begin() as connection:
            pk = self.put_run(connection, {**run.run, "content_hash": None, "source": source}, replace_children=True)
            self.insert(connection, schema.measurements, pk, ({**m, "seq": i} for i, m in enumerate(run.measurements)))
            self.put_meta_children(connection, pk, run.tests, run.children)
            chunk: list[dict[str, Any]] = []
            for sample in run.samples():
                chunk.append({**sample, "seq": count})
                count += 1
                if len(chunk) >= SAMPLE_CHUNK:
                    self.insert(connection, schema.samples, pk, chunk)
                    chunk = []
            self.insert(connection, schema.samples, pk, chunk)
            connection.execute(schema.runs.update().where(schema.runs.c.id == pk).values(content_hash=content_hash))
        return count

    # -- benches ----------------------------------------------------------------------------------

    @staticmethod
    def put_bench(connection: sa.Connection, row: Mapping[str, Any]) -> None:
        benches = schema.benches
        values = {**row, "updated_at": now_utc()}
        done = connection.execute(benches.update().where(benches.c.bench_key == row["bench_key"]).values(values))
        if done.rowcount == 0:
            connection.execute(benches.insert().values(values))
