"""A simulated instrument's SCPI socket server (newline-terminated lines over TCP, like port 5025).

Runs on the simulated bench's asyncio loop. Besides the dialect, it adds what the network and a
misbehaving instrument add: a per-request latency (to stand in for real LAN instruments) and faults
(dropped replies, garbage replies, a stalled unit, a dropped connection, an instrument that is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from instruments.sim.scpi_dialect import Dialect
from instruments.sim.wire_log import WireLog

log = logging.getLogger("instruments.sim")


@dataclass
class ServerFaults:
    """Faults a test can inject into one simulated instrument (read by the server on every line)."""

    drop_replies: int = 0  # swallow the next N replies (the client times out)
    garbage_replies: int = 0  # answer the next N queries with noise
    stalled: bool = False  # accept lines, never answer (a hung instrument)
    latency_s: float = 0.0  # added before every request is processed (real seconds)


class ScpiServer:
    def __init__(self, name: str, dialect: Dialect, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.dialect = dialect
        self.host = host
        self.port = port
        self.faults = ServerFaults()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0  # accepted so far
        self.wire_log: WireLog | None = None  # every connection and received line, when set

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection (the instrument is gone)."""
        if self._server is not None:
            self._server.close()
            await self.drop_connections()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._writers.clear()

    @property
    def resource(self) -> str:
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        if self.wire_log:
            self.wire_log.write(f"{peer} connect")
        idle = self.dialect.IDLE_DROP_S
        try:
            while True:
                try:
                    # A deadline per line in this task, not asyncio.wait_for: that wraps each read in a
                    # task of its own, and a line then waits an extra turn of the event loop.
                    async with asyncio.timeout(idle):
                        raw = await reader.readline()
                except TimeoutError:
                    log.debug("%s: idle for %s s, dropping the connection (as the real unit does)", self.name, idle)
                    break
                if not raw:
                    break
                line = raw.decode("ascii", "replace").strip()
                if not line:
                    continue
                if self.wire_log:
                    self.wire_log.write(f"{peer} {line}")
                if self.faults.stalled:
                    continue  # a hung unit: reads the line, does nothing, never answers
                if self.faults.latency_s:
                    await asyncio.sleep(self.faults.latency_s)
                reply = self.dialect.handle_line(line)
                if reply is None:
                    continue
                if self.faults.drop_replies:
                    self.faults.drop_replies -= 1
                    continue
                if self.faults.garbage_replies:
                    self.faults.garbage_replies -= 1
                    reply = "#\x07garbage\x7f"
                writer.write(reply.encode("ascii", "replace") + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
