"""Which physical bench a rig config drives: its instruments, not the file that names them.

Two config files that name the same instruments (the same resources) are the same bench; a session
lock, the fixture claim and a lab's bench-status row are all keyed by ``bench_key``.
"""

from __future__ import annotations

import hashlib
import re

from rig.config import RigConfig

_LOCALHOST = re.compile(r"(?<![\w.])(localhost|127\.0\.0\.1|::1|\[::1\])(?![\w.])")


def normalise_resource(resource: str) -> str:
    """One spelling per instrument address: case, ``TCPIP0``/``ASRL0`` board numbers, loopback names."""
    text = resource.strip().lower()
    text = re.sub(r"^(tcpip|asrl|usb|gpib)0::", r"\1::", text)
    return _LOCALHOST.sub("127.0.0.1", text)


def bench_resources(config: RigConfig) -> list[str]:
    """Every instrument address of the bench, normalised and sorted (Modbus unit id included)."""
    out = []
    for inst in config.instruments.values():
        resource = normalise_resource(inst.resource)
        out.append(f"{resource}#unit{inst.unit_id}" if inst.role == "fixture" else resource)
    return sorted(out)


def bench_key(config: RigConfig) -> str:
    """A short stable name for the bench: the hash of its instrument addresses."""
    return hashlib.sha256("\n".join(bench_resources(config)).encode()).hexdigest()[:16]
