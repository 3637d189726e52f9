"""What a simulated instrument received, line by line, in a file: for demos ("what did the rig send?")
and for tests that must prove from outside that a session sent nothing (``rig sim --log-dir``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path


class WireLog:
    """Appends ``<unix time> <text>`` lines to one file, flushed per line (it is read while written)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._file.write(f"{time.time():.6f} {text}\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()
