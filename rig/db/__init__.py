"""The results database: the lab's index of every run (the CSV files stay the record).

Where it is, first match wins:

1. ``--db URL`` on the command line;
2. the environment variable ``RIG_DATABASE_URL``;
3. the rig config's ``[database] url_env = "NAME"``: the environment variable ``NAME`` holds the URL,
   so the URL and its password never sit in a config file that is copied from PC to PC;
4. the embedded default, an SQLite file ``<results>/rig.sqlite`` (nothing to install or set up).

``off`` (as the URL) disables the database. Modules: ``schema`` (tables), ``store`` (open, migrate,
write), ``records`` (rows from run folders), ``feed`` (a running session's writer thread), ``sync``
(``rig sync``), ``queries`` (``rig runs``, ``history``, ``trend``, ``benches``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_URL = "RIG_DATABASE_URL"
SQLITE_NAME = "rig.sqlite"
OFF = ("off", "none", "")


@dataclass(frozen=True)
class Location:
    """Which database to use and why (for messages); ``url`` is None when there is none to use."""

    url: str | None
    origin: str

    @property
    def problem(self) -> str | None:
        return None if self.url else self.origin


def locate(results: str | Path = "results", rig_config: Any = None, explicit: str | None = None) -> Location:
    if explicit is not None:
        return _location(explicit, "--db")
    env = os.environ.get(ENV_URL)
    if env is not None:
        return _location(env, f"${ENV_URL}")
    name = getattr(rig_config, "database_url_env", None)
    if name:
        value = os.environ.get(name)
        if value is None:
            return Location(None, f"the rig config names ${name} ([database] url_env) but it is not set")
        return _location(value, f"${name} (rig config [database] url_env)")
    path = (Path(results) / SQLITE_NAME).resolve()
    return Location(f"sqlite:///{path}", f"default {path}")


def _location(url: str, origin: str) -> Location:
    if url.strip().lower() in OFF:
        return Location(None, f"disabled by {origin}")
    return Location(url.strip(), origin)
