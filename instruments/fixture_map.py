"""The NACS inlet fixture's Modbus register map, held as data.

The driver, the simulated fixture and the documentation (docs/fixture-register-map.md, generated from
this table by ``python -m instruments.fixture_map``) all read this one table, so they cannot drift.

Conventions: measurements are *input* registers (function 4), all in one contiguous block so one
request reads them; command state is *holding* registers (function 3). 32-bit values are two registers,
high word first (big-endian words, big-endian bytes). Engineering value = raw x scale.

Map version 2 adds **ownership**. Modbus has no sessions, so every command goes through the command
*mailbox*: one write-multiple (function 16) of four registers, ``[token high, token low, register,
value]``. A session claims the fixture with its token (``claim`` = its heartbeat timeout) before it
commands anything; while the claim lives the fixture refuses commands and heartbeats carrying any other
token (exception 6). The claim lives as long as its heartbeat: when the heartbeat stops, the watchdog
trips (contactors open, power instruments inhibited) and the claim ends, so a dead owner's bench is
safe before anyone else can claim it. Commands that only make the bench safer (contactors open, no
path, ``safe_request``) are accepted from any token: ``rig safe`` must always work.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Table = Literal["input", "holding"]
DType = Literal["uint16", "int16", "uint32", "int32"]

IDENT_MAGIC = 0x4E43  # "NC": a NACS inlet fixture answers this at input register 0
MAP_VERSION = 2
NOT_AVAILABLE = 0xFFFF  # uint16 "no value yet" (e.g. shutdown timing before any trip)


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    table: Table
    dtype: DType
    unit: str
    description: str
    scale: float = 1.0
    #: Holding registers: allowed engineering range for writes (the fixture refuses others).
    write_range: tuple[float, float] | None = None
    #: Enumerations or bit names, documented and used for decoding.
    values: Mapping[int, str] | None = None
    #: Holding registers: the command values any token may send, claimed or not (they only make the
    #: bench safer). ``None``: owner only.
    anyone: frozenset[int] | None = None

    @property
    def words(self) -> int:
        return 2 if self.dtype in ("uint32", "int32") else 1

    def decode(self, words: list[int]) -> float:
        raw = _to_raw(self.dtype, words)
        return raw * self.scale

    def encode(self, value: float) -> list[int]:
        """Engineering value -> register words; ``ValueError`` outside ``write_range`` or the type."""
        if self.write_range is not None:
            low, high = self.write_range
            if not low <= value <= high:
                raise ValueError(f"{self.name}: {value:g} {self.unit} outside {low:g}..{high:g} {self.unit}")
        return self.raw_words(round(value / self.scale))

    def raw_words(self, raw: int) -> list[int]:
        """A raw integer -> register words (no range check: for values the device reports)."""
        return _from_raw(self.dtype, raw, self.name)


def _to_raw(dtype: DType, words: list[int]) -> int:
    if dtype == "uint16":
        return words[0]
    if dtype == "int16":
        return struct.unpack(">h", struct.pack(">H", words[0]))[0]
    packed = struct.pack(">HH", words[0], words[1])
    return struct.unpack(">I" if dtype == "uint32" else ">i", packed)[0]


def _from_raw(dtype: DType, raw: int, name: str) -> list[int]:
    fmt = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i"}[dtype]
    try:
        packed = struct.pack(fmt, raw)
    except struct.error:
        raise ValueError(f"{name}: raw value {raw} does not fit {dtype}") from None
    return list(struct.unpack(">" + "H" * (len(packed) // 2), packed))


STATUS_BITS = {
    0: "contactor DC+ closed (auxiliary contact feedback)",
    1: "contactor DC- closed (auxiliary contact feedback)",
    2: "interlock loop closed",
    3: "E-stop pressed",
    4: "heartbeat watchdog tripped (latched)",
    5: "safety chain OK (power instruments enabled)",
    6: "safety trip latched (clear with trip_reset)",
    7: "claimed by a session (its heartbeat watchdog is armed)",
}
SENSOR_BITS = {0: "DC+ contact", 1: "DC- contact", 2: "inlet sensor 1", 3: "inlet sensor 2", 4: "ambient"}
ACTUATOR_BITS = {0: "press E-stop (test relay)", 1: "open interlock loop (test relay)"}

INPUT_REGISTERS: tuple[Register, ...] = (
    Register("ident", 0, "input", "uint16", "", f"0x{IDENT_MAGIC:04X} identifies a NACS inlet fixture"),
    Register("map_version", 1, "input", "uint16", "", f"register map version ({MAP_VERSION})"),
    Register("serial", 2, "input", "uint16", "", "fixture serial number"),
    Register("firmware", 3, "input", "uint16", "", "firmware version x100"),
    Register("status", 4, "input", "uint16", "bits", "status bits", values=STATUS_BITS),
    Register("sensor_open", 5, "input", "uint16", "bits", "open-circuit temperature sensors", values=SENSOR_BITS),
    Register("path", 6, "input", "uint16", "", "power path routed to the inlet (feedback), 0 = none"),
    Register("temp_dc_plus", 7, "input", "int16", "°C", "DC+ contact temperature (thermocouple)", 0.1),
    Register("temp_dc_minus", 8, "input", "int16", "°C", "DC- contact temperature (thermocouple)", 0.1),
    Register("temp_inlet_1", 9, "input", "int16", "°C", "inlet's own sensor 1 (near DC+)", 0.1),
    Register("temp_inlet_2", 10, "input", "int16", "°C", "inlet's own sensor 2 (near DC-)", 0.1),
    Register("temp_ambient", 11, "input", "int16", "°C", "ambient temperature", 0.1),
    Register("cp_high", 12, "input", "int16", "V", "CP positive level, measured at the EVSE side", 0.01),
    Register("cp_low", 13, "input", "int16", "V", "CP negative level, measured at the EVSE side", 0.01),
    Register("cp_duty", 14, "input", "uint16", "%", "CP duty cycle measured at the vehicle side", 0.01),
    Register("cp_frequency", 15, "input", "uint16", "Hz", "CP frequency measured at the vehicle side", 0.1),
    Register("pp_voltage", 16, "input", "uint16", "V", "PP voltage at the vehicle side", 0.001),
    Register("iso_dc_plus", 17, "input", "uint32", "Ω", "insulation resistance DC+ to PE (IMD)", 1000.0),
    Register("iso_dc_minus", 19, "input", "uint32", "Ω", "insulation resistance DC- to PE (IMD)", 1000.0),
    Register("inlet_voltage", 21, "input", "int32", "V", "DC voltage across the inlet's DC pins", 0.01),
    Register("inlet_current", 23, "input", "int32", "A", "DC current through the inlet (fixture shunt)", 0.01),
    Register("drop_dc_plus", 25, "input", "int32", "mV", "4-wire millivolt drop across the DC+ contact", 0.001),
    Register("drop_dc_minus", 27, "input", "int32", "mV", "4-wire millivolt drop across the DC- contact", 0.001),
    Register("shutdown_current_ms", 29, "input", "uint16", "ms",
             "last safety trip: time until inlet current < threshold (0xFFFF = none)"),
    Register("shutdown_voltage_ms", 30, "input", "uint16", "ms",
             "last safety trip: time until inlet voltage < 60 V (0xFFFF = none)"),
    Register("heartbeat_echo", 31, "input", "uint16", "", "last heartbeat value the fixture received"),
    Register("claim_tag", 32, "input", "uint16", "", "upper 16 bits of the owner's token, 0 = not claimed "
             "(shown to other sessions to name the owner)"),
    Register("claim_age", 33, "input", "uint16", "s", "seconds since the current claim was made "
             "(0xFFFF = not claimed)"),
    Register("safe_requests", 34, "input", "uint16", "", "count of safe_request commands from tokens other "
             "than the owner's while claimed (wraps at 65536): the owner's run sees `rig safe`"),
)

HOLDING_REGISTERS: tuple[Register, ...] = (
    Register("heartbeat", 100, "holding", "uint16", "", "owner writes a changing value; the fixture watches "
             "it", write_range=(0, 0xFFFF)),
    Register("heartbeat_timeout_ms", 101, "holding", "uint16", "ms",
             "heartbeat watchdog of the claim: contactors open, power instruments are inhibited and the claim "
             "ends when the heartbeat stops changing for this long (0 = not claimed; never off while "
             "claimed)", write_range=(100, 10000)),
    Register("contactors", 102, "holding", "uint16", "", "DC contactor command (refused unless the safety "
             "chain is OK and a path is selected)", write_range=(0, 1), values={0: "open", 1: "close"},
             anyone=frozenset({0})),
    Register("path_select", 103, "holding", "uint16", "", "route power path N to the inlet, 0 = none "
             "(refused while the contactors are closed)", write_range=(0, 4), anyone=frozenset({0})),
    Register("cp_mode", 104, "holding", "uint16", "", "CP generator mode", write_range=(0, 3),
             values={0: "off (0 V, state E)", 1: "+12 V DC", 2: "PWM +/-12 V 1 kHz", 3: "-12 V (state F)"}),
    Register("cp_duty", 105, "holding", "uint16", "%", "CP PWM duty cycle", 0.01, write_range=(0, 100)),
    Register("vehicle_state", 106, "holding", "uint16", "", "vehicle-side CP load", write_range=(0, 4),
             values={0: "A open", 1: "B 2.74 kΩ", 2: "C 2.74 kΩ || 1.3 kΩ", 3: "D 2.74 kΩ || 270 Ω",
                     4: "E CP shorted to PE"}),
    Register("connector", 107, "holding", "uint16", "", "connector-side PP emulation", write_range=(0, 2),
             values={0: "unplugged", 1: "latched (150 Ω)", 2: "release button pressed (480 Ω)"}),
    Register("actuators", 108, "holding", "uint16", "bits", "test relays", write_range=(0, 3),
             values=ACTUATOR_BITS),
    Register("trip_reset", 109, "holding", "uint16", "", "write 1 to clear a latched trip once its cause "
             "has cleared", write_range=(0, 1)),
    Register("shutdown_threshold", 110, "holding", "uint16", "A",
             "current threshold used to time a shutdown", 0.1, write_range=(0, 6000)),
    Register("claim", 111, "holding", "uint16", "ms", "claim the fixture for the mailbox token and arm its "
             "heartbeat watchdog with this timeout (100..10000 ms; 1..99 refused with exception 3); the owner "
             "writes it again to renew; 0 = release (refused with exception 4 while the contactors are "
             "closed or the inlet is at 60 V or more)", write_range=(0, 10000)),
    Register("safe_request", 112, "holding", "uint16", "", "1 = a session that is not the owner is making "
             "the bench safe (`rig safe`); counted in input register safe_requests", write_range=(0, 1),
             anyone=frozenset({0, 1})),
    Register("cmd_token", 113, "holding", "uint32", "", "mailbox: the session's token (non-zero)"),
    Register("cmd_register", 115, "holding", "uint16", "", "mailbox: address of the command register "
             "(100..112)"),
    Register("cmd_value", 116, "holding", "uint16", "", "mailbox: raw value for that register; the whole "
             "mailbox is one function-16 write of 4 registers at 113"),
)

BY_NAME: dict[str, Register] = {r.name: r for r in INPUT_REGISTERS + HOLDING_REGISTERS}
INPUT_BLOCK_START = INPUT_REGISTERS[0].address
INPUT_BLOCK_COUNT = INPUT_REGISTERS[-1].address + INPUT_REGISTERS[-1].words - INPUT_BLOCK_START
HOLDING_BLOCK_START = HOLDING_REGISTERS[0].address
HOLDING_BLOCK_COUNT = HOLDING_REGISTERS[-1].address + HOLDING_REGISTERS[-1].words - HOLDING_BLOCK_START
MAILBOX = BY_NAME["cmd_token"].address
MAILBOX_WORDS = 4
#: The registers a mailbox may name: every holding register before the mailbox itself.
COMMANDS: dict[int, Register] = {r.address: r for r in HOLDING_REGISTERS if r.address < MAILBOX}
UNCLAIMED_AGE = 0xFFFF


def mailbox_words(token: int, register: Register, value: float) -> list[int]:
    """The four words of one mailbox command; ``ValueError`` if the value is outside the map."""
    if not 0 < token <= 0xFFFFFFFF:
        raise ValueError(f"token {token} is not a non-zero 32-bit value")
    (raw,) = register.encode(value)
    return [token >> 16, token & 0xFFFF, register.address, raw]


_STRUCT_CODES: dict[str, str] = {"uint16": "H", "int16": "h", "uint32": "I", "int32": "i"}


def _input_block_layout() -> tuple[struct.Struct, struct.Struct, tuple[tuple[str, float], ...]]:
    """The input block as two precompiled structs (words -> bytes -> every register's raw value) and
    the (name, scale) of each register in order: one decode per block, not one per register (the
    sampler decodes a block every sample)."""
    fmt, at = ">", INPUT_BLOCK_START
    for reg in sorted(INPUT_REGISTERS, key=lambda r: r.address):
        if reg.address < at:
            raise ValueError(f"input register {reg.name} overlaps the one before it")
        fmt += f"{2 * (reg.address - at)}x{_STRUCT_CODES[reg.dtype]}"
        at = reg.address + reg.words
    fields = tuple((reg.name, reg.scale) for reg in sorted(INPUT_REGISTERS, key=lambda r: r.address))
    return struct.Struct(f">{INPUT_BLOCK_COUNT}H"), struct.Struct(fmt), fields


_BLOCK_WORDS, _BLOCK_VALUES, _BLOCK_FIELDS = _input_block_layout()


def decode_inputs(block: list[int]) -> dict[str, float]:
    """The whole input block (from ``INPUT_BLOCK_START``) -> engineering values by name."""
    if len(block) != INPUT_BLOCK_COUNT:
        raise ValueError(f"input block of {len(block)} words, expected {INPUT_BLOCK_COUNT}")
    raw = _BLOCK_VALUES.unpack(_BLOCK_WORDS.pack(*block))
    return {name: value * scale for (name, scale), value in zip(_BLOCK_FIELDS, raw, strict=True)}


def _access(reg: Register) -> str:
    if reg.table == "input":
        return "R"
    if reg.address not in COMMANDS:
        return "W (mailbox)"
    if reg.anyone:
        return "R, cmd: owner; " + ", ".join(map(str, sorted(reg.anyone))) + " any token"
    return "R, cmd: owner"


def markdown() -> str:
    """The register map as the Markdown table kept in docs/."""
    lines = [
        "# NACS inlet fixture: Modbus register map",
        "",
        f"Generated from `instruments/fixture_map.py` (map version {MAP_VERSION}) by "
        "`python -m instruments.fixture_map`; a test keeps the two identical.",
        "",
        "Measurements are input registers (function 4) in one contiguous block "
        f"({INPUT_BLOCK_START}..{INPUT_BLOCK_START + INPUT_BLOCK_COUNT - 1}), read in one request. "
        "Command state reads back as holding registers (function 3); commands are written through the "
        "mailbox below. 32-bit values span two registers, high word first. Engineering value = raw × scale.",
        "",
        "**Commands and ownership (map version 2).** Every command is one function-16 write of four "
        f"registers at {MAILBOX} (the mailbox): `[token high word, token low word, register, raw value]`. "
        "A session picks a random non-zero 32-bit token and claims the fixture (`claim` = its heartbeat "
        "timeout in ms) before it commands anything; it then feeds `heartbeat` through the mailbox. The "
        "claim lives as long as its heartbeat: when the heartbeat stops changing for the timeout, the "
        "watchdog trips (contactors open, power instruments inhibited through the safety chain) and the "
        "claim ends. Only then can another session claim the fixture. Commands that only make the bench "
        "safer (`contactors` = 0, `path_select` = 0, `safe_request`) are accepted from any token, claimed "
        "or not. Direct writes (functions 6 and 16) to any other address are refused.",
        "",
        "| exception | when |",
        "|---|---|",
        "| 2 illegal data address | a write that is not the 4-register mailbox, or a mailbox naming a register "
        "that is not a command |",
        "| 3 illegal data value | a value outside the range below, token 0, a claim of 1..99 ms |",
        "| 4 server device failure | the fixture's interlocks forbid it (contactors without a path or with "
        "the safety chain broken, a path change with contactors closed, a trip reset with its cause present, "
        "a release while energised), or an owner-only command while the fixture is not claimed |",
        "| 6 server device busy | the fixture is claimed by another token (commands, heartbeats, claims) |",
        "",
        "| address | name | table | type | scale | unit | access | range | meaning |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for reg in INPUT_REGISTERS + HOLDING_REGISTERS:
        address = f"{reg.address}" if reg.words == 1 else f"{reg.address}-{reg.address + 1}"
        access = _access(reg)
        span = f"{reg.write_range[0]:g}..{reg.write_range[1]:g}" if reg.write_range else ""
        meaning = reg.description
        if reg.values:
            kind = "bit" if reg.unit == "bits" else ""
            meaning += ": " + "; ".join(f"{kind} {k} = {v}".strip() for k, v in reg.values.items())
        lines.append(
            f"| {address} | `{reg.name}` | {reg.table} | {reg.dtype} | {reg.scale:g} | {reg.unit} | "
            f"{access} | {span} | {meaning} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
