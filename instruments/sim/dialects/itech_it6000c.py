"""Simulated ITECH IT6000C supply: the command set the driver uses, in the spellings the public sources
use (both accepted where they disagree), with the unit's behaviour as far as it is known: ``SYST:REM``
before settings (-221 otherwise, as the serial port requires), setpoints up to 101 % of rating, OVP/OCP
trip levels with their own on/off states, replies as plain numbers (``11.9827``).

Low confidence, see ``instruments.drivers.itech_it6000c``. Models voltage priority only; protection
levels accepted up to 110 % of rating (not verified); ``OUTP?`` answers the terminal state (0 while a
protection holds the output off; not verified).
"""

from __future__ import annotations

import math

from instruments.sim.model import SupplyUnit
from instruments.sim.scpi_dialect import ILLEGAL_PARAMETER, Dialect, ScpiCommandError

# STAT:QUES:COND? bits for the protections the bench model latches; anything else reads as PROTECTION.
_QUES_BITS = {"OVP": 1, "OCP": 2, "OPP": 8, "OTP": 64, "INH": 2048}
_OTHER_PROTECTION = 8192


def _nr(value: float) -> str:
    return f"{value:.6g}"  # as the live unit answers: 11.9827, 0.00123215


class ItechIT6000CSim(Dialect):
    MANUFACTURER = "ITECH Electronics"
    VARIANTS = {  # noqa: RUF012 - firmware lacking commands the public driver uses
        "no-func-query": ("[SOURce:]FUNCtion?",),
        "no-func": ("[SOURce:]FUNCtion", "[SOURce:]FUNCtion?"),
        "no-status": ("STATus:QUEStionable:CONDition?",),
        "no-undervoltage": ("[SOURce:]VOLTage:UNDer:PROTection:STATe", "[SOURce:]VOLTage:UNDer:PROTection:STATe?",
                            "[SOURce:]CURRent:UNDer:PROTection:STATe", "[SOURce:]CURRent:UNDer:PROTection:STATe?"),
        "refuse-clear": ("OUTPut:PROTection:CLEar", "PROTection:CLEar"),
        "load-style-clear": ("OUTPut:PROTection:CLEar",),
    }
    unit: SupplyUnit

    def define(self) -> None:
        u = self.unit
        r = u.rating
        self.remote = False
        self.function = "VOLT"
        self.ovp_level, self.ovp_on = r.voltage * 1.1, True
        self.ocp_level, self.ocp_on = r.current * 1.1, True
        self.uvp_on = self.ucp_on = True  # as shipped (UVP ON seen on the live unit)
        self._apply_protection()
        self.command("SYSTem:REMote", lambda a: setattr(self, "remote", True))
        self.command("SYSTem:LOCal", lambda a: setattr(self, "remote", False))
        self.command("[SOURce:]FUNCtion", self._function)
        self.command("[SOURce:]FUNCtion?", lambda a: self.function)
        top = 1.01  # SCPI maxima: 808 V / 227.25 A on the 800 V / 225 A model
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                     lambda a: setattr(u, "voltage_set", self.number(a, 0, r.voltage * top)))
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]?", lambda a: _nr(u.voltage_set))
        # In voltage priority CURR:LIM is the limit; CURR mirrors it there (live unit) - both set it.
        for spec in ("[SOURce:]CURRent:LIMit[:POSitive][:LEVel]", "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]"):
            self.command(spec, lambda a: setattr(u, "current_set", self.number(a, 0, r.current * top)))
            self.command(spec + "?", lambda a: _nr(u.current_set))
        # OVP / OCP: trip levels with on/off states; "[:OVER]" accepts both published spellings.
        self.command("[SOURce:]VOLTage[:OVER]:PROTection[:LEVel]",
                     lambda a: self._protection("ovp_level", self.number(a, 0, r.voltage * 1.1)))
        self.command("[SOURce:]VOLTage[:OVER]:PROTection[:LEVel]?", lambda a: _nr(self.ovp_level))
        self.command("[SOURce:]VOLTage[:OVER]:PROTection:STATe", lambda a: self._protection("ovp_on", self.boolean(a)))
        self.command("[SOURce:]VOLTage[:OVER]:PROTection:STATe?", lambda a: "1" if self.ovp_on else "0")
        self.command("[SOURce:]CURRent[:OVER]:PROTection[:LEVel]",
                     lambda a: self._protection("ocp_level", self.number(a, 0, r.current * 1.1)))
        self.command("[SOURce:]CURRent[:OVER]:PROTection[:LEVel]?", lambda a: _nr(self.ocp_level))
        self.command("[SOURce:]CURRent[:OVER]:PROTection:STATe", lambda a: self._protection("ocp_on", self.boolean(a)))
        self.command("[SOURce:]CURRent[:OVER]:PROTection:STATe?", lambda a: "1" if self.ocp_on else "0")
        self.command("[SOURce:]VOLTage:UNDer:PROTection:STATe", lambda a: setattr(self, "uvp_on", self.boolean(a)))
        self.command("[SOURce:]VOLTage:UNDer:PROTection:STATe?", lambda a: "1" if self.uvp_on else "0")
        self.command("[SOURce:]CURRent:UNDer:PROTection:STATe", lambda a: setattr(self, "ucp_on", self.boolean(a)))
        self.command("[SOURce:]CURRent:UNDer:PROTection:STATe?", lambda a: "1" if self.ucp_on else "0")
        self.command("OUTPut[:STATe]", lambda a: setattr(u, "output", self.boolean(a)))
        self.command("OUTPut[:STATe]?", lambda a: "1" if u.delivering else "0")
        # OUTP:PROT:CLE on the live unit; PROT:CLE in ITECH load manuals: both accepted.
        self.command("OUTPut:PROTection:CLEar", lambda a: self.bench.clear_protection(u))
        self.command("PROTection:CLEar", lambda a: self.bench.clear_protection(u))
        self.command("MEASure[:SCALar]:VOLTage[:DC]?", lambda a: _nr(u.voltage))
        self.command("MEASure[:SCALar]:CURRent[:DC]?", lambda a: _nr(u.current))
        self.command("MEASure[:SCALar]:POWer[:DC]?", lambda a: _nr(u.voltage * u.current))
        self.command("STATus:QUEStionable:CONDition?", lambda a: str(self._questionable()))

    def remote_required(self, header: str) -> bool:
        return not self.remote and not header.upper().startswith(("SYST", "*CLS"))

    def _function(self, args: list[str]) -> None:
        word = args[0].strip().upper() if args else ""
        if word not in ("VOLT", "VOLTAGE", "CURR", "CURRENT"):
            raise ScpiCommandError(*ILLEGAL_PARAMETER)
        self.function = word[:4]

    def _protection(self, name: str, value: float | bool) -> None:
        setattr(self, name, value)
        self._apply_protection()

    def _apply_protection(self) -> None:
        self.unit.ovp = self.ovp_level if self.ovp_on else math.inf
        self.unit.ocp = self.ocp_level if self.ocp_on else None

    def _questionable(self) -> int:
        tripped = self.unit.tripped
        if tripped is None:
            return 0
        return _QUES_BITS.get(tripped, _OTHER_PROTECTION)
