"""Ctrl-C and SIGTERM end a run through the safe state, and nothing can cut that safe state short.

Python's default SIGINT handler raises KeyboardInterrupt wherever the main thread happens to be, every
time. A second Ctrl-C a few milliseconds after the first then lands inside the teardown that is
making the bench safe (inside a thread-pool wait, inside pytest's finalizers) and skips the rest of it:
the process exits with the supplies on and the contactors closed, left to the hardware watchdog.

So the rig installs one handler for both signals:

- the **first** signal raises KeyboardInterrupt (SIGTERM included: by default it would kill Python
  without running any ``finally``), and from then on the process is ending: every later signal only
  prints "making the bench safe, please wait" (once) and returns;
- while a **shielded** block runs (the safe state, closing the rig), a first signal is noted, not
  raised; the KeyboardInterrupt is raised when the block ends, so the safe state always completes.

Only the main thread receives signals, so shielding applies there; a safe state run by the sampler
thread cannot be interrupted anyway. ``kill -9`` cannot be caught: the fixture's heartbeat watchdog
is the backstop for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
PLEASE_WAIT = "making the bench safe, please wait"


class _State:
    installed = False  # install() called: our handler stays for the life of the process
    ending = False  # the first signal was raised as KeyboardInterrupt: later ones are only noted
    depth = 0  # nesting of shielded() blocks in the main thread
    deferred: int | None = None  # a signal that arrived inside a shielded block
    told = False  # PLEASE_WAIT printed
    fd = 2  # where PLEASE_WAIT goes: the real stderr, which pytest's capture may have replaced as fd 2


def _please_wait() -> None:
    if not _State.told:
        _State.told = True
        # os.write, not print: the handler may run while the main thread is inside a print to stderr.
        with contextlib.suppress(OSError):
            os.write(_State.fd, f"\n{PLEASE_WAIT}\n".encode())


def _on_signal(signum: int, frame: object) -> None:
    if _State.ending:
        _please_wait()
        return
    if _State.depth:
        _please_wait()
        _State.deferred = _State.deferred or signum
        return
    _State.ending = True
    raise KeyboardInterrupt(f"signal {signum}")


def install(message_fd: int | None = None) -> None:
    """Route SIGINT and SIGTERM through the handler above for the rest of the process (main thread only).

    Also undoes a SIGINT that starts ignored (``rig run &`` from a non-interactive shell).
    ``message_fd``: where to say "please wait"; `rig run` passes a copy of its stderr taken before
    pytest's output capture points fd 2 at a temporary file."""
    if message_fd is not None:
        _State.fd = message_fd
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        signal.signal(sig, _on_signal)
    _State.installed = True


def ending() -> bool:
    """Whether an interrupt has been raised: the run is on its way out."""
    return _State.ending


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run a block that must not be cut short by Ctrl-C or SIGTERM; an interrupt that arrives meanwhile
    is raised as KeyboardInterrupt when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = None
    if not _State.installed and _State.depth == 0:  # a Rig used outside `rig`/pytest: shield all the same
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        for sig in SIGNALS:
            signal.signal(sig, _on_signal)
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if previous is not None:
            for sig, handler in previous.items():
                if handler is not None:  # None: installed outside Python, cannot be put back
                    signal.signal(sig, handler)
        if _State.depth == 0 and _State.deferred is not None:
            signum, _State.deferred = _State.deferred, None
            if not _State.ending:
                _State.ending = _State.installed  # outside rig/pytest the old handlers are back in charge
                raise KeyboardInterrupt(f"signal {signum}")
