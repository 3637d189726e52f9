"""One owner per bench on this PC: an OS lock the kernel releases when the owner dies.

A session that may change the bench (``rig run``, ``rig check``, pytest with ``--rig``) takes an
exclusive ``flock`` on ``<lock dir>/<bench key>.lock`` before it sends anything to any instrument, and
writes who it is into the file. The kernel drops the lock when the process exits, however it exits
(``kill -9`` included), so a stale file never blocks the next run and nobody ever deletes it by hand: a
file without a live lock is just a note of who held the bench last.

The bench key comes from the instruments' addresses (``rig.bench_identity``): two config files naming
the same instruments lock the same file. The lock directory is per PC (``RIG_LOCK_DIR``, default
``<tmp>/nacs-rig-locks``); across PCs the fixture's claim (register map v2) is what keeps one owner.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rig.bench_identity import bench_key
from rig.config import RigConfig
from rig.errors import BenchBusy


@dataclass(frozen=True)
class Owner:
    """Who holds a bench: what a second technician is told."""

    user: str
    pid: int
    host: str
    dut: str
    command: str
    since: str  # ISO time, local zone

    @classmethod
    def here(cls, dut: str) -> Owner:
        try:
            user = getpass.getuser()
        except Exception:  # no login name (e.g. a container without passwd entry)
            user = str(os.getuid())
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "python"
        return cls(user, os.getpid(), platform.node(), dut, command[:200],
                   dt.datetime.now().astimezone().isoformat(timespec="seconds"))

    def describe(self) -> str:
        return (f"{self.user}@{self.host} pid {self.pid}, DUT {self.dut or '-'}, `{self.command}`, "
                f"since {self.since}")


def lock_dir() -> Path:
    return Path(os.environ.get("RIG_LOCK_DIR") or Path(tempfile.gettempdir()) / "nacs-rig-locks")


def lock_path(config: RigConfig) -> Path:
    return lock_dir() / f"{bench_key(config)}.lock"


class BenchLock:
    """An exclusive lock on one bench, held until ``release()`` or the end of this process."""

    def __init__(self, path: Path, fd: int, owner: Owner) -> None:
        self.path, self._fd, self.owner = path, fd, owner

    @classmethod
    def acquire(cls, config: RigConfig, owner: Owner) -> BenchLock:
        """Take the bench now or raise ``BenchBusy`` naming its owner (never waits)."""
        path = lock_path(config)
        directory = path.parent
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # shared by every user of this PC, like /tmp itself
            os.chmod(directory, 0o1777)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_owner(path)
            who = holder.describe() if holder else "owner unknown"
            raise BenchBusy(f"bench {config.name} is in use by {who}; nothing was sent to it "
                            f"(lock {path})") from None
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # the next owner may be another user
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(owner)).encode(), 0)
        return cls(path, fd, owner)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1


def read_owner(path: Path) -> Owner | None:
    """The owner written in a lock file (the last one, if nobody holds it now)."""
    try:
        return Owner(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def current_owner(config: RigConfig) -> Owner | None:
    """Who holds this bench on this PC now, or None. Takes nothing: a probe for ``rig safe``."""
    path = lock_path(config)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_owner(path) or Owner("unknown", 0, "", "", "", "")
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return None


def fixture_claim(config: RigConfig) -> str | None:
    """Whether the bench's fixture is claimed by a session (on any PC), read without claiming:
    "claim tag 1a2b, held for 35 s", or None. Reads only; ``InstrumentError`` if unreachable."""
    from rig.session import make_instrument

    fixture = make_instrument(config.fixture)
    try:
        fixture.open(prepare=False)
        reading = fixture.read()  # type: ignore[attr-defined]
    finally:
        fixture.close()
    if reading.claim_tag is None:
        return None
    held = f", held for {reading.claim_age_s:.0f} s" if reading.claim_age_s is not None else ""
    return f"claim tag {reading.claim_tag:04x}{held}"
