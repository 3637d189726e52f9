"""The simulated NACS inlet fixture: pymodbus' own Modbus TCP server serving the register map.

pymodbus 3.16 servers take ``SimDevice``s. Its ``action`` hook runs before every request with the
live register block, so reads are filled from the bench model at the instant they are served and
writes are validated and applied to the model before pymodbus stores them. Map version 2: every
command arrives through the mailbox with its session's token, and the claim rules of
docs/fixture-register-map.md decide (range -> exception 3, interlocks or unclaimed -> 4, another
token's claim -> 6, anything but the mailbox -> 2).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from instruments import fixture_map as fm
from instruments.roles import Connector, CpMode, VehicleState
from instruments.sim.circuits import pp_voltage
from instruments.sim.model import BenchModel, FixtureBusy, FixtureRefused
from instruments.sim.wire_log import WireLog

log = logging.getLogger("instruments.sim")

_SENSOR_BIT = {"DC+": 0, "DC-": 1, "inlet 1": 2, "inlet 2": 3, "ambient": 4}
OPEN_SENSOR_RAW = 32767  # an open thermocouple reads full scale (up-scale burnout)


@dataclass
class ModbusFaults:
    exception_next: int = 0  # answer the next request with this Modbus exception code
    latency_s: float = 0.0  # real seconds added to every request (> client timeout = a timeout)


def _clamp_words(reg: fm.Register, value: float) -> list[int]:
    limits = {"uint16": (0, 0xFFFF), "int16": (-32768, 32767), "uint32": (0, 0xFFFFFFFF),
              "int32": (-(2**31), 2**31 - 1)}[reg.dtype]
    raw = max(limits[0], min(limits[1], round(value / reg.scale)))
    return reg.raw_words(raw)


class FixtureServer:
    def __init__(self, bench: BenchModel, unit_id: int = 1, host: str = "127.0.0.1", port: int = 0,
                 framer: str = "socket") -> None:
        self.bench = bench
        #: pymodbus ``FramerType`` value: ``"socket"`` (Modbus TCP, the default) or ``"rtu"`` (RTU frames over
        #: TCP, as a serial-to-Ethernet gateway passes them through).
        self.framer = framer
        self.unit_id = unit_id
        self.host = host
        self.port = port
        self.faults = ModbusFaults()
        self.writes: list[tuple[str, float]] = []  # audit log of accepted writes
        self.connections = 0  # accepted so far
        self.wire_log: WireLog | None = None  # every connection and command (with its claim tag), when set
        self._server = None

    @property
    def resource(self) -> str:
        scheme = "modbus+tcp" if self.framer == "socket" else "modbus+rtu-tcp"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        from pymodbus import FramerType
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
        holding = [SimData(fm.HOLDING_BLOCK_START, count=fm.HOLDING_BLOCK_COUNT, values=0,
                           datatype=DataType.REGISTERS)]
        inputs = [SimData(fm.INPUT_BLOCK_START, count=fm.INPUT_BLOCK_COUNT, values=0,
                          datatype=DataType.REGISTERS)]
        device = SimDevice(id=self.unit_id, action=self._on_request, simdata=(bits, bits, holding, inputs))
        self._server = ModbusTcpServer(device, address=(self.host, self.port), framer=FramerType(self.framer),
                                       trace_connect=self._on_connect)
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    def _on_connect(self, connected: bool) -> None:
        if connected:
            self.connections += 1
            if self.wire_log:
                self.wire_log.write("connect")

    # -- requests --------------------------------------------------------------------------------

    async def _on_request(self, fc, start, address, count, current, set_values):  # pymodbus callback
        from pymodbus.constants import ExcCodes

        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        if self.faults.exception_next:
            code, self.faults.exception_next = self.faults.exception_next, 0
            return ExcCodes(code)
        if fc == 4:
            values = self.input_values()
            self._fill(current, start, address, count, fm.INPUT_REGISTERS, values)
        elif fc == 3:
            self._fill(current, start, address, count, fm.HOLDING_REGISTERS, self.holding_values())
        elif fc in (6, 16) and set_values is not None:
            try:
                self._apply_mailbox(address, list(set_values))
            except LookupError as exc:
                log.debug("fixture: refused write: %s", exc)
                return ExcCodes.ILLEGAL_ADDRESS
            except ValueError as exc:
                log.debug("fixture: refused write: %s", exc)
                return ExcCodes.ILLEGAL_VALUE
            except FixtureRefused as exc:
                log.debug("fixture: interlock refused write: %s", exc)
                return ExcCodes.DEVICE_FAILURE
            except FixtureBusy as exc:
                log.debug("fixture: claimed: %s", exc)
                return ExcCodes.DEVICE_BUSY
        return None

    @staticmethod
    def _fill(current, start, address, count, registers, values) -> None:
        for reg in registers:
            if address <= reg.address < address + count:
                for i, word in enumerate(_clamp_words(reg, values[reg.name])):
                    if reg.address + i < address + count:
                        current[reg.address + i - start] = word

    def _apply_mailbox(self, address: int, words: list[int]) -> None:
        """One command: ``[token high, token low, register, raw value]`` written at the mailbox."""
        if address != fm.MAILBOX or len(words) != fm.MAILBOX_WORDS:
            raise LookupError(f"write at {address} ({len(words)} words): commands go through the mailbox "
                              f"({fm.MAILBOX_WORDS} registers at {fm.MAILBOX})")
        token = words[0] << 16 | words[1]
        reg = fm.COMMANDS.get(words[2])
        if reg is None:
            raise LookupError(f"mailbox names register {words[2]}, not a command")
        if token == 0:
            raise ValueError("token 0")
        value = reg.decode(words[3:4])
        if self.wire_log:
            self.wire_log.write(f"tag {token >> 16:04x} {reg.name}={value:g}")
        reg.encode(value)  # range check against the map
        with self.bench.lock:
            self.bench.advance()
            owner_only = reg.name != "claim" and (reg.anyone is None or int(value) not in reg.anyone)
            if owner_only:  # a claim is decided by the claim rules themselves
                self.bench.check_owner(token)
            self._apply(reg.name, value, token)
            self.writes.append((reg.name, value))
            self.bench.update_safety_chain()
            self.bench.solve()

    def _apply(self, name: str, value: float, token: int) -> None:
        b, f = self.bench, self.bench.fixture
        if name == "claim":
            if value == 0:
                b.release(token)
            elif value < 100:
                raise ValueError(f"claim timeout {value:g} ms; expected 100..10000 ms")
            else:
                b.claim(token, value / 1000)
        elif name == "safe_request":
            if value:
                b.request_safe(token)
        elif name == "heartbeat":
            b.feed_heartbeat(int(value))
        elif name == "heartbeat_timeout_ms":
            b.arm_heartbeat(value / 1000)
        elif name == "contactors":
            b.command_contactors(bool(value))
        elif name == "path_select":
            b.select_path(int(value))
        elif name == "cp_mode":
            f.cp_mode = CpMode(int(value))
        elif name == "cp_duty":
            f.cp_duty = value
        elif name == "vehicle_state":
            f.vehicle_state = VehicleState(int(value))
        elif name == "connector":
            f.connector = Connector(int(value))
        elif name == "actuators":
            f.actuators = int(value)
        elif name == "trip_reset":
            if value:
                b.reset_trip()
        elif name == "shutdown_threshold":
            f.shutdown_threshold_a = value

    # -- register contents -----------------------------------------------------------------------

    def input_values(self) -> dict[str, float]:
        b = self.bench
        with b.lock:
            b.advance()
            f = b.fixture
            high, low, duty, freq = b.cp_measurements()
            status = (
                (1 << 0 if f.contactor_closed else 0)
                | (1 << 1 if f.contactor_closed else 0)
                | (1 << 2 if f.interlock_closed else 0)
                | (1 << 3 if f.estop_pressed else 0)
                | (1 << 4 if f.heartbeat_tripped else 0)
                | (1 << 5 if f.chain_ok else 0)
                | (1 << 6 if f.trip_latched else 0)
                | (1 << 7 if f.claim_token else 0)
            )
            sensor_bits = sum(1 << _SENSOR_BIT[name] for name in f.sensor_open)

            def temp(name: str, value: float) -> float:
                return OPEN_SENSOR_RAW * 0.1 if name in f.sensor_open else value

            def ms(value: float | None) -> float:
                return fm.NOT_AVAILABLE if value is None else min(value, fm.NOT_AVAILABLE - 1)

            return {
                "ident": fm.IDENT_MAGIC,
                "map_version": fm.MAP_VERSION,
                "serial": f.serial,
                "firmware": f.firmware,
                "status": status,
                "sensor_open": sensor_bits,
                "path": f.path_select,
                "temp_dc_plus": temp("DC+", b.contact_temperature("DC+")),
                "temp_dc_minus": temp("DC-", b.contact_temperature("DC-")),
                "temp_inlet_1": temp("inlet 1", b.inlet_sensor_temperature("DC+")),
                "temp_inlet_2": temp("inlet 2", b.inlet_sensor_temperature("DC-")),
                "temp_ambient": temp("ambient", b.params.ambient_c),
                "cp_high": high,
                "cp_low": low,
                "cp_duty": duty,
                "cp_frequency": freq,
                "pp_voltage": pp_voltage(f.connector),
                "iso_dc_plus": b.params.iso_dc_plus_ohm,
                "iso_dc_minus": b.params.iso_dc_minus_ohm,
                "inlet_voltage": b.inlet_voltage,
                "inlet_current": b.inlet_current,
                "drop_dc_plus": b.contact_drop_mv("DC+"),
                "drop_dc_minus": b.contact_drop_mv("DC-"),
                "shutdown_current_ms": ms(f.shutdown_current_ms),
                "shutdown_voltage_ms": ms(f.shutdown_voltage_ms),
                "heartbeat_echo": f.heartbeat,
                "claim_tag": f.claim_token >> 16,
                "claim_age": min(time.monotonic() - f.claim_since, fm.UNCLAIMED_AGE - 1) if f.claim_token
                else fm.UNCLAIMED_AGE,
                "safe_requests": f.safe_requests,
            }

    def holding_values(self) -> dict[str, float]:
        f = self.bench.fixture
        return {
            "heartbeat": f.heartbeat,
            "heartbeat_timeout_ms": f.heartbeat_timeout_s * 1000,
            "contactors": int(f.contactor_command),
            "path_select": f.path_select,
            "cp_mode": int(f.cp_mode),
            "cp_duty": f.cp_duty,
            "vehicle_state": int(f.vehicle_state),
            "connector": int(f.connector),
            "actuators": f.actuators,
            "trip_reset": 0,
            "shutdown_threshold": f.shutdown_threshold_a,
            "claim": f.heartbeat_timeout_s * 1000 if f.claim_token else 0,
            "safe_request": 0,
            "cmd_token": 0,
            "cmd_register": 0,
            "cmd_value": 0,
        }

