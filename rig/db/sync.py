"""``rig sync``: bring the database up to date with run folders (the CSV files are the record).

A run is identified by its id (run.json ``run_id``, else the folder's name) and its content hash (of
run.json, samples.csv, measurements.csv and junit.xml). A run whose hash the database already holds is
left alone, so syncing twice changes nothing; any other run is written whole, in one transaction,
replacing what the database held of it (a run fed live up to an outage, a run that went on after a
first sync). Folders recorded before the database existed import the same way.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from rig.db.records import content_hash, is_run_folder, read_folder
from rig.db.store import Database


@dataclass
class SyncResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    samples: int = 0


def run_folders(path: Path) -> list[Path]:
    """``path`` itself if it is a run folder, else its run sub-folders in name (time) order."""
    if is_run_folder(path):
        return [path]
    return sorted(p for p in path.iterdir() if is_run_folder(p)) if path.is_dir() else []


def active_runs(db: Database) -> set[str]:
    """Runs a live session may be feeding right now: its bench row is fresh and not free, and, on this
    PC, its process is still there."""
    from rig.db.queries import list_benches

    here = platform.node()
    return {b["run_id"] for b in list_benches(db)
            if b["state"] != "free" and not b["stale"] and b["run_id"]
            and not (b["host"] == here and b["pid"] and not psutil.pid_exists(b["pid"]))}


def sync(db: Database, folders: Iterable[Path], progress: Callable[[str, str], None] | None = None) -> SyncResult:
    result = SyncResult()
    active = active_runs(db)
    for folder in folders:
        digest = content_hash(folder)
        run = read_folder(folder)
        run_id = run.run["run_id"]
        if run_id in active and run.run["finished"] is False:
            result.skipped.append((str(folder), "a session is still recording it; sync it when it ends"))
            continue
        stored = db.run_hash(run_id) if run_id else None
        if stored == digest:
            result.unchanged.append(run_id)
            continue
        existed = stored is not None or _exists(db, run_id)
        result.samples += db.write_folder(run, digest)
        (result.updated if existed else result.added).append(run_id)
        if progress is not None:
            progress("updated" if existed else "added", run_id)
    return result


def _exists(db: Database, run_id: str) -> bool:
    with db.engine.connect() as connection:
        return db.run_pk(connection, run_id) is not None
