"""The baseline: a plain, hand-written polling loop with pyvisa and pymodbus, as one would write it without
the rig: one thread, one instrument after the other, the same wire requests the drivers send per sample
(one batched SCPI line per supply or load, one Modbus block read for the fixture), replies parsed into
floats. Nothing else: no locks, no reconnects, no error queue, no reading objects.

It keeps the one rule the instruments impose: EA units want >= 5 ms between messages (the EA programming
guide; the ``ea-psi`` driver enforces it with ``ScpiSettings.min_gap_s``), so this loop waits for it too.
"""

from __future__ import annotations

import time
from typing import Any

from instruments import fixture_map as fm
from rig.config import RigConfig

#: What each driver's ``measure()`` sends, as one line (``ScpiTransport.query_many`` joins with ``;:``).
MEASURE_LINES = {
    "ea-psi": "MEAS:ARR?;:OUTP?;:STAT:QUES:COND?",
    "chroma-63200a": "MEAS:VOLT?;:MEAS:CURR?;:LOAD?;:LOAD:PROT?",
    "keysight-rp7900": "MEAS:VOLT?;:FETC:CURR?;:OUTP?;:STAT:QUES:COND?",
    "ea-elr": "MEAS:ARR?;:INP?;:STAT:QUES:COND?;:STAT:OPER:COND?",
    "itech-it6000c": "MEAS:VOLT?;:MEAS:CURR?;:OUTP?;:STAT:QUES:COND?",
}
#: Seconds between messages to one unit (EA: 5 ms; the others need none).
MIN_GAP_S = {"ea-psi": 0.005, "ea-elr": 0.005}


def parse_floats(reply: str) -> list[float]:
    """``'43.50 V, 1.20 A, 52.2 W;ON;0'`` -> ``[43.5, 1.2, 52.2, 1.0, 0.0]``."""
    out: list[float] = []
    for part in reply.split(";"):
        for token in part.split(","):
            token = token.strip().upper()
            if token == "ON":
                out.append(1.0)
            elif token == "OFF":
                out.append(0.0)
            elif token:
                out.append(float(token.rstrip(" VAW")))
    return out


class HandLoop:
    """Every power instrument and the fixture of ``config``, read one after another."""

    def __init__(self, config: RigConfig) -> None:
        import pyvisa
        from pymodbus.client import ModbusTcpClient

        self.rm = pyvisa.ResourceManager("@py")  # the process's one manager: never closed here
        self.scpi: list[list[Any]] = []  # [resource, line, gap, last message end]
        for inst in config.instruments.values():
            if inst.role == "fixture":
                continue
            resource = self.rm.open_resource(inst.resource, read_termination="\n", write_termination="\n",
                                             timeout=2000)
            self.scpi.append([resource, MEASURE_LINES[inst.driver], MIN_GAP_S.get(inst.driver, 0.0), 0.0])
        fixture = config.fixture
        host, port = fixture.resource.split("://", 1)[1].rsplit(":", 1)
        self.unit_id = fixture.unit_id
        self.modbus = ModbusTcpClient(host, port=int(port), timeout=0.5, retries=0)
        if not self.modbus.connect():
            raise RuntimeError(f"cannot connect to {fixture.resource}")

    def sample(self) -> list[list[float]]:
        out: list[list[float]] = []
        for entry in self.scpi:
            resource, line, gap, last = entry
            if gap:
                wait = gap - (time.monotonic() - last)
                if wait > 0:
                    time.sleep(wait)
            reply = resource.query(line)
            entry[3] = time.monotonic()
            out.append(parse_floats(reply))
        block = self.modbus.read_input_registers(fm.INPUT_BLOCK_START, count=fm.INPUT_BLOCK_COUNT,
                                                 device_id=self.unit_id).registers
        values = fm.decode_inputs(block)
        out.append([float(v) for v in values.values()])
        return out

    def close(self) -> None:
        for resource, *_ in self.scpi:
            resource.close()
        self.modbus.close()
