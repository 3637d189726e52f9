"""Elektro-Automatik PSI 9000 / PSI 10000 programmable DC supplies.

Source: EA "Programming Guide ModBus & SCPI", PGMBEN rev. 24 (2023): section 2.7 (TCP port 5025, Modbus
TCP on 502), section 5 (SCPI command set, reply formats, status registers).

Dialect quirks this driver handles:
- nothing that changes a value or state is accepted before ``SYST:LOCK ON`` (-221 otherwise); the lock
  is taken again after every reconnect;
- values come back **with units** (``43.50 V`` in the guide, ``43.50V`` seen on units): accepted both;
- the unit **drops a TCP connection after 5 s without traffic** and wants **>= 5 ms between messages**;
- at most **5 commands per line** (-223 and nothing executed beyond that);
- setpoints up to 102 % of nominal; protections (``VOLT:PROT`` etc.) up to 110 %;
- the power set value also limits the output: it is opened to the rating with the first voltage
  setpoint of a session, never on taking remote control (``rig check`` and ``rig safe`` change no setting);
- **alarms are acknowledged by reading the error queue** and the guide lists no clear command
  (``OUTP:PROT:CLE`` was answered ``-100`` by an emulator built from the guide read in full). So every
  error-queue read is preceded, in the same line, by ``STAT:QUES:COND?``: an alarm the driver's own
  ``SYST:ERR?`` acknowledges is remembered and reported by ``measure`` until ``clear_protection``,
  which acknowledges (reads the queue) and forces the output off, read back.

Optional command: ``STAT:QUES:COND?`` (guide 5.4, high; probed at open). Without it a latched alarm is
not named (``OUTP?`` still reads the terminal off) and the error-queue reads go without it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from instruments.capabilities import Capability, Feature
from instruments.drivers.scpi_base import ScpiInstrument, ScpiSupply
from instruments.errors import BadReply, InstrumentFault
from instruments.roles import SupplyProtection, SupplyReading
from instruments.scpi import ScpiSettings, ScpiTransport, parse_bool, parse_number

#: Transport behaviour shared by every EA unit (guide 2.7): >= 5 ms between messages, the unit drops a TCP
#: connection idle for 5 s (reconnect before that), at most 5 commands per line; the alarm status is
#: read in the same line before every error-queue read (which acknowledges alarms).
EA_SETTINGS = ScpiSettings(min_gap_s=0.005, idle_reconnect_s=4.0, max_commands_per_line=5,
                           alarm_query="STAT:QUES:COND?")
EA_GUIDE = "EA Programming Guide ModBus & SCPI, PGMBEN rev. 24"


def take_ea_lock(name: str, transport: ScpiTransport) -> None:
    """Clear errors, take the remote lock and check the unit granted it (guide 5.2: SYST:LOCK)."""
    transport.write("*CLS")
    transport.write("SYST:LOCK ON")
    owner = transport.query("SYST:LOCK:OWN?").upper()
    if owner != "REMOTE":
        raise InstrumentFault(name, f"remote lock refused (owner {owner!r}); is the unit set to LOCAL?",
                              "SYST:LOCK ON")


_ACKNOWLEDGE = "alarm acknowledged by reading the error queue (the guide has no clear command)"
# STAT:QUES:COND? bit values (guide, section 5: questionable status register).
EA_QUES_PROTECTIONS = {1: "OVP", 2: "OCP", 4: "OPP", 8: "OT", 8192: "PF"}


class EaUnit(ScpiInstrument):
    """What the EA supply and load drivers share: the lock and the alarms, which reading the error
    queue acknowledges (see the module docstring)."""

    DEFAULT_PORT = 5025
    REMOTE_RELEASE = "SYST:LOCK OFF"
    SETTINGS = EA_SETTINGS
    FRONT_PANEL_CLEAR = "acknowledge the alarm at the unit's front panel, then re-arm"

    def _make_transport(self, resource: str, visa_options: dict[str, Any] | None) -> None:
        super()._make_transport(resource, visa_options)
        self._alarms: dict[str, None] = {}  # ordered set: alarms seen since the last clear
        self.transport.on_alarm_status = self._note_alarms

    def _take_remote_control(self) -> None:
        take_ea_lock(self.name, self.transport)

    def probe_capabilities(self) -> dict[str, Capability]:
        super().probe_capabilities()
        if not self.has("status"):
            self.transport.settings = dataclasses.replace(self.transport.settings, alarm_query=None)
        self.capabilities["protection-clear"] = Capability("protection-clear", True, _ACKNOWLEDGE)
        return self.capabilities

    def _note_alarms(self, status: str) -> None:
        bits = int(parse_number(self.name, "STAT:QUES:COND?", status))
        self._alarms.update(dict.fromkeys(n for bit, n in EA_QUES_PROTECTIONS.items() if bits & bit))

    def _tripped(self, status: str | None) -> list[str]:
        """Alarms standing now, and any acknowledged (by an error-queue read) since the last clear."""
        if status is not None:
            self._note_alarms(status)
        return list(self._alarms)

    def _acknowledge(self) -> None:
        self.transport.drain_errors()
        self._alarms.clear()
        self.capabilities["protection-clear"] = Capability("protection-clear", True, _ACKNOWLEDGE)


class EaPsi(EaUnit, ScpiSupply):
    FAMILY = "Elektro-Automatik PSI 9000/10000 supply"
    MODEL_PATTERN = re.compile(r"^PSI ?(9\d{3}|1\d{4})-\d+")
    OPTIONAL = (
        Feature("status", "STAT:QUES:COND?", f"{EA_GUIDE}, 5.4", "high",
                "alarms not named: the output read back off is what the rig sees", "STAT:QUES:COND?"),
    )

    def _make_transport(self, resource: str, visa_options: dict[str, Any] | None) -> None:
        super()._make_transport(resource, visa_options)
        self._power_opened = False

    def _set_voltage(self, volts: float) -> None:
        if not self._power_opened:
            # The power set value also limits the output: open it to the rating so V and I alone govern.
            self._send(f"SOUR:POW {self._n(self.rating.power)}")
            self._power_opened = True
        self._send(f"SOUR:VOLT {self._n(volts)}")

    def _set_current_limit(self, amps: float) -> None:
        self._send(f"SOUR:CURR {self._n(amps)}")

    def _set_protection(self, ovp_volts: float, ocp_amps: float) -> None:
        self._send(f"SOUR:VOLT:PROT {self._n(ovp_volts)}")
        self._send(f"SOUR:CURR:PROT {self._n(ocp_amps)}")

    def read_protection(self) -> SupplyProtection:
        ovp, ocp = self._numbers("SOUR:VOLT:PROT?", "SOUR:CURR:PROT?")
        return SupplyProtection(ovp_volts=ovp, ocp_amps=ocp)

    # One round trip: MEAS:ARR? answers "U, I, P" in one reply.
    MEASURE = ("MEAS:ARR?", "OUTP?", "STAT:QUES:COND?")

    def _parse_measure(self, r: Mapping[str, str | None]) -> SupplyReading:
        array = r["MEAS:ARR?"] or ""
        values = [v for v in array.split(",") if v.strip()]
        if len(values) != 3:
            raise BadReply(self.name, f"reply {array!r} is not 'U, I, P'", "MEAS:ARR?")
        voltage = parse_number(self.name, "MEAS:ARR?", values[0])
        current = parse_number(self.name, "MEAS:ARR?", values[1])
        tripped = self._tripped(r["STAT:QUES:COND?"])
        return SupplyReading(voltage, current, parse_bool(self.name, "OUTP?", r["OUTP?"] or ""),
                             "+".join(tripped) or None)

    def clear_protection(self) -> None:
        """Output off, acknowledge the alarms (read the error queue), then off again and read back."""
        self._set_output(False)
        self._acknowledge()
        self.safe_state()
