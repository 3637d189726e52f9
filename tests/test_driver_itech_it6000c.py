"""ITECH IT6000C: commands as the hardware-tested public driver sends them (see the driver docstring for
the sources and where they conflict), then end to end against the simulated unit over TCP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from instruments.capabilities import Capability
from instruments.drivers.itech_it6000c import ItechIT6000C
from instruments.errors import InstrumentFault, NotSupported, ScpiError, SetpointRefused, WrongInstrument
from instruments.roles import Rating, SupplyProtection, SupplyReading
from instruments.sim.bench import BenchSpec, SimInstrument, SimPath, SimulatedBench
from rig.clock import Clock
from tests.protocol import RECONNECT, checked, expected_protocol

RATING = Rating(voltage=800, current=225, power=54000)  # IT6054C-800-225
IDN = "ITECH Electronics,IT6054C-800-225,802263011787260011,000.006.101,640.R,132.R"
UNDEFINED = '-113,"Undefined header"'
NO_ERROR = '0,"No error"'


def probe(query: str, reply: str | None) -> list[tuple[str, str | None]]:
    """An optional query asked with *IDN? as a marker after it: no reply means the unit lacks it."""
    return [("*IDN?", IDN), (query, reply), ("*IDN?", IDN)]


def driver() -> ItechIT6000C:
    return ItechIT6000C("psu", "TCPIP::192.0.2.4::30000::SOCKET", RATING)


@pytest.mark.parametrize(("function", "wire"), [
    ("VOLT", []),
    ("CURR", checked("FUNC VOLT")),
])
def test_remote_control_then_voltage_priority(function: str, wire) -> None:
    with expected_protocol(driver(), ("*CLS", None), checked("SYST:REM"), ("FUNC?", function), wire) as psu:
        psu._take_remote_control()


@pytest.mark.parametrize(("call", "wire"), [
    (lambda p: p.set_voltage(400), checked("VOLT 400")),
    (lambda p: p.set_current_limit(12.5), checked("CURR:LIM 12.5")),
    (lambda p: p.output_on(), checked("OUTP ON")),
    (lambda p: p.output_off(), checked("OUTP OFF")),
    (lambda p: p.clear_protection(), [*checked("OUTP OFF"), *checked("OUTP:PROT:CLE"), *checked("OUTP OFF"),
                                      ("MEAS:VOLT?;:MEAS:CURR?;:OUTP?;:STAT:QUES:COND?", "0;0;0;0")]),
    (lambda p: p.emergency_off(), [("OUTP OFF", None)]),
])
def test_command_table(call, wire) -> None:
    with expected_protocol(driver(), wire) as psu:
        call(psu)


def test_a_unit_without_func_query_opens_at_once_and_records_it() -> None:
    """Item 2 of issue 12: an IT6000C without FUNC? answered -113 and no reply; open failed on a 2 s
    timeout and `rig check` called the unit missing. The probe takes no timeout (the marker answers),
    FUNC VOLT goes out once, the capability is recorded."""
    with expected_protocol(
        driver(),
        ("*IDN?", IDN),
        probe("FUNC?", None),
        probe("STAT:QUES:COND?", "0"),
        probe("VOLT:UND:PROT:STAT?", "1"),
        ("*CLS", None),
        checked("SYST:REM"),
        checked("FUNC VOLT"),
    ) as psu:
        psu._connect = lambda: None
        psu.open()
        assert psu.capabilities["priority"].present is False
        assert psu.capabilities["undervoltage-protection"].present is True


def test_a_refused_query_does_not_fail_the_next_write() -> None:
    """Item 1 of issue 12: OUTP OFF was reported as -113 because an earlier refused query's error was
    still queued. The query's silence now reads the queue at once and blames the query."""
    with expected_protocol(
        driver(),
        ("FUNC?", None),
        RECONNECT,
        ("SYST:ERR?", UNDEFINED),
        ("SYST:ERR?", NO_ERROR),
        checked("OUTP OFF"),
    ) as psu:
        with pytest.raises(ScpiError, match=r"'FUNC\?': instrument reported -113"):
            psu.transport.query("FUNC?")
        psu.output_off()


def test_clear_falls_back_to_the_load_manuals_spelling_and_remembers() -> None:
    with expected_protocol(
        driver(),
        checked("OUTP OFF"),
        ("OUTP:PROT:CLE", None), ("SYST:ERR?", UNDEFINED), ("SYST:ERR?", NO_ERROR),
        checked("PROT:CLE"),
        checked("OUTP OFF"),
        ("MEAS:VOLT?;:MEAS:CURR?;:OUTP?;:STAT:QUES:COND?", "0;0;0;0"),
        checked("OUTP OFF"),
        checked("PROT:CLE"),  # the refused spelling is not tried again
        checked("OUTP OFF"),
        ("MEAS:VOLT?;:MEAS:CURR?;:OUTP?;:STAT:QUES:COND?", "0;0;0;0"),
    ) as psu:
        psu.clear_protection()
        psu.clear_protection()
        assert psu.capabilities["protection-clear"].detail == "PROT:CLE"


def test_without_under_voltage_protection_commands_none_are_sent() -> None:
    psu = driver()
    psu.capabilities["undervoltage-protection"] = Capability("undervoltage-protection", False, "refused")
    with expected_protocol(
        psu,
        checked("VOLT:PROT 550"),
        checked("VOLT:PROT:STAT ON"),
        checked("CURR:PROT 30"),
        checked("CURR:PROT:STAT ON"),
        ("VOLT:PROT?;:VOLT:PROT:STAT?;:CURR:PROT?;:CURR:PROT:STAT?", "550;1;30;1"),
    ):
        assert psu.set_protection(550, 30) == SupplyProtection(550.0, 30.0)


def test_protection_levels_are_programmed_enabled_and_read_back() -> None:
    with expected_protocol(
        driver(),
        checked("VOLT:PROT 550"),
        checked("VOLT:PROT:STAT ON"),
        checked("CURR:PROT 30"),
        checked("CURR:PROT:STAT ON"),
        checked("VOLT:UND:PROT:STAT OFF"),  # shipped ON: would trip a supply held below it
        checked("CURR:UND:PROT:STAT OFF"),
        ("VOLT:PROT?;:VOLT:PROT:STAT?;:CURR:PROT?;:CURR:PROT:STAT?", "550;1;30;1"),
    ) as psu:
        assert psu.set_protection(550, 30) == SupplyProtection(550.0, 30.0)


def test_a_protection_reading_back_off_is_a_fault() -> None:
    with expected_protocol(driver(), ("VOLT:PROT?;:VOLT:PROT:STAT?;:CURR:PROT?;:CURR:PROT:STAT?", "550;1;30;0")) \
            as psu, pytest.raises(InstrumentFault, match="'CURR:PROT:STAT\\?': protection reads back OFF"):
        psu.read_protection()


@pytest.mark.parametrize(("reply", "expected"), [
    ("11.9827;-1.99969;1;0", SupplyReading(11.9827, -1.99969, True, None)),  # the live unit's format
    ("400.0000;12.0000;1;0", SupplyReading(400.0, 12.0, True, None)),  # NR2, as other notes have it
    ("0.987793;0.004135;0;1", SupplyReading(0.987793, 0.004135, False, "OVP")),
    ("0;0;1;2050", SupplyReading(0.0, 0.0, False, "OCP+INH")),  # latched: off whatever OUTP? says
    ("0;0;0;256", SupplyReading(0.0, 0.0, False, None)),  # SENSE alone is not a protection
])
def test_measure_is_one_round_trip(reply: str, expected: SupplyReading) -> None:
    with expected_protocol(driver(), ("MEAS:VOLT?;:MEAS:CURR?;:OUTP?;:STAT:QUES:COND?", reply)) as psu:
        assert psu.measure() == expected


def test_setpoint_above_the_rating_is_refused_before_anything_is_sent() -> None:
    with expected_protocol(driver()) as psu, pytest.raises(SetpointRefused, match="230 A refused: above the 225 A"):
        psu.set_current_limit(230)


def test_no_watchdog_is_claimed() -> None:
    with pytest.raises(NotSupported):
        driver().arm_watchdog(5)


# --- end to end, over TCP, against the simulated unit ---------------------------------------------


@pytest.fixture
def it_bench() -> Iterator[SimulatedBench]:
    spec = BenchSpec(
        name="IT6000C test bench",
        instruments=(
            SimInstrument("psu", "itech-it6000c", "IT6054C-800-225", RATING, "p"),
            SimInstrument("load", "chroma-63200a", "63206A-150-600", Rating(150, 600, 6000), "p"),
        ),
        paths=(SimPath("p", 1),),
    )
    with SimulatedBench(spec=spec, clock=Clock(200.0)) as bench:
        yield bench


def test_end_to_end_against_the_simulated_supply(it_bench: SimulatedBench) -> None:
    psu = ItechIT6000C("psu", it_bench.servers["psu"].resource, RATING)
    identity = psu.open()
    try:
        assert (identity.manufacturer, identity.model) == ("ITECH Electronics", "IT6054C-800-225")
        assert psu.set_protection(550, 30) == SupplyProtection(550.0, 30.0)
        psu.set_voltage(400)
        psu.set_current_limit(12.5)
        psu.output_on()
        assert psu.measure() == SupplyReading(400.0, 0.0, True, None)
        psu.safe_state()
        assert psu.measure().output_on is False
    finally:
        psu.close()


def test_the_simulated_unit_wants_remote_and_refuses_beyond_101_percent(it_bench: SimulatedBench) -> None:
    psu = ItechIT6000C("psu", it_bench.servers["psu"].resource, Rating(900, 225, 54000))  # a wrong config
    psu.open()
    try:
        psu.set_voltage(808)  # 101 % of 800 V: accepted
        with pytest.raises(ScpiError, match="-222"):
            psu.set_voltage(809)
        psu.transport.write("SYST:LOC")
        with pytest.raises(ScpiError, match="-221"):
            psu.set_voltage(10)
    finally:
        psu.close()


def test_an_ovp_trip_latches_and_clears(it_bench: SimulatedBench) -> None:
    psu = ItechIT6000C("psu", it_bench.servers["psu"].resource, RATING)
    psu.open()
    try:
        psu.set_protection(100, 30)
        psu.set_voltage(120)  # above the OVP level: trips as soon as the output is on
        psu.output_on()
        assert psu.measure().protection == "OVP"
        assert psu.measure().output_on is False
        psu.set_voltage(50)
        psu.clear_protection()
        assert psu.measure() == SupplyReading(0.0, 0.0, False, None)
    finally:
        psu.close()


def test_wrong_instrument_at_the_address_is_refused(it_bench: SimulatedBench) -> None:
    psu = ItechIT6000C("psu", it_bench.servers["load"].resource, RATING)  # a Chroma load answers there
    with pytest.raises(WrongInstrument, match=r"psu: found Chroma 63206A-150-600, expected a ITECH IT6000C"):
        psu.open()
