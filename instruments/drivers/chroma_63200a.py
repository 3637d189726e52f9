"""Chroma 63200A high-power DC electronic loads (e.g. 63206A, 63212A, 63224A).

Source: Chroma 63200A Series Programming Manual, chapter "Command Syntax" (CONFigure, MODE, CURRent /
RESistance / VOLTage / POWer :STATic:L1, LOAD, MEASure, LOAD:PROTection). Confidence medium-low: the
command set is confirmed by two public drivers; reply formats are NR2.

Dialect quirks:
- ``CONF:REM ON`` before settings (documented for RS-232; sent on every interface, after every reconnect);
- modes carry a range suffix (``CCL/CCM/CCH`` ...); this driver uses the high range, which covers the
  unit's full rating. Each mode keeps its own ``:STAT:L1`` level, so the level is set *before* the mode
  is selected: the load never regulates, even briefly, on a stale level;
- ``LOAD?`` answers ``ON|OFF`` on some firmware and ``1|0`` on others: both accepted;
- ``*IDN?`` names the model with or without the series' trailing ``A`` (``63203``, ``63206A``) and
  sometimes with its ratings (``63206A-150-600``): all accepted, other Chroma series refused;
- raw SCPI socket on port 2101.

Optional command: ``LOAD:PROT:CLE`` (programming manual, medium-low; learnt when used): refused, the
unit is reported with the front-panel action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from instruments.capabilities import Feature
from instruments.drivers.scpi_base import ScpiLoad
from instruments.roles import LoadMode, LoadReading
from instruments.scpi import parse_bool, parse_number

_MODE = {
    LoadMode.CC: ("MODE CCH", "CURR:STAT:L1"),
    LoadMode.CR: ("MODE CRH", "RES:STAT:L1"),
    LoadMode.CV: ("MODE CVH", "VOLT:STAT:L1"),
    LoadMode.CP: ("MODE CPH", "POW:STAT:L1"),
}


class Chroma63200A(ScpiLoad):
    FAMILY = "Chroma 63200A electronic load"
    MODEL_PATTERN = re.compile(r"^632\d\dA?(-\d+-\d+)?$")
    DEFAULT_PORT = 2101
    INPUT_ON = "LOAD ON"
    INPUT_OFF = "LOAD OFF"
    OPTIONAL = (
        Feature("protection-clear", "LOAD:PROT:CLE", "Chroma 63200A Programming Manual, LOAD:PROTection",
                "medium", "clear at the front panel"),
    )
    CLEAR = ("LOAD:PROT:CLE",)

    def _take_remote_control(self) -> None:
        self.transport.write("*CLS")
        self._send("CONF:REM ON")

    def _set_mode(self, mode: LoadMode, level: float) -> None:
        select, level_command = _MODE[mode]
        self._send(f"{level_command} {self._n(level)}")
        self._send(select)

    MEASURE = ("MEAS:VOLT?", "MEAS:CURR?", "LOAD?", "LOAD:PROT?")

    def _parse_measure(self, r: Mapping[str, str | None]) -> LoadReading:
        protection = int(parse_number(self.name, "LOAD:PROT?", r["LOAD:PROT?"] or ""))
        return LoadReading(
            parse_number(self.name, "MEAS:VOLT?", r["MEAS:VOLT?"] or ""),
            parse_number(self.name, "MEAS:CURR?", r["MEAS:CURR?"] or ""),
            parse_bool(self.name, "LOAD?", r["LOAD?"] or ""),
            f"PROT {protection}" if protection else None,
        )
