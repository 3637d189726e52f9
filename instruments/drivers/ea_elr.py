"""Elektro-Automatik ELR 9000 / ELR 10000 regenerative electronic loads (e.g. ELR 11500-60 4U).

Source: EA "Programming Guide ModBus & SCPI", PGMBEN rev. 24 (2023): section 2.7 (TCP port 5025),
3.3.3 (remote control and the lock), 5.2 (syntax, 5 commands per line, error codes), 5.3 (reply
formats with units), 5.4 (command set: ``INPut``, ``[SOURce:]VOLTage|CURRent|POWer|RESistance``,
``SYSTem:CONFig:MODE``, ``MEASure:ARRay?``, status registers). Same dialect as the PSI supplies
(``ea_psi.py``). Confidence high for the command set, medium for the items marked below.

How the U, I and P set values act together (ELR 9000 user manual, 3.2 "Operating modes"): once the
input voltage exceeds the U set value the load sinks ``min(I, P/U)``; in ``UIR`` mode the R set value
limits too (``I = U/R``). So each mode is a combination, and the commands are ordered so that every
value that tightens the new setpoint goes out before any value that loosens it: a refusal part way
(each command is checked) leaves the load no looser than the old or the new setpoint.

    CC x: SOUR:CURR x, SOUR:POW <rating>, SOUR:VOLT 0, SYST:CONF:MODE UIP
    CV x: SOUR:VOLT x, SOUR:CURR <rating>, SOUR:POW <rating>, SYST:CONF:MODE UIP
    CP x: SOUR:POW x, SOUR:CURR <rating>, SOUR:VOLT 0, SYST:CONF:MODE UIP
    CR x: SYST:CONF:MODE UIR, SOUR:RES x, SOUR:CURR <rating>, SOUR:POW <rating>, SOUR:VOLT 0

Dialect quirks this driver handles:
- nothing that changes a value or state is accepted before ``SYST:LOCK ON`` (-221); the lock is taken
  (and ``SYST:LOCK:OWN?`` checked) again after every reconnect;
- values come back with units (``43.50 V`` or ``43.50V``); ``INP?`` answers ``ON|OFF``; there is no OUTP;
- the unit drops a TCP connection after 5 s without traffic and wants >= 5 ms between messages;
- at most 5 commands per line (-223, nothing executed);
- set values up to 102 % of nominal (-222 above).

Alarms, as on the PSI (``ea_psi.py``): the guide lists no clear command (``INP:PROT:CLE`` was answered
``-100`` by an emulator built from the guide read in full); alarms are acknowledged by reading the error
queue, so the alarm status is read in the same line before every error-queue read and remembered
until ``clear_protection``.

Medium confidence: ``STAT:QUES:COND?`` bits OVP 1, OCP 2, OPP 4, OT 8, PF 8192, and ``STAT:OPER:COND?``
bit 16 REM-SB (the inhibit input), as decoded by public drivers.

Optional commands (probed at open):
- ``STAT:QUES:COND?`` (guide 5.4, high): without it alarms are not named; ``INP?`` still reads off;
- ``STAT:OPER:COND?`` (guide 5.4, medium; an emulator's unit lacked it): without it the inhibit
  input (REM-SB) is not named by the load; the fixture's safety chain names the cause.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from instruments.capabilities import Feature
from instruments.drivers.ea_psi import EA_GUIDE, EaUnit
from instruments.drivers.scpi_base import ScpiLoad
from instruments.errors import BadReply
from instruments.roles import LoadMode, LoadReading
from instruments.scpi import parse_bool, parse_number

# STAT:OPER:COND? bit 4: REM-SB, the analog interface's standby input, wired to the rig's inhibit chain.
_OPER_REMOTE_STANDBY = 16


class EaElr(EaUnit, ScpiLoad):
    FAMILY = "Elektro-Automatik ELR 9000/10000 load"
    MODEL_PATTERN = re.compile(r"^ELR ?(9\d{3}|1\d{4})-\d+")
    INPUT_ON = "INP ON"
    INPUT_OFF = "INP OFF"
    OPTIONAL = (
        Feature("status", "STAT:QUES:COND?", f"{EA_GUIDE}, 5.4", "high",
                "alarms not named: the input read back off is what the rig sees", "STAT:QUES:COND?"),
        Feature("operation-status", "STAT:OPER:COND?", f"{EA_GUIDE}, 5.4; public drivers (REM-SB bit)", "medium",
                "inhibit (REM-SB) not named by the load: the fixture's safety chain names it", "STAT:OPER:COND?"),
    )

    def _set_mode(self, mode: LoadMode, level: float) -> None:
        x, amps, watts = self._n(level), self._n(self.rating.current), self._n(self.rating.power)
        if mode is LoadMode.CC:
            commands = [f"SOUR:CURR {x}", f"SOUR:POW {watts}", "SOUR:VOLT 0", "SYST:CONF:MODE UIP"]
        elif mode is LoadMode.CV:
            commands = [f"SOUR:VOLT {x}", f"SOUR:CURR {amps}", f"SOUR:POW {watts}", "SYST:CONF:MODE UIP"]
        elif mode is LoadMode.CP:
            commands = [f"SOUR:POW {x}", f"SOUR:CURR {amps}", "SOUR:VOLT 0", "SYST:CONF:MODE UIP"]
        else:
            commands = ["SYST:CONF:MODE UIR", f"SOUR:RES {x}", f"SOUR:CURR {amps}", f"SOUR:POW {watts}",
                        "SOUR:VOLT 0"]
        for command in commands:
            self._send(command)

    # One round trip: MEAS:ARR? answers "U, I, P" in one reply.
    MEASURE = ("MEAS:ARR?", "INP?", "STAT:QUES:COND?", "STAT:OPER:COND?")

    def _parse_measure(self, r: Mapping[str, str | None]) -> LoadReading:
        array = r["MEAS:ARR?"] or ""
        values = [v for v in array.split(",") if v.strip()]
        if len(values) != 3:
            raise BadReply(self.name, f"reply {array!r} is not 'U, I, P'", "MEAS:ARR?")
        tripped = self._tripped(r["STAT:QUES:COND?"])
        if self._status_bits("STAT:OPER:COND?", r["STAT:OPER:COND?"]) & _OPER_REMOTE_STANDBY:
            tripped.append("INH")
        return LoadReading(parse_number(self.name, "MEAS:ARR?", values[0]),
                           parse_number(self.name, "MEAS:ARR?", values[1]),
                           parse_bool(self.name, "INP?", r["INP?"] or ""),
                           "+".join(tripped) or None)

    def clear_protection(self) -> None:
        """Input off, acknowledge the alarms (read the error queue), then off again and read back."""
        self._set_input(False)
        self._acknowledge()
        self.safe_state()
