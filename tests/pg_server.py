"""A throw-away PostgreSQL server for the tests: the machine's ``initdb`` and ``pg_ctl`` on a temporary
folder, listening on a unix socket only (no TCP port to collide with anything).

PostgreSQL refuses to run as root: as root (CI, this machine) the server runs as the ``postgres`` user
(created by Debian's package) through ``runuser``. ``.ci/run`` installs PostgreSQL when ``initdb`` is
missing, so these tests run in CI rather than skip.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class PostgresServer:
    def __init__(self) -> None:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise FileNotFoundError("PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="rig-pg-"))
        self.data = self.folder / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "rig", "-E", "UTF8", "--no-sync")
        self.databases = 0
        atexit.register(self.close)  # a server is never left behind, even if the caller forgets to close it

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        options = (f"-k {self.folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=50")
        self._run(self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w",
                  "-t", "60", "start")

    def stop(self) -> None:
        """Fast shutdown: every client connection is cut, as when the lab's server goes away."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://rig@/{database}?host={self.folder}"

    def new_database(self) -> str:
        import psycopg

        self.databases += 1
        name = f"rig_test_{self.databases}"
        with psycopg.connect(host=str(self.folder), user="rig", dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        if self.folder.exists():
            with contextlib.suppress(Exception):
                self.stop()
            shutil.rmtree(self.folder, ignore_errors=True)
