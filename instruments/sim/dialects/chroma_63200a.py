"""Simulated Chroma 63200A electronic load: CONF:REM, MODE with range suffix, STATic:L1 levels,
LOAD ON|OFF, MEASure queries in NR2."""

from __future__ import annotations

from instruments.roles import LoadMode
from instruments.sim.model import LoadUnit
from instruments.sim.scpi_dialect import Dialect, ScpiCommandError

_MODES = {"CC": LoadMode.CC, "CR": LoadMode.CR, "CV": LoadMode.CV, "CP": LoadMode.CP}


class Chroma63200ASim(Dialect):
    MANUFACTURER = "Chroma"
    VARIANTS = {"refuse-clear": ("LOAD:PROTection:CLEar",)}  # noqa: RUF012
    unit: LoadUnit

    def define(self) -> None:
        self.remote = False
        self.levels = {mode: 0.0 for mode in LoadMode}
        self.levels[LoadMode.CR] = 1e6
        self.mode_word = "CCH"
        u = self.unit
        r = u.rating
        self.command("CONFigure:REMote", lambda a: setattr(self, "remote", self.boolean(a)))
        self.command("MODE", self._mode)
        self.command("MODE?", lambda a: self.mode_word)
        for mode, spec, high in (
            (LoadMode.CC, "CURRent:STATic:L1", r.current),
            (LoadMode.CR, "RESistance:STATic:L1", 1e7),
            (LoadMode.CV, "VOLTage:STATic:L1", r.voltage),
            (LoadMode.CP, "POWer:STATic:L1", r.power),
        ):
            self.command(spec, lambda a, m=mode, h=high: self._level(m, self.number(a, 0, h)))
            self.command(spec + "?", lambda a, m=mode: f"{self.levels[m]:.4f}")
        self.command("LOAD[:STATe]", lambda a: setattr(u, "input_on", self.boolean(a)))
        self.command("LOAD[:STATe]?", lambda a: "ON" if u.input_on else "OFF")
        self.command("LOAD:PROTection?", lambda a: "0" if u.tripped is None else "1")
        self.command("LOAD:PROTection:CLEar", lambda a: self.bench.clear_protection(u))
        self.command("MEASure:VOLTage?", lambda a: f"{u.voltage:.4f}")
        self.command("MEASure:CURRent?", lambda a: f"{u.current:.4f}")
        self.command("MEASure:POWer?", lambda a: f"{u.voltage * u.current:.4f}")

    def _mode(self, args: list[str]) -> None:
        word = (args[0].strip().upper() if args else "")
        if word[:2] not in _MODES or word[2:] not in ("L", "M", "H"):
            raise ScpiCommandError(-224, "Illegal parameter value")
        self.mode_word = word
        self.unit.mode = _MODES[word[:2]]
        self.unit.level = self.levels[self.unit.mode]

    def _level(self, mode: LoadMode, value: float) -> None:
        self.levels[mode] = value
        if self.unit.mode is mode:
            self.unit.level = value
