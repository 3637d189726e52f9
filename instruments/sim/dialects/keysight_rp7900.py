"""Simulated Keysight RP7900 regenerative supply: the RP7900 Operating and Service Guide command set as the
driver uses it, with the unit's behaviour (NR3 replies, signed integers, 102 % setpoint range, OCP at the
current limit, latched protections with ``OUTP?`` answering the programmed state, the I/O watchdog).

Models voltage priority only: ``FUNC CURR`` is stored and answered but does not change the physics.

Firmware variants: without the watchdog, without ``FUNC?`` (or ``FUNC`` too), without the status query,
refusing ``OUTP:PROT:CLE``, and ``clear-reenables``: a clear that restores the output to ON even after
``OUTP OFF`` (one reading of "the programmed state is not changed" by a protection event).
"""

from __future__ import annotations

from instruments.sim.model import SupplyUnit
from instruments.sim.scpi_dialect import ILLEGAL_PARAMETER, Dialect, ScpiCommandError

# Questionable1 condition bits (guide p. 241) for the protections the bench model latches.
_QUES_BITS = {"OVP": 1, "OCP": 2, "INH": 512, "WDOG": 2048}
_LIM_PLUS = 128  # output in positive voltage or current limit (a state, not a protection)


def _nr3(value: float) -> str:
    return f"{value:+.6E}"


class KeysightRP7900Sim(Dialect):
    MANUFACTURER = "Keysight Technologies"
    VARIANTS = {  # noqa: RUF012
        "no-watchdog": ("OUTPut:PROTection:WDOG[:STATe]", "OUTPut:PROTection:WDOG[:STATe]?",
                        "OUTPut:PROTection:WDOG:DELay", "OUTPut:PROTection:WDOG:DELay?"),
        "no-func-query": ("[SOURce:]FUNCtion?",),
        "no-func": ("[SOURce:]FUNCtion", "[SOURce:]FUNCtion?"),
        "no-status": ("STATus:QUEStionable:CONDition?",),
        "refuse-clear": ("OUTPut:PROTection:CLEar",),
        "clear-reenables": (),
    }
    unit: SupplyUnit

    def define(self) -> None:
        u = self.unit
        r = u.rating
        self.function = "VOLT"
        self.wdog_on = False
        self.wdog_delay = 60  # *RST value (p. 226)
        self.command("[SOURce:]FUNCtion", self._function)
        self.command("[SOURce:]FUNCtion?", lambda a: self.function)
        # Setpoints: 0 to 102 % of rating (N6900 family programming ranges), -222 beyond.
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                     lambda a: setattr(u, "voltage_set", self.number(a, 0, r.voltage * 1.02)))
        self.command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]?", lambda a: _nr3(u.voltage_set))
        self.command("[SOURce:]CURRent:LIMit[:POSitive][:IMMediate][:AMPLitude]",
                     lambda a: setattr(u, "current_set", self.number(a, 0, r.current * 1.02)))
        self.command("[SOURce:]CURRent:LIMit[:POSitive][:IMMediate][:AMPLitude]?", lambda a: _nr3(u.current_set))
        # OVP: 0 to 120 % of rating (read on an N6974A: 0..96 V for 80 V; not verified on an RP7900).
        self.command("[SOURce:]VOLTage:PROTection[:LEVel]",
                     lambda a: setattr(u, "ovp", self.number(a, 0, r.voltage * 1.2)))
        self.command("[SOURce:]VOLTage:PROTection[:LEVel]?", lambda a: _nr3(u.ovp))
        # OCP has no level: the output trips when it reaches the current limit.
        self.command("[SOURce:]CURRent:PROTection:STATe",
                     lambda a: setattr(u, "ocp_at_limit", self.boolean(a)))
        self.command("[SOURce:]CURRent:PROTection:STATe?", lambda a: "1" if u.ocp_at_limit else "0")
        self.command("OUTPut[:STATe]", lambda a: setattr(u, "output", self.boolean(a)))
        # The programmed state: "the output is latched off but the programmed output state is not changed".
        self.command("OUTPut[:STATe]?", lambda a: "1" if u.output else "0")
        self.command("OUTPut:PROTection:CLEar", self._clear)
        self.command("OUTPut:PROTection:WDOG[:STATe]", self._watchdog_state)
        self.command("OUTPut:PROTection:WDOG[:STATe]?", lambda a: "1" if self.wdog_on else "0")
        self.command("OUTPut:PROTection:WDOG:DELay", self._watchdog_delay)
        self.command("OUTPut:PROTection:WDOG:DELay?", lambda a: f"{self.wdog_delay:+d}")
        for verb in ("MEASure", "FETCh"):
            self.command(f"{verb}[:SCALar]:VOLTage[:DC]?", lambda a: _nr3(u.voltage))
            self.command(f"{verb}[:SCALar]:CURRent[:DC]?", lambda a: _nr3(u.current))
            self.command(f"{verb}[:SCALar]:POWer[:DC]?", lambda a: _nr3(u.voltage * u.current))
        self.command("STATus:QUEStionable:CONDition?", lambda a: f"{self._questionable():+d}")

    def _next_error(self, args: list[str]) -> str:
        code, message = self.errors.popleft() if self.errors else (0, "No error")
        return f'{code:+d},"{message}"'  # +0,"No error"

    def _function(self, args: list[str]) -> None:
        word = args[0].strip().upper() if args else ""
        if word not in ("VOLT", "VOLTAGE", "CURR", "CURRENT"):
            raise ScpiCommandError(*ILLEGAL_PARAMETER)
        if word[:4] != self.function:
            self.function = word[:4]
            self.unit.output = False  # a priority change switches the output off (seen on an N6974A)

    def _clear(self, args: list[str]) -> None:
        latched = self.unit.tripped is not None
        self.bench.clear_protection(self.unit)
        if latched and "clear-reenables" in self.variants:
            self.unit.output = True  # the output comes back on, whatever was programmed since the fault

    def _watchdog_state(self, args: list[str]) -> None:
        self.wdog_on = self.boolean(args)
        self._apply_watchdog()

    def _watchdog_delay(self, args: list[str]) -> None:
        # "1 to 3600 seconds in 1 second increments" (text) / "0 - 3600" (parameter table): both accepted.
        self.wdog_delay = round(self.number(args, 0, 3600))
        self._apply_watchdog()

    def _apply_watchdog(self) -> None:
        self.unit.watchdog_s = float(self.wdog_delay) if self.wdog_on else None

    def _questionable(self) -> int:
        u = self.unit
        bits = _QUES_BITS.get(u.tripped or "", 0)
        if u.delivering and u.current_set > 0 and u.current >= u.current_set * 0.999:
            bits |= _LIM_PLUS
        return bits
