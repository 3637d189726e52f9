"""The simulated bench: the physical model, one SCPI server per instrument and the fixture's Modbus
server, on one asyncio loop in a background thread. Used in-process by tests and ``--sim``, and
standalone by ``rig sim``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruments.drivers import driver_role
from instruments.roles import Rating
from instruments.sim.dialects import SIM_DIALECTS
from instruments.sim.fixture_server import FixtureServer
from instruments.sim.model import BenchModel, BenchParameters, LoadUnit, PowerPath, PowerUnit, SupplyUnit
from instruments.sim.scpi_server import ScpiServer
from instruments.sim.wire_log import WireLog
from rig.clock import Clock
from rig.config import InstrumentConfig, PathConfig, RigConfig, SafetyConfig


@dataclass(frozen=True)
class SimInstrument:
    name: str
    driver: str
    model: str  # what *IDN? says
    rating: Rating
    path: str


@dataclass(frozen=True)
class SimPath:
    name: str
    selector: int


@dataclass(frozen=True)
class BenchSpec:
    name: str
    instruments: tuple[SimInstrument, ...]
    paths: tuple[SimPath, ...]
    safety: SafetyConfig = field(default_factory=lambda: SafetyConfig(
        max_voltage=1100.0, max_current=1300.0, abort_temperature=120.0))


def nacs_bench() -> BenchSpec:
    """A NACS inlet bench as labs wire it: a high-voltage path for the 500 V / 1000 V tiers and a
    high-current path (grouped units) for 900 A+ endurance. Ratings are the configured ones."""
    return BenchSpec(
        name="simulated NACS bench",
        instruments=(
            SimInstrument("psu_hv", "ea-psi", "PSI 11500-60 4U", Rating(1500, 60, 30000), "hv"),
            SimInstrument("load_hv", "ea-elr", "ELR 11500-60 4U", Rating(1500, 60, 30000), "hv"),
            SimInstrument("psu_hc1", "itech-it6000c", "IT6015C-80-450", Rating(80, 450, 15000), "hc"),
            SimInstrument("psu_hc2", "itech-it6000c", "IT6015C-80-450", Rating(80, 450, 15000), "hc"),
            SimInstrument("psu_hc3", "itech-it6000c", "IT6015C-80-450", Rating(80, 450, 15000), "hc"),
            SimInstrument("load_hc1", "chroma-63200a", "63206A-150-600", Rating(150, 600, 6000), "hc"),
            SimInstrument("load_hc2", "chroma-63200a", "63206A-150-600", Rating(150, 600, 6000), "hc"),
        ),
        paths=(SimPath("hv", 1), SimPath("hc", 2)),
    )


# --- named faults (rig sim --fault, pytest --sim-fault) --------------------------------------------

FaultApply = Callable[["SimulatedBench", str], None]


def _float(value: str, default: float) -> float:
    return float(value) if value else default


def _contact(bench: SimulatedBench, value: str) -> None:
    bench.model.contacts["DC+"].degradation = _float(value, 3.0)


def _thermocouple(bench: SimulatedBench, value: str) -> None:
    bench.model.fixture.sensor_open.add(value or "DC+")


def _param(name: str, default: float) -> FaultApply:
    return lambda bench, value: setattr(bench.model.params, name, _float(value, default))


def _fixture_flag(name: str, state: bool) -> FaultApply:
    return lambda bench, value: setattr(bench.model.fixture, name, state)


def _latency(bench: SimulatedBench, value: str) -> None:
    bench.set_latency(_float(value, 5.0) / 1000)


FAULTS: dict[str, tuple[str, FaultApply]] = {
    "degraded_contact": ("DC+ contact resistance x FACTOR (default 3)", _contact),
    "slow_contactor": ("contactors take SECONDS to open (default 0.25)", _param("contactor_open_s", 0.25)),
    "low_insulation": ("insulation DC+ to PE is OHMS (default 40e3)", _param("iso_dc_plus_ohm", 40e3)),
    "wrong_cp_resistor": ("vehicle CP resistors x FACTOR (default 1.6)", _param("cp_resistor_scale", 1.6)),
    "open_thermocouple": ("a temperature sensor reads open (DC+, DC-, inlet 1, inlet 2, ambient)",
                          _thermocouple),
    "interlock_open": ("the interlock loop is broken", _fixture_flag("interlock_wiring_ok", False)),
    "estop": ("the E-stop button is pressed", _fixture_flag("estop_button", True)),
    "ambient": ("ambient temperature is CELSIUS (default 40)", _param("ambient_c", 40.0)),
    "latency_ms": ("every instrument answers MS later (default 5)", _latency),
}


def parse_fault(text: str) -> tuple[str, str]:
    """``name`` or ``name=value`` -> (name, value); ``ValueError`` naming the known faults."""
    name, _, value = text.partition("=")
    name = name.strip()
    if name not in FAULTS:
        raise ValueError(f"unknown simulated fault {name!r}; expected one of {', '.join(FAULTS)}")
    return name, value.strip()


# --- the bench ------------------------------------------------------------------------------------


class SimulatedBench:
    def __init__(self, spec: BenchSpec | None = None, clock: Clock | None = None, host: str = "127.0.0.1",
                 params: BenchParameters | None = None, port_base: int = 0, log_dir: Path | None = None) -> None:
        self.spec = spec or nacs_bench()
        self.clock = clock or Clock(1.0)
        self.host = host
        units: dict[str, list[PowerUnit]] = {p.name: [] for p in self.spec.paths}
        made: dict[str, PowerUnit] = {}
        for inst in self.spec.instruments:
            cls = SupplyUnit if driver_role(inst.driver) == "supply" else LoadUnit
            made[inst.name] = unit = cls(inst.name, inst.rating, inst.path)
            units[inst.path].append(unit)
        paths = [PowerPath(p.name, p.selector,
                           [u for u in units[p.name] if isinstance(u, SupplyUnit)],
                           [u for u in units[p.name] if isinstance(u, LoadUnit)]) for p in self.spec.paths]
        self.model = BenchModel(paths, self.clock, params)
        self.servers: dict[str, ScpiServer] = {}
        for i, inst in enumerate(self.spec.instruments):
            dialect = SIM_DIALECTS[inst.driver](self.model, made[inst.name], inst.model, f"SIM{1000 + i}")
            port = port_base + i if port_base else 0
            self.servers[inst.name] = ScpiServer(inst.name, dialect, host, port)
        self.fixture = FixtureServer(self.model, 1, host, port_base + len(self.servers) if port_base else 0)
        if log_dir is not None:  # what each unit received, in <log_dir>/<name>.log
            for name, server in self.servers.items():
                server.wire_log = WireLog(log_dir / f"{name}.log")
            self.fixture.wire_log = WireLog(log_dir / "inlet.log")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> SimulatedBench:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                for server in self.servers.values():
                    await server.start()
                await self.fixture.start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            ticker = asyncio.create_task(self._tick())
            await self._stop.wait()
            ticker.cancel()
            for server in self.servers.values():
                await server.stop()
            await self.fixture.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="simulated-bench", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("simulated bench did not start within 10 s")
        if failure:
            raise RuntimeError(f"simulated bench could not start: {failure[0]}") from failure[0]
        return self

    async def _tick(self) -> None:
        """Real-time housekeeping between requests: watchdogs, heartbeat, scheduled events."""
        while True:
            self.model.tick()
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> SimulatedBench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run a coroutine on the bench's loop (e.g. ``bench.call(bench.servers['psu_hv'].stop())``)."""
        assert self._loop is not None, "bench not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- faults ----------------------------------------------------------------------------------

    def inject(self, text: str) -> None:
        name, value = parse_fault(text)
        with self.model.lock:
            self.model.advance()
            FAULTS[name][1](self, value)
            self.model.update_safety_chain()
            self.model.solve()

    def set_latency(self, seconds: float) -> None:
        for server in self.servers.values():
            server.faults.latency_s = seconds
        self.fixture.faults.latency_s = seconds

    def kill(self, name: str) -> None:
        """The instrument disappears from the network (server closed, connections dropped)."""
        self.call(self.servers[name].stop())

    # -- config ----------------------------------------------------------------------------------

    def config(self) -> RigConfig:
        instruments = {
            inst.name: InstrumentConfig(inst.name, inst.driver, driver_role(inst.driver),
                                        self.servers[inst.name].resource, inst.rating)
            for inst in self.spec.instruments
        }
        instruments["inlet"] = InstrumentConfig("inlet", "nacs-fixture", "fixture", self.fixture.resource,
                                                unit_id=self.fixture.unit_id)
        paths = {
            p.name: PathConfig(
                p.name, p.selector,
                tuple(i.name for i in self.spec.instruments if i.path == p.name and driver_role(i.driver) == "supply"),
                tuple(i.name for i in self.spec.instruments if i.path == p.name and driver_role(i.driver) == "load"),
            )
            for p in self.spec.paths
        }
        return RigConfig(self.spec.name, "<simulated bench>", "", instruments, paths, self.spec.safety,
                         self.clock.scale)

    def config_toml(self) -> str:
        """The rig config as TOML, for ``rig sim --write-config``."""
        cfg = self.config()
        s = cfg.safety
        lines = [
            "# Rig config written by `rig sim`: it points at the simulated bench's servers.",
            "[rig]",
            f'name = "{cfg.name}"',
            f"time_scale = {cfg.time_scale:g}",
            "",
            "[safety]",
            *(f"{k} = {getattr(s, k)!r}" for k in SafetyConfig.__dataclass_fields__),
        ]
        for inst in cfg.instruments.values():
            lines += ["", f"[instruments.{inst.name}]", f'driver = "{inst.driver}"', f'resource = "{inst.resource}"']
            if inst.rating is not None:
                r = inst.rating
                lines.append(f"rating = {{ voltage = {r.voltage:g}, current = {r.current:g}, power = {r.power:g} }}")
            if inst.role == "fixture":
                lines.append(f"unit_id = {inst.unit_id}")
        for path in cfg.paths.values():
            lines += ["", f"[paths.{path.name}]", f"selector = {path.selector}",
                      "supplies = [" + ", ".join(f'"{n}"' for n in path.supplies) + "]",
                      "loads = [" + ", ".join(f'"{n}"' for n in path.loads) + "]"]
        return "\n".join(lines) + "\n"
