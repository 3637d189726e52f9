"""Simulated EA ELR 9000/10000 load: the PGMBEN rev. 24 command set as the driver uses it, with the
unit's quirks (remote lock, units in replies, 5 commands per line, idle connections dropped and the
lock lost with them, -222 above 102 % of nominal).

The unit regulates on its U, I, P (and, in ``UIR`` mode, R) set values together; the bench model
takes one (mode, level). The set values map to it as follows, exactly for what the driver sends (the
values it does not regulate on held at the rating) and as an approximation otherwise:

- ``UIR`` mode: CR at the R set value (the I and P limits are not modelled in CR);
- ``UIP`` mode, U set > 0: CV at the U set value (the I and P limits are not modelled in CV);
- ``UIP`` mode, U set 0: CC at the I set value when P is at the rating, CP at the P set value when
  I is at the rating, and when both are below it whichever binds at the present input voltage (at the
  rated voltage while nothing is connected, which picks the smaller current).

An alarm switches the DC input off (``INP?`` then answers ``OFF``); reading the error queue acknowledges
it (there is no clear command) and the input stays off until switched on again.
"""

from __future__ import annotations

import time

from instruments.roles import LoadMode
from instruments.sim.dialects.ea_psi import EaDialect
from instruments.sim.model import LoadUnit
from instruments.sim.scpi_dialect import ScpiCommandError


class EaElrSim(EaDialect):
    unit: LoadUnit
    VARIANTS = {  # noqa: RUF012
        **EaDialect.VARIANTS,
        "no-oper-status": ("STATus:OPERation:CONDition?",),
    }

    def define(self) -> None:
        self.define_ea_common()
        u = self.unit
        r = u.rating
        top = 1.02  # set values up to 102 % of nominal
        self.config_mode = "UIP"
        self.u_set, self.i_set, self.p_set = 0.0, 0.0, r.power
        self.r_max = 100 * r.voltage / r.current  # stands in for SYST:NOM:RES:MAX?
        self.r_set = self.r_max
        self.command("SYSTem:CONFig:MODE", self._config_mode)
        self.command("SYSTem:CONFig:MODE?", lambda a: self.config_mode)
        for attr, spec, unit, high in (
            ("u_set", "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", "V", r.voltage * top),
            ("i_set", "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", "A", r.current * top),
            ("p_set", "[SOURce:]POWer[:LEVel][:IMMediate][:AMPLitude]", "W", r.power * top),
            ("r_set", "[SOURce:]RESistance[:LEVel][:IMMediate][:AMPLitude]", "Ohm", self.r_max),
        ):
            self.command(spec, lambda a, n=attr, h=high: self._set_value(n, self.number(a, 0, h)))
            self.command(spec + "?", lambda a, n=attr, s=unit: f"{getattr(self, n):.2f} {s}")
        self.command("INPut[:STATe]", lambda a: setattr(u, "input_on", self.boolean(a)))
        # The unit reports the DC input as it is: an alarm switches it off.
        self.command("INPut[:STATe]?", lambda a: "ON" if u.sinking else "OFF")
        self.command("STATus:QUEStionable:CONDition?", lambda a: str(self._questionable()))
        self.command("STATus:OPERation:CONDition?", lambda a: "16" if u.tripped == "INH" else "0")
        self._apply()

    def reset(self) -> None:
        self.unit.input_on = False

    def handle_line(self, line: str) -> str | None:
        # A line after more than IDLE_DROP_S of silence arrives on a new connection (the server dropped
        # every idle one); the unit left remote control with the dropped connection.
        if time.monotonic() - self.unit.last_io > self.IDLE_DROP_S:
            self.locked = False
        return super().handle_line(line)

    def _config_mode(self, args: list[str]) -> None:
        word = args[0].strip().upper() if args else ""
        if word not in ("UIP", "UIR"):
            raise ScpiCommandError(-224, "Illegal parameter value")
        self.config_mode = word
        self._apply()

    def _set_value(self, attr: str, value: float) -> None:
        setattr(self, attr, value)
        self._apply()

    def _apply(self) -> None:
        """Map the U/I/P/R set values to the model's (mode, level); see the module docstring."""
        u, r = self.unit, self.unit.rating
        if self.config_mode == "UIR":
            u.mode, u.level = LoadMode.CR, self.r_set
        elif self.u_set > 0:
            u.mode, u.level = LoadMode.CV, self.u_set
        elif self.p_set >= r.power:
            u.mode, u.level = LoadMode.CC, self.i_set
        elif self.i_set >= r.current:
            u.mode, u.level = LoadMode.CP, self.p_set
        else:
            volts = u.voltage if u.voltage > self.bench.params.load_knee_v else r.voltage
            if self.i_set <= self.p_set / volts:
                u.mode, u.level = LoadMode.CC, self.i_set
            else:
                u.mode, u.level = LoadMode.CP, self.p_set

    def _questionable(self) -> int:
        u = self.unit
        bits = {"OVP": 1, "OCP": 2, "OPP": 4, "OT": 8}.get(u.tripped or "", 0)
        if self.locked:
            bits |= 1024
        if u.sinking:
            bits |= 2048
        return bits
