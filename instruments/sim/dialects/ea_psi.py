"""Simulated EA PSI 9000/10000 supply: the PGMBEN rev. 24 command set as the driver uses it, with the
unit's quirks (remote lock, units in replies, 5 commands per line, idle connections dropped, an unknown
command answered ``-100``, no protection-clear command: reading the error queue acknowledges an alarm)."""

from __future__ import annotations

import re

from instruments.sim.model import LoadUnit, PowerUnit, SupplyUnit
from instruments.sim.scpi_dialect import Dialect

# Alarms an error-queue read acknowledges; INH (the REM-SB input) too, once the input is released.
_ALARMS = ("OVP", "OCP", "OPP", "OT", "INH")


class EaDialect(Dialect):
    """What every simulated EA unit shares (guide 2.7, 5.2): the remote lock, at most 5 commands per
    line, idle connections dropped after 5 s, measurements answered with units."""

    MANUFACTURER = "EA Elektro-Automatik GmbH & Co. KG"
    UNKNOWN_COMMAND = (-100, "Command error")
    VARIANTS = {"no-status": ("STATus:QUEStionable:CONDition?",)}  # noqa: RUF012
    MAX_COMMANDS_PER_LINE = 5
    IDLE_DROP_S = 5.0
    unit: PowerUnit

    def define_ea_common(self) -> None:
        self.locked = False
        u = self.unit
        self.command("SYSTem:LOCK[:STATe]", lambda a: setattr(self, "locked", self.boolean(a)))
        self.command("SYSTem:LOCK:OWNer?", lambda a: "REMOTE" if self.locked else "NONE")
        self.command("MEASure[:SCALar]:VOLTage[:DC]?", lambda a: f"{u.voltage:.2f} V")
        self.command("MEASure[:SCALar]:CURRent[:DC]?", lambda a: f"{u.current:.2f} A")
        self.command("MEASure[:SCALar]:POWer[:DC]?", lambda a: f"{u.voltage * u.current:.2f} W")
        self.command("MEASure[:SCALar]:ARRay?",
                     lambda a: f"{u.voltage:.2f} V, {u.current:.2f} A, {u.voltage * u.current:.2f} W")

    def _next_error(self, args: list[str]) -> str:
        """Reading the error queue acknowledges an alarm (as reported of the guide): the DC terminal
        stays off, and the alarm bits clear unless the cause persists (the model latches it again)."""
        u = self.unit
        if u.tripped in _ALARMS:
            if isinstance(u, LoadUnit):
                u.input_on = False
            elif isinstance(u, SupplyUnit):
                u.output = False
            self.bench.clear_protection(u)
        return super()._next_error(args)

    def remote_required(self, header: str) -> bool:
        # Nothing that changes a value or state before SYST:LOCK ON (guide 5.2); the lock itself is exempt.
        # IEEE 488.2 common commands (*CLS ...) are not settings.
        return not self.locked and not header.startswith("*") and \
            not re.match(r"SYST(EM)?:LOCK\b", header, re.IGNORECASE)


class EaPsiSim(EaDialect):
    unit: SupplyUnit

    def define(self) -> None:
        self.define_ea_common()
        u = self.unit
        top = 1.02  # setpoints up to 102 % of nominal, protections up to 110 %
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                     lambda a: setattr(u, "voltage_set", self.number(a, 0, u.rating.voltage * top)))
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]?", lambda a: f"{u.voltage_set:.2f} V")
        self.command("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]",
                     lambda a: setattr(u, "current_set", self.number(a, 0, u.rating.current * top)))
        self.command("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]?", lambda a: f"{u.current_set:.2f} A")
        self.command("[SOURce:]POWer[:LEVel][:IMMediate][:AMPLitude]",
                     lambda a: setattr(u, "power_set", self.number(a, 0, u.rating.power * top)))
        self.command("[SOURce:]VOLTage:PROTection[:LEVel]",
                     lambda a: setattr(u, "ovp", self.number(a, 0, u.rating.voltage * 1.1)))
        self.command("[SOURce:]VOLTage:PROTection[:LEVel]?", lambda a: f"{u.ovp:.2f} V")
        self.command("[SOURce:]CURRent:PROTection[:LEVel]",
                     lambda a: setattr(u, "ocp", self.number(a, 0, u.rating.current * 1.1)))
        self.command("[SOURce:]CURRent:PROTection[:LEVel]?", lambda a: f"{u.ocp or 0:.2f} A")
        self.command("OUTPut[:STATe]", lambda a: setattr(u, "output", self.boolean(a)))
        # The unit reports the DC terminal as it is: a protection switches it off.
        self.command("OUTPut[:STATe]?", lambda a: "ON" if u.delivering else "OFF")
        self.command("STATus:QUEStionable:CONDition?", lambda a: str(self._questionable()))

    def _questionable(self) -> int:
        u = self.unit
        bits = {"OVP": 1, "OCP": 2, "OPP": 4}.get(u.tripped or "", 0)
        if self.locked:
            bits |= 1024
        if u.delivering:
            bits |= 2048
        return bits
