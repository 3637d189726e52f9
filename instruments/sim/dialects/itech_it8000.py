"""Simulated ITECH IT8000 load: SYST:REM, FUNC with one level held per mode, INP ON|OFF (``INP?`` -> 0|1),
MEASure/FETCh queries in NR2, questionable status bits as in the IT8200 guide, PROT:CLE.

A protection switches the input OFF (``INP?`` then answers ``0``); ``PROT:CLE`` clears the latch and the
input stays off until switched on again. Levels above the rating are refused with -222.
"""

from __future__ import annotations

from instruments.roles import LoadMode
from instruments.sim.model import LoadUnit
from instruments.sim.scpi_dialect import Dialect, ScpiCommandError, compile_header

_FUNCTIONS = {
    LoadMode.CC: compile_header("CURRent"),
    LoadMode.CV: compile_header("VOLTage"),
    LoadMode.CP: compile_header("POWer"),
    LoadMode.CR: compile_header("RESistance"),
}
_WORDS = {LoadMode.CC: "CURR", LoadMode.CV: "VOLT", LoadMode.CP: "POW", LoadMode.CR: "RES"}
_QUES = {"OVP": 1, "OCP": 2, "OPP": 8, "OT": 64, "INH": 2048, "WDOG": 262144}


class ItechIT8000Sim(Dialect):
    MANUFACTURER = "ITECH Ltd."
    VARIANTS = {  # noqa: RUF012
        "no-status": ("STATus:QUEStionable:CONDition?",),
        "refuse-clear": ("PROTection:CLEar",),
    }
    unit: LoadUnit

    def define(self) -> None:
        u = self.unit
        r = u.rating
        self.remote = False
        self.levels = {LoadMode.CC: 0.0, LoadMode.CV: r.voltage, LoadMode.CP: 0.0, LoadMode.CR: 1e4}
        self.command("SYSTem:REMote", lambda a: setattr(self, "remote", True))
        self.command("SYSTem:LOCal", lambda a: setattr(self, "remote", False))
        self.command("[SOURce:]FUNCtion", self._function)
        self.command("[SOURce:]FUNCtion?", lambda a: _WORDS[u.mode])
        for mode, spec, high in (
            (LoadMode.CC, "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", r.current),
            (LoadMode.CV, "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", r.voltage),
            (LoadMode.CP, "[SOURce:]POWer[:LEVel][:IMMediate][:AMPLitude]", r.power),
            (LoadMode.CR, "[SOURce:]RESistance[:LEVel][:IMMediate][:AMPLitude]", 1e6),
        ):
            self.command(spec, lambda a, m=mode, h=high: self._level(m, self.number(a, 0, h)))
            self.command(spec + "?", lambda a, m=mode: f"{self.levels[m]:.4f}")
        self.command("INPut[:STATe]", lambda a: setattr(u, "input_on", self.boolean(a)))
        self.command("INPut[:STATe]?", lambda a: "1" if u.sinking else "0")
        self.command("PROTection:CLEar", self._clear)
        for node in ("MEASure", "FETCh"):
            self.command(f"{node}[:SCALar]:VOLTage[:DC]?", lambda a: f"{u.voltage:.4f}")
            self.command(f"{node}[:SCALar]:CURRent[:DC]?", lambda a: f"{u.current:.4f}")
            self.command(f"{node}[:SCALar]:POWer[:DC]?", lambda a: f"{u.voltage * u.current:.4f}")
        self.command("STATus:QUEStionable:CONDition?", lambda a: str(_QUES.get(u.tripped or "", 0)))
        u.mode, u.level = LoadMode.CC, self.levels[LoadMode.CC]

    def reset(self) -> None:
        self.unit.input_on = False

    def _function(self, args: list[str]) -> None:
        word = args[0].strip() if args else ""
        mode = next((m for m, pattern in _FUNCTIONS.items() if pattern.match(word)), None)
        if mode is None:
            raise ScpiCommandError(-224, "Illegal parameter value")
        self.unit.mode, self.unit.level = mode, self.levels[mode]

    def _level(self, mode: LoadMode, value: float) -> None:
        self.levels[mode] = value
        if self.unit.mode is mode:
            self.unit.level = value

    def _clear(self, args: list[str]) -> None:
        self.unit.input_on = False  # the protection switched the input off; clearing leaves it off
        self.bench.clear_protection(self.unit)
