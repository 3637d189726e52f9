"""NACS inlet fixture over Modbus (TCP or RTU): the register map in instruments/fixture_map.py.

The fixture is the lab's own hardware (a PLC or DAQ box around the inlet under test): thermocouples
on the DC contacts, the inlet's own sensors, an EVSE-side CP generator with a vehicle-side resistor
selector, PP emulation, the vehicle-side DC contactors, the interlock loop and E-stop, an insulation
monitor, and a heartbeat watchdog that opens the contactors and inhibits the power instruments (through
the hardware safety chain) when this PC stops feeding it.

Register map version 2: every command goes through the mailbox with this driver's token, and a session
``claim``s the fixture before it commands anything (see docs/fixture-register-map.md). A driver that has
not claimed can still send the commands that only make the bench safer, which is what ``rig safe`` does.
"""

from __future__ import annotations

import math
import re
import secrets

from instruments import fixture_map as fm
from instruments.errors import BadReply, FixtureClaimed, InstrumentTimeout, ModbusDeviceError, WrongInstrument
from instruments.modbus import ModbusPending, ModbusTransport
from instruments.roles import Connector, CpMode, FixtureReading, Identity, InletFixture, VehicleState


def _bits(value: float, names: dict[int, str]) -> frozenset[str]:
    raw = int(value)
    return frozenset(name for bit, name in names.items() if raw & (1 << bit))


class NacsInletFixture(InletFixture):
    FAMILY = "NACS inlet fixture"
    MODEL_PATTERN = re.compile(r"^NACS inlet fixture")

    def __init__(self, name: str, resource: str, unit_id: int = 1, timeout_s: float = 0.5) -> None:
        super().__init__(name)
        self.transport = ModbusTransport(name, resource, unit_id, timeout_s)
        self._heartbeat = 0
        #: This session's token: random, so two PCs never pick the same one by accident.
        self.token = secrets.randbits(32) or 1

    # -- life cycle ------------------------------------------------------------------------------

    def _connect(self) -> None:
        self.transport.open()

    def _identify(self) -> Identity:
        ident, version, serial, firmware = self.transport.read_input(0, 4)
        if ident != fm.IDENT_MAGIC:
            self.close()
            raise WrongInstrument(
                self.name,
                f"input register 0 holds 0x{ident:04X}, expected 0x{fm.IDENT_MAGIC:04X} (a NACS inlet fixture)",
            )
        if version != fm.MAP_VERSION:
            self.close()
            raise WrongInstrument(self.name, f"register map version {version}, this driver speaks {fm.MAP_VERSION}")
        return Identity("lab", f"NACS inlet fixture map v{version}", str(serial), f"{firmware / 100:.2f}")

    def close(self) -> None:
        self.transport.close()

    # -- reads -----------------------------------------------------------------------------------

    def read(self) -> FixtureReading:
        return self._decode(self.transport.read_input(fm.INPUT_BLOCK_START, fm.INPUT_BLOCK_COUNT))

    #: The sampler's two-phase read (``rig.sampler.TwoPhase``): the block's request is on its way with
    #: the power units', and its reading (temperatures, E-stop, interlock) is checked as it arrives.
    message_gap_s = 0.0

    def send_measure(self) -> ModbusPending | None:
        """Send the input block's read; None when the transport cannot split it (read it in full)."""
        return self.transport.send_read_input(fm.INPUT_BLOCK_START, fm.INPUT_BLOCK_COUNT)

    def collect_measure(self, sent: ModbusPending) -> FixtureReading:
        try:
            block = sent.collect()
        except InstrumentTimeout:  # retried once, as ``read`` does (on the fresh connection)
            block = self.transport.read_input(fm.INPUT_BLOCK_START, fm.INPUT_BLOCK_COUNT, retry=False)
        return self._decode(block)

    def _decode(self, block: list[int]) -> FixtureReading:
        v = fm.decode_inputs(block)
        if int(v["ident"]) != fm.IDENT_MAGIC:
            raise BadReply(self.name, f"identity register changed to 0x{int(v['ident']):04X}", "read inputs")
        status = int(v["status"])
        open_sensors = _bits(v["sensor_open"], fm.SENSOR_BITS)

        def temp(name: str, sensor: str) -> float:
            return math.nan if sensor in open_sensors else v[name]  # an open thermocouple reads full scale

        def ms(name: str) -> float | None:
            return None if v[name] == fm.NOT_AVAILABLE else v[name]

        return FixtureReading(
            contact_temp_dc_plus=temp("temp_dc_plus", "DC+ contact"),
            contact_temp_dc_minus=temp("temp_dc_minus", "DC- contact"),
            inlet_sensor_1=temp("temp_inlet_1", "inlet sensor 1"),
            inlet_sensor_2=temp("temp_inlet_2", "inlet sensor 2"),
            ambient_temp=temp("temp_ambient", "ambient"),
            sensor_open=open_sensors,
            cp_high=v["cp_high"],
            cp_low=v["cp_low"],
            cp_duty=v["cp_duty"],
            cp_frequency=v["cp_frequency"],
            pp_voltage=v["pp_voltage"],
            iso_dc_plus_ohm=v["iso_dc_plus"],
            iso_dc_minus_ohm=v["iso_dc_minus"],
            inlet_voltage=v["inlet_voltage"],
            inlet_current=v["inlet_current"],
            drop_dc_plus_mv=v["drop_dc_plus"],
            drop_dc_minus_mv=v["drop_dc_minus"],
            contactors_closed=bool(status & 0b11 == 0b11),
            contactor_dc_plus_closed=bool(status & 1 << 0),
            contactor_dc_minus_closed=bool(status & 1 << 1),
            interlock_closed=bool(status & 1 << 2),
            estop_pressed=bool(status & 1 << 3),
            heartbeat_tripped=bool(status & 1 << 4),
            safety_chain_ok=bool(status & 1 << 5),
            path=int(v["path"]),
            shutdown_current_ms=ms("shutdown_current_ms"),
            shutdown_voltage_ms=ms("shutdown_voltage_ms"),
            claim_tag=int(v["claim_tag"]) if status & 1 << 7 else None,
            claim_age_s=None if v["claim_age"] == fm.UNCLAIMED_AGE else v["claim_age"],
            safe_requests=int(v["safe_requests"]),
        )

    # -- commands --------------------------------------------------------------------------------

    def _write(self, name: str, value: float) -> None:
        """One command through the mailbox, with this session's token (never retried)."""
        words = fm.mailbox_words(self.token, fm.BY_NAME[name], value)
        self.transport.write_registers(fm.MAILBOX, words, what=f"write {name}={value:g}")

    def select_path(self, selector: int) -> None:
        self._write("path_select", selector)

    def set_contactors(self, closed: bool) -> None:
        self._write("contactors", 1 if closed else 0)

    def set_pilot(self, mode: CpMode, duty_percent: float = 100.0) -> None:
        # Duty first, so the generator never runs a PWM at a stale duty.
        self._write("cp_duty", duty_percent)
        self._write("cp_mode", CpMode(mode))

    def set_vehicle_state(self, state: VehicleState) -> None:
        self._write("vehicle_state", VehicleState(state))

    def set_connector(self, connector: Connector) -> None:
        self._write("connector", Connector(connector))

    def actuate(self, *, estop: bool = False, open_interlock: bool = False) -> None:
        self._write("actuators", (1 if estop else 0) | (2 if open_interlock else 0))

    def reset_trip(self) -> None:
        self._write("trip_reset", 1)

    def set_shutdown_threshold(self, amps: float) -> None:
        self._write("shutdown_threshold", amps)

    def feed_heartbeat(self) -> None:
        self._heartbeat = (self._heartbeat + 1) & 0xFFFF
        self._write("heartbeat", self._heartbeat)

    # -- ownership -------------------------------------------------------------------------------

    @property
    def tag(self) -> int:
        """The part of the token other sessions see (input register claim_tag)."""
        return self.token >> 16

    def claim(self, timeout_s: float) -> None:
        """Own the fixture and arm its heartbeat watchdog; renews when already ours.
        ``FixtureClaimed`` naming the holder when another session's claim is alive."""
        try:
            self._write("claim", round(timeout_s * 1000))
        except ModbusDeviceError as exc:
            if exc.code != 6:
                raise
            reading = self.read()
            age = f", for {reading.claim_age_s:.0f} s" if reading.claim_age_s is not None else ""
            raise FixtureClaimed(self.name, f"claimed by another session (claim tag {reading.claim_tag or 0:04x}"
                                 f"{age}); it ends when that session ends or its heartbeat stops",
                                 "claim") from None

    def release(self) -> None:
        """Give the claim up (the fixture refuses while the bench is energised: exception 4)."""
        self._write("claim", 0)

    def request_safe(self) -> None:
        """Tell the fixture, and through it the owner's run, that another session makes the bench safe."""
        self._write("safe_request", 1)

    def arm_heartbeat(self, timeout_s: float) -> None:
        self.claim(timeout_s)

    def arm_watchdog(self, timeout_s: float) -> None:
        self.claim(timeout_s)
