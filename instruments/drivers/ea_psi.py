"""Elektro-Automatik PSI 9000 / PSI 10000 programmable DC supplies.

Source: EA "Programming Guide ModBus & SCPI", PGMBEN rev. 24 (2023): section 2.7 (TCP port 5025, Modbus
TCP on 502), section 5 (SCPI command set, reply formats, status registers).

Dialect quirks this driver handles:
- nothing that changes a value or state is accepted before ``SYST:LOCK ON`` (-221 otherwise); the lock
  is taken again after every reconnect;
- values come back **with units** (``43.50 V`` in the guide, ``43.50V`` seen on units): accepted both;
- the unit **drops a TCP connection after 5 s without traffic** and wants **>= 5 ms between messages**;
- at most **5 commands per line** (-223 and nothing executed beyond that);
- setpoints up to 102 % of nominal; protections (``VOLT:PROT`` etc.) up to 110 %.
"""

from __future__ import annotations

import re

from instruments.drivers.scpi_base import ScpiSupply
from instruments.errors import BadReply, InstrumentFault
from instruments.roles import SupplyProtection, SupplyReading
from instruments.scpi import ScpiSettings, ScpiTransport, parse_bool, parse_number

#: Transport behaviour shared by every EA unit (guide 2.7): >= 5 ms between messages, the unit drops a TCP
#: connection idle for 5 s (reconnect before that), at most 5 commands per line.
EA_SETTINGS = ScpiSettings(min_gap_s=0.005, idle_reconnect_s=4.0, max_commands_per_line=5)


def take_ea_lock(name: str, transport: ScpiTransport) -> None:
    """Clear errors, take the remote lock and check the unit granted it (guide 5.2: SYST:LOCK)."""
    transport.write("*CLS")
    transport.write("SYST:LOCK ON")
    owner = transport.query("SYST:LOCK:OWN?").upper()
    if owner != "REMOTE":
        raise InstrumentFault(name, f"remote lock refused (owner {owner!r}); is the unit set to LOCAL?",
                              "SYST:LOCK ON")


# STAT:QUES:COND? bit values (guide, section 5: questionable status register).
_QUES_PROTECTIONS = {1: "OVP", 2: "OCP", 4: "OPP", 8: "OT", 8192: "PF"}


class EaPsi(ScpiSupply):
    FAMILY = "Elektro-Automatik PSI 9000/10000 supply"
    MODEL_PATTERN = re.compile(r"^PSI ?(9\d{3}|1\d{4})-\d+")
    DEFAULT_PORT = 5025
    REMOTE_RELEASE = "SYST:LOCK OFF"
    SETTINGS = EA_SETTINGS

    def _take_remote_control(self) -> None:
        take_ea_lock(self.name, self.transport)
        # The power set value also limits the output: open it to the rating so V and I alone govern.
        self._send(f"SOUR:POW {self._n(self.rating.power)}")

    def _set_voltage(self, volts: float) -> None:
        self._send(f"SOUR:VOLT {self._n(volts)}")

    def _set_current_limit(self, amps: float) -> None:
        self._send(f"SOUR:CURR {self._n(amps)}")

    def _set_protection(self, ovp_volts: float, ocp_amps: float) -> None:
        self._send(f"SOUR:VOLT:PROT {self._n(ovp_volts)}")
        self._send(f"SOUR:CURR:PROT {self._n(ocp_amps)}")

    def read_protection(self) -> SupplyProtection:
        ovp, ocp = self._numbers("SOUR:VOLT:PROT?", "SOUR:CURR:PROT?")
        return SupplyProtection(ovp_volts=ovp, ocp_amps=ocp)

    def measure(self) -> SupplyReading:
        # One round trip: MEAS:ARR? answers "U, I, P" in one reply.
        commands = ("MEAS:ARR?", "OUTP?", "STAT:QUES:COND?")
        array, output, status = self.transport.query_many(commands, retry=True)
        values = [v for v in array.split(",") if v.strip()]
        if len(values) != 3:
            raise BadReply(self.name, f"reply {array!r} is not 'U, I, P'", "MEAS:ARR?")
        voltage = parse_number(self.name, "MEAS:ARR?", values[0])
        current = parse_number(self.name, "MEAS:ARR?", values[1])
        bits = int(parse_number(self.name, "STAT:QUES:COND?", status))
        tripped = [name for bit, name in _QUES_PROTECTIONS.items() if bits & bit]
        return SupplyReading(voltage, current, parse_bool(self.name, "OUTP?", output),
                             "+".join(tripped) or None)

    def clear_protection(self) -> None:
        self._send("OUTP:PROT:CLE")
