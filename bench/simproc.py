"""A simulated bench in its own process, as real instruments are: the client under test then has the
interpreter (and its GIL) to itself.

``python -m bench.simproc SPEC [LATENCY_S]`` starts the bench (every instrument answering LATENCY_S late,
default 0), prints its rig config (TOML) followed by a line
``READY``, and runs until its stdin closes. ``external_bench(SPEC)`` does that from the parent and yields
the loaded ``RigConfig``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rig.config import RigConfig, load_config

READY = "READY"


@contextmanager
def external_bench(spec: str, latency_s: float = 0.0) -> Iterator[RigConfig]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.simproc", spec, repr(latency_s)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            if line.strip() == READY:
                break
            lines.append(line)
        else:
            raise RuntimeError(f"simulated bench process exited with {proc.wait()} before it was ready")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sim.toml"
            path.write_text("".join(lines), encoding="utf-8")
            config = load_config(path)
        yield config
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> None:
    import logging

    from bench.specs import SPECS
    from instruments.sim.bench import SimulatedBench
    from rig.clock import Clock

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    bench = SimulatedBench(spec=SPECS[argv[0]](), clock=Clock(1.0)).start()
    bench.set_latency(float(argv[1]) if len(argv) > 1 else 0.0)
    try:
        sys.stdout.write(bench.config_toml())
        sys.stdout.write(f"{READY}\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        bench.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
