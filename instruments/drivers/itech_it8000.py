"""ITECH IT8000 regenerative DC electronic loads (model field ``IT80xx-<V>-<A>``).

Sources, confidence **low**: the IT8000 Series Programming Guide could not be read beyond its STATus
chapter; the commands follow the shared ITECH SCPI set as documented for sibling series: IT8800 user
manual 3.17 and IT8700 user manual 4.11 (a protection switches the input OFF; ``PROTection:CLEar``
clears the latch), IT8600 Programming Guide 1.5 (boolean queries answer ``0|1``), IT8200 Programming
Guide chapter 3 (questionable status bits), and the IT6000C supply facts (port 30000, ``SYST:REM``).

    [SOURce:]FUNCtion CURRent|VOLTage|POWer|RESistance     regulation mode
    [SOURce:]CURRent|VOLTage|POWer|RESistance <value>      level of each mode, held separately
    INPut[:STATe] ON|OFF, INPut?  -> 0|1
    MEASure:VOLTage? / CURRent? / POWer?  (also FETCh:), NR2
    STATus:QUEStionable:CONDition?, PROTection:CLEar

Dialect quirks:
- ``SYST:REM`` before settings (sent on LAN too, after every reconnect);
- the level is sent before ``FUNC``, so the load never regulates on the mode's stale level;
- questionable bits as in the IT8200 guide (same generation): OV 1, OC 2 and 4 (RMS, peak), OP 8,
  OT 64, INH 2048 (inhibit input), WDOG 262144; the other bits (UV, UC, sense, share) are not latched
  protections and are ignored;
- raw SCPI socket on port 30000;
- ``SYST:REM`` is handed back with ``SYST:LOC`` on close (as on the IT6000C).

Optional commands (``OPTIONAL`` below), low confidence (sibling-series manuals; an emulator built from
the manual lacked ``STAT:QUES:COND?``):
- ``STAT:QUES:COND?`` (probed at open): without it a latched protection is not named; ``INP?``
  still shows the input switched off by it;
- ``PROT:CLE`` (learnt when used): refused, the unit is reported with the front-panel action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from instruments.capabilities import Feature
from instruments.drivers.scpi_base import ScpiLoad
from instruments.roles import LoadMode, LoadReading
from instruments.scpi import parse_bool, parse_number

_MODE = {
    LoadMode.CC: ("CURR", "FUNC CURR"),
    LoadMode.CV: ("VOLT", "FUNC VOLT"),
    LoadMode.CP: ("POW", "FUNC POW"),
    LoadMode.CR: ("RES", "FUNC RES"),
}
_SOURCE = "IT8200 Programming Guide ch. 3, IT8800/IT8700 user manuals (sibling series)"
_QUES_PROTECTIONS = {1: "OVP", 2: "OCP", 4: "OCP", 8: "OPP", 64: "OT", 2048: "INH", 262144: "WDOG"}


class ItechIT8000(ScpiLoad):
    FAMILY = "ITECH IT8000 electronic load"
    MODEL_PATTERN = re.compile(r"^IT80\d\d[A-Z]?-\d+-\d+")
    DEFAULT_PORT = 30000
    INPUT_ON = "INP ON"
    INPUT_OFF = "INP OFF"
    REMOTE_RELEASE = "SYST:LOC"
    OPTIONAL = (
        Feature("status", "STAT:QUES:COND?", _SOURCE, "low",
                "latched protections not named: the input read back off is what the rig sees", "STAT:QUES:COND?"),
        Feature("protection-clear", "PROT:CLE", _SOURCE, "low", "clear at the front panel"),
    )
    CLEAR = ("PROT:CLE",)

    def _take_remote_control(self) -> None:
        self.transport.write("*CLS")
        self._send("SYST:REM")

    def _set_mode(self, mode: LoadMode, level: float) -> None:
        level_command, select = _MODE[mode]
        self._send(f"{level_command} {self._n(level)}")
        self._send(select)

    MEASURE = ("MEAS:VOLT?", "MEAS:CURR?", "INP?", "STAT:QUES:COND?")

    def _parse_measure(self, r: Mapping[str, str | None]) -> LoadReading:
        bits = self._status_bits("STAT:QUES:COND?", r["STAT:QUES:COND?"])
        tripped = dict.fromkeys(name for bit, name in _QUES_PROTECTIONS.items() if bits & bit)
        return LoadReading(
            parse_number(self.name, "MEAS:VOLT?", r["MEAS:VOLT?"] or ""),
            parse_number(self.name, "MEAS:CURR?", r["MEAS:CURR?"] or ""),
            parse_bool(self.name, "INP?", r["INP?"] or ""),
            "+".join(tripped) or None,
        )
