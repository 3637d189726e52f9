"""Keysight RP7900 regenerative power systems (RP793xA, RP794xA, RP795xA, RP796xA).

Sources: Keysight "RP7900 Series Operating and Service Guide", chapter 5 "SCPI Programming Reference":
``OUTPut:PROTection:CLEar`` (end on p. 226: "the output is restored to the state it was in before the
fault"), ``OUTPut:PROTection:WDOG[:STATe]`` / ``:DELay`` (p. 226), ``VOLTage:PROTection`` family
(p. 238), Questionable1 status bits (p. 241) - pages read; ``VOLTage``, ``CURRent:LIMit``,
``FUNCtion`` (pp. 208-210, as cited in the shared instrument notes). Same SCPI family: N6900/N7900
guide p. 251 (``OUTP:PROT:CLE``) and p. 252 (watchdog). Behaviour and reply formats (``+8.160000E+01``,
``0|1``, ``+8192``, ``+0,"No error"``; priority switch resets the output; ``CURR`` inert in voltage
priority; OVP range 120 %, setpoints 102 %) as recorded on an N6974A by a public hardware driver.
Confidence: **medium** (guide pages and public drivers; not run against an RP7900 here).

Dialect quirks this driver handles:
- no remote/lock command on LAN; the unit must be in **voltage priority** (``FUNC VOLT``), where
  ``CURR:LIM`` is the current limit (``CURR`` is accepted there but has no effect). Switching priority
  switches the output off and resets the output settings, so it is sent only when ``FUNC?`` is not
  ``VOLT`` (never on a reconnect that finds the unit already in voltage priority);
- OCP has **no level**: ``CURR:PROT:STAT ON`` trips the output whenever it reaches the current limit,
  so ``read_protection`` reports ``ocp_amps=None`` and the limit set by ``set_current_limit`` is the trip;
- every protection **latches**; ``OUTP?`` keeps answering the *programmed* state (``1``) while a
  protection holds the output off, so the driver reports the output off when a disabling bit is set;
- ``OUTP:PROT:CLE`` "restores the output to the state it was in before the fault": the driver
  programs ``OUTP OFF`` first, so clearing a protection never re-energises the bench by itself;
- the I/O watchdog takes whole seconds, 1 to 3600 (p. 226; the parameter table says 0 - 3600):
  ``arm_watchdog`` rounds up and refuses more than 3600 s before anything is sent. It stays armed
  when the connection closes, so an idle unit would latch WDOG between sessions: ``close`` disarms
  the watchdog this driver armed, but only when ``OUTP?`` reads the output off;
- setpoints up to 102 % of rating (-222 beyond); ``MEAS:VOLT?`` is an acquisition (~21 ms at
  1 NPLC) and ``FETC:CURR?`` reads the current of that same acquisition.

Optional commands (``OPTIONAL`` below; probed at open unless marked "learnt when used"):
- ``OUTP:PROT:WDOG`` I/O watchdog (guide p. 226, medium; an emulator's firmware without it answered
  -113): without it the fixture heartbeat and inhibit chain are the only backstop for a dead PC;
- ``FUNC?`` priority query (pp. 208-210, medium): without it ``FUNC VOLT`` is sent once at open,
  and without ``FUNC`` the unit is taken to be voltage-priority only;
- ``STAT:QUES:COND?`` (p. 241, medium): without it a latched protection is not named, and since
  ``OUTP?`` answers the programmed state the output then reads ON while latched off: the rig sees
  it only in the measured voltage and current;
- ``OUTP:PROT:CLE`` (p. 226, medium; learnt when used): refused, the unit is reported with the
  front-panel action. Whatever the clear restores, the output is forced off and read back after it.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from typing import Any

from instruments.capabilities import Feature, is_unknown_command
from instruments.drivers.scpi_base import ScpiSupply
from instruments.errors import InstrumentFault, NotSupported, ScpiError, SetpointRefused
from instruments.roles import Rating, SupplyProtection, SupplyReading
from instruments.scpi import parse_bool, parse_number

# STAT:QUES:COND? (Questionable1) bits that mean "output is disabled by ..." (guide p. 241).
# LIM+ (128), LIM- (256) and UNR (1024) are regulation states, not protections.
_QUES_PROTECTIONS = {
    1: "OVP",  # OV: over-voltage protection
    2: "OCP",  # OC: over-current protection
    4: "PF",  # power fail (low line / brownout)
    8: "OPP",  # CP+: positive over-power limit
    16: "OTP",  # OT: over-temperature
    32: "OPP-",  # CP-: negative over-power limit
    64: "OV-",  # negative OV (reversed sense leads)
    512: "INH",  # external INHibit signal
    2048: "WDOG",  # PROT: watchdog timer protection
    4096: "EDP",  # excessive output dynamic protection
}
_WATCHDOG_MAX_S = 3600
_GUIDE = "RP7900 Operating and Service Guide"


class KeysightRP7900(ScpiSupply):
    FAMILY = "Keysight RP7900 regenerative supply"
    MODEL_PATTERN = re.compile(r"^RP79[3-6]\dA")
    DEFAULT_PORT = 5025
    OPTIONAL = (
        Feature("watchdog", "OUTP:PROT:WDOG", f"{_GUIDE} p. 226", "medium",
                "no I/O watchdog: the fixture heartbeat and inhibit chain are the backstop", "OUTP:PROT:WDOG?"),
        Feature("priority", "FUNC VOLT", f"{_GUIDE} pp. 208-210", "medium",
                "FUNC VOLT is sent once at open; voltage priority assumed", "FUNC?"),
        Feature("status", "STAT:QUES:COND?", f"{_GUIDE} p. 241", "medium",
                "latched protections not named (OUTP? shows the programmed state): measured V and I only",
                "STAT:QUES:COND?"),
        Feature("protection-clear", "OUTP:PROT:CLE", f"{_GUIDE} p. 226", "medium",
                "clear at the front panel"),
    )
    CLEAR = ("OUTP:PROT:CLE",)

    def __init__(self, name: str, resource: str, rating: Rating,
                 visa_options: dict[str, Any] | None = None) -> None:
        super().__init__(name, resource, rating, visa_options)
        self._watchdog_armed = False

    def _take_remote_control(self) -> None:
        self.transport.write("*CLS")
        self._voltage_priority()

    def close(self) -> None:
        if self._watchdog_armed and self.transport.is_open:
            with contextlib.suppress(InstrumentFault):  # closing anyway; the watchdog then stays armed
                if not parse_bool(self.name, "OUTP?", self.transport.query("OUTP?")):
                    self._send("OUTP:PROT:WDOG OFF")
                    self._watchdog_armed = False
        super().close()

    def _set_voltage(self, volts: float) -> None:
        self._send(f"VOLT {self._n(volts)}")

    def _set_current_limit(self, amps: float) -> None:
        self._send(f"CURR:LIM {self._n(amps)}")

    def _set_protection(self, ovp_volts: float, ocp_amps: float) -> None:
        # ocp_amps has no counterpart on this unit: OCP trips at the current limit (see module docstring).
        self._send(f"VOLT:PROT {self._n(ovp_volts)}")
        self._send("CURR:PROT:STAT ON")

    def read_protection(self) -> SupplyProtection:
        ovp, ocp_on = self.transport.query_many(("VOLT:PROT?", "CURR:PROT:STAT?"), retry=True)
        if not parse_bool(self.name, "CURR:PROT:STAT?", ocp_on):
            raise InstrumentFault(self.name, "over-current protection reads back OFF", "CURR:PROT:STAT?")
        return SupplyProtection(ovp_volts=parse_number(self.name, "VOLT:PROT?", ovp), ocp_amps=None)

    # One round trip, one acquisition: MEAS:VOLT? acquires, FETC:CURR? reads the same acquisition.
    MEASURE = ("MEAS:VOLT?", "FETC:CURR?", "OUTP?", "STAT:QUES:COND?")

    def _parse_measure(self, r: Mapping[str, str | None]) -> SupplyReading:
        bits = self._status_bits("STAT:QUES:COND?", r["STAT:QUES:COND?"])
        tripped = "+".join(name for bit, name in _QUES_PROTECTIONS.items() if bits & bit) or None
        programmed_on = parse_bool(self.name, "OUTP?", r["OUTP?"] or "")
        return SupplyReading(
            parse_number(self.name, "MEAS:VOLT?", r["MEAS:VOLT?"] or ""),
            parse_number(self.name, "FETC:CURR?", r["FETC:CURR?"] or ""),
            programmed_on and tripped is None,
            tripped,
        )

    def arm_watchdog(self, timeout_s: float) -> None:
        """Output latched off after ``timeout_s`` (rounded up to whole seconds) without any SCPI I/O."""
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise SetpointRefused(self.name, f"watchdog delay {timeout_s!r} s is not a finite value > 0")
        delay = max(1, math.ceil(timeout_s))
        if delay > _WATCHDOG_MAX_S:
            raise SetpointRefused(self.name, f"watchdog delay {delay} s refused: the unit takes 1 to 3600 s")
        if not self.has("watchdog"):
            raise NotSupported(self.name, self.capabilities["watchdog"].detail)
        try:
            self._send(f"OUTP:PROT:WDOG:DEL {delay}")
        except ScpiError as exc:
            if not is_unknown_command(exc.errors):
                raise
            self._record("watchdog", False, f"OUTP:PROT:WDOG:DEL refused: {self._feature('watchdog').without}")
            raise NotSupported(self.name, self.capabilities["watchdog"].detail) from None
        self._send("OUTP:PROT:WDOG ON")
        self._watchdog_armed = True
        held, state = self.transport.query_many(("OUTP:PROT:WDOG:DEL?", "OUTP:PROT:WDOG?"), retry=True)
        held_s = parse_number(self.name, "OUTP:PROT:WDOG:DEL?", held)
        if held_s != delay or not parse_bool(self.name, "OUTP:PROT:WDOG?", state):
            raise InstrumentFault(self.name, f"watchdog reads back {state} with {held} s; expected ON with {delay} s",
                                  "OUTP:PROT:WDOG?")
