"""ITECH IT6000C bidirectional (regenerative) DC supplies, e.g. IT6054C-800-225, IT6015C-80-450.

Sources: ITECH "IT6000C Programming Guide" (EN, the command set); the command spellings, reply
formats and status bits below are as used against a live IT6054C-800-225 by a public driver
(OpenBench ``itech_it6000c``, live test record 2026-08-13: ``SYST:REM``, ``FUNC VOLT``, ``VOLT``,
``CURR:LIM``, ``VOLT:PROT[:STAT]``, ``CURR:PROT[:STAT]``, ``VOLT:UND:PROT:STAT``, ``OUTP:PROT:CLE``,
``STAT:QUES:COND?``; ``*IDN?`` -> ``ITECH Electronics,IT6054C-800-225,<serial>,000.006.101,640.R,
132.R``; SCPI maxima 101 % of rated V and I). Raw SCPI socket on port 30000 (ITECH's default).
Confidence: **low** (no vendor manual page read here; one hardware-tested public driver and public
scripts, which disagree in places).

Dialect quirks this driver handles, and where sources conflict:
- ``SYST:REM`` before settings (required on the serial port; sent on LAN too, after every reconnect);
  ``SYST:LOC`` on close hands the front panel back;
- **priority**: in voltage priority (``FUNC VOLT``) the current limit is ``CURR:LIM``; ``CURR`` is the
  current-priority setpoint (the live unit mirrors it to ``CURR:LIM`` in CV; one note reads
  ``CURR`` = ``CURR:LIM``). ``FUNC VOLT`` is sent only when ``FUNC?`` says otherwise;
- OCP is a **trip level**: ``CURR:PROT`` + ``CURR:PROT:STAT`` on the live unit, ``CURR:OVER:PROT``
  + ``CURR:OVER:PROT:STAT`` in another public driver (``[:OVER]`` is probably an optional node);
- the unit ships with **under-voltage/under-current protections on** (UVP 10 V seen on the live
  unit), which trip a supply held below them: ``_set_protection`` switches them off;
- protection clear is ``OUTP:PROT:CLE`` on the live unit (``PROT:CLE`` in ITECH load manuals); the
  driver programs ``OUTP OFF`` first so a clear never re-energises the bench by itself;
- replies are plain numbers (``11.9827``, ``0.00123215`` from the live unit; NR2 such as
  ``12.0000`` in other notes), ``OUTP?`` -> ``0|1``, ``STAT:QUES:COND?`` -> NR1.
Not verified: whether ``;``-joined queries are answered in one line (the live driver sent one query
per message), and what ``OUTP?`` answers while a protection holds the output off.

Optional commands (``OPTIONAL`` below; probed at open unless marked "learnt when used"), all low
confidence (the live-tested public driver; an emulator built from the manual lacked ``FUNC?``):
- ``FUNC?``: without it ``FUNC VOLT`` is sent once at open; without ``FUNC`` too, the unit is taken
  to be voltage-priority only;
- ``STAT:QUES:COND?``: without it a latched protection is not named; ``OUTP?`` (the terminal state)
  still shows the output off;
- ``VOLT:UND:PROT:STAT`` / ``CURR:UND:PROT:STAT``: without them nothing is switched off, and a
  unit shipped with UVP on may trip when held below its UVP level;
- protection clear (learnt when used): ``OUTP:PROT:CLE`` (live unit), else ``PROT:CLE`` (ITECH load
  manuals); neither accepted, the unit is reported with the front-panel action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from instruments.capabilities import Feature
from instruments.drivers.scpi_base import ScpiSupply
from instruments.errors import InstrumentFault
from instruments.roles import SupplyProtection, SupplyReading
from instruments.scpi import parse_bool, parse_number

_SOURCE = "ITECH IT6000C Programming Guide; OpenBench itech_it6000c (live IT6054C)"

# STAT:QUES:COND? bits that latch the output off (as decoded by the live-tested driver). SENSE (256) and
# POWER-STATE (4096) are left out: nothing says they disable the output.
_QUES_PROTECTIONS = {
    1: "OVP",
    2: "OCP",  # OCP+
    4: "OCP-",
    8: "OPP",  # OPP+
    16: "OPP-",
    32: "UVP",
    64: "OTP",
    128: "UCP",
    512: "SHARE",  # current-sharing fault (parallel units)
    1024: "REV",  # reverse voltage
    2048: "INH",  # external inhibit
    8192: "PROT",  # other protection (e.g. the I/O watchdog)
    16384: "FAULT",  # internal fault
}


class ItechIT6000C(ScpiSupply):
    FAMILY = "ITECH IT6000C supply"
    MODEL_PATTERN = re.compile(r"^IT6\d{3}C-\d+-\d+")
    DEFAULT_PORT = 30000
    REMOTE_RELEASE = "SYST:LOC"
    OPTIONAL = (
        Feature("priority", "FUNC VOLT", _SOURCE, "low", "FUNC VOLT is sent once at open; voltage priority assumed",
                "FUNC?"),
        Feature("status", "STAT:QUES:COND?", _SOURCE, "low",
                "latched protections not named: the output read back off is what the rig sees", "STAT:QUES:COND?"),
        Feature("undervoltage-protection", "VOLT:UND:PROT:STAT OFF", _SOURCE, "low",
                "UVP/UCP left as the unit has them: a supply held below its UVP level may trip",
                "VOLT:UND:PROT:STAT?"),
        Feature("protection-clear", "OUTP:PROT:CLE | PROT:CLE", _SOURCE, "low", "clear at the front panel"),
    )
    CLEAR = ("OUTP:PROT:CLE", "PROT:CLE")

    def _take_remote_control(self) -> None:
        self.transport.write("*CLS")
        self._send("SYST:REM")
        self._voltage_priority()

    def _set_voltage(self, volts: float) -> None:
        self._send(f"VOLT {self._n(volts)}")

    def _set_current_limit(self, amps: float) -> None:
        self._send(f"CURR:LIM {self._n(amps)}")

    def _set_protection(self, ovp_volts: float, ocp_amps: float) -> None:
        self._send(f"VOLT:PROT {self._n(ovp_volts)}")
        self._send("VOLT:PROT:STAT ON")
        self._send(f"CURR:PROT {self._n(ocp_amps)}")
        self._send("CURR:PROT:STAT ON")
        if self.has("undervoltage-protection"):
            self._send("VOLT:UND:PROT:STAT OFF")
            self._send("CURR:UND:PROT:STAT OFF")

    def read_protection(self) -> SupplyProtection:
        commands = ("VOLT:PROT?", "VOLT:PROT:STAT?", "CURR:PROT?", "CURR:PROT:STAT?")
        ovp, ovp_on, ocp, ocp_on = self.transport.query_many(commands, retry=True)
        for command, state in (("VOLT:PROT:STAT?", ovp_on), ("CURR:PROT:STAT?", ocp_on)):
            if not parse_bool(self.name, command, state):
                raise InstrumentFault(self.name, "protection reads back OFF", command)
        return SupplyProtection(parse_number(self.name, "VOLT:PROT?", ovp), parse_number(self.name, "CURR:PROT?", ocp))

    MEASURE = ("MEAS:VOLT?", "MEAS:CURR?", "OUTP?", "STAT:QUES:COND?")

    def _parse_measure(self, r: Mapping[str, str | None]) -> SupplyReading:
        bits = self._status_bits("STAT:QUES:COND?", r["STAT:QUES:COND?"])
        tripped = "+".join(name for bit, name in _QUES_PROTECTIONS.items() if bits & bit) or None
        return SupplyReading(
            parse_number(self.name, "MEAS:VOLT?", r["MEAS:VOLT?"] or ""),
            parse_number(self.name, "MEAS:CURR?", r["MEAS:CURR?"] or ""),
            parse_bool(self.name, "OUTP?", r["OUTP?"] or "") and tripped is None,
            tripped,
        )
