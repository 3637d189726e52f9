"""Keysight RP7900: commands against the Operating and Service Guide (chapter 5, pp. 208-241), then end to
end against the simulated unit over TCP, including the I/O watchdog tripping in real time.

The rating is the configured one, as a rig file would give it (illustrative, not a datasheet value).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from instruments.capabilities import Capability
from instruments.drivers.keysight_rp7900 import KeysightRP7900
from instruments.errors import InstrumentFault, NotSupported, ScpiError, SetpointRefused, WrongInstrument
from instruments.roles import Rating, SupplyProtection, SupplyReading
from instruments.sim.bench import BenchSpec, SimInstrument, SimPath, SimulatedBench
from rig.clock import Clock
from tests.protocol import RECONNECT, expected_protocol

RATING = Rating(voltage=80, current=250, power=10000)
NO_ERROR = '+0,"No error"'  # Keysight's empty error queue
IDN = "Keysight Technologies,RP7952A,MY00001,B.01.02"
MEASURE = "MEAS:VOLT?;:FETC:CURR?;:OUTP?;:STAT:QUES:COND?"
UNDEFINED = '-113,"Undefined header"'


def checked(command: str) -> list[tuple[str, str | None]]:
    """A write and the error-queue read after it, in the unit's reply format."""
    return [(command, None), ("SYST:ERR?", NO_ERROR)]


def driver() -> KeysightRP7900:
    return KeysightRP7900("psu", "TCPIP::192.0.2.3::5025::SOCKET", RATING)


@pytest.mark.parametrize(("function", "wire"), [
    ("VOLT", []),  # already in voltage priority: nothing that would switch the output off
    ("CURR", checked("FUNC VOLT")),
])
def test_remote_control_selects_voltage_priority_only_when_needed(function: str, wire) -> None:
    with expected_protocol(driver(), ("*CLS", None), ("FUNC?", function), wire) as psu:
        psu._take_remote_control()


@pytest.mark.parametrize(("call", "wire"), [
    (lambda p: p.set_voltage(48), checked("VOLT 48")),
    (lambda p: p.set_current_limit(120.5), checked("CURR:LIM 120.5")),
    (lambda p: p.output_on(), checked("OUTP ON")),
    (lambda p: p.output_off(), checked("OUTP OFF")),
    # Off, clear, then off again and read back: a clear may restore the output from before the fault.
    (lambda p: p.clear_protection(), [*checked("OUTP OFF"), *checked("OUTP:PROT:CLE"), *checked("OUTP OFF"),
                                      (MEASURE, "+0.000000E+00;+0.000000E+00;0;+0")]),
    (lambda p: p.emergency_off(), [("OUTP OFF", None)]),
])
def test_command_table(call, wire) -> None:
    with expected_protocol(driver(), wire) as psu:
        call(psu)


def probe(query: str, reply: str | None) -> list[tuple[str, str | None]]:
    """An optional query asked with *IDN? as a marker after it: no reply means the unit lacks it."""
    return [("*IDN?", IDN), (query, reply), ("*IDN?", IDN)]


def test_open_probes_the_watchdog_priority_and_status_and_a_missing_one_degrades() -> None:
    """Item 2 of issue 12: firmware without the I/O watchdog answered OUTP:PROT:WDOG:DEL 5 with -113, the
    ScpiError aborted Rig.open. Now the probe finds it missing (no reply before the marker's) and arming
    raises NotSupported with what covers for it, before anything is sent."""
    with expected_protocol(
        driver(),
        ("*IDN?", IDN),
        probe("OUTP:PROT:WDOG?", None),
        probe("FUNC?", "VOLT"),
        probe("STAT:QUES:COND?", "+0"),
        ("*CLS", None),  # clears the probe's refusal before anything is written
        ("FUNC?", "VOLT"),
    ) as psu:
        psu._connect = lambda: None
        psu.open()
        assert {k: c.present for k, c in psu.capabilities.items()} == {
            "watchdog": False, "priority": True, "status": True, "protection-clear": None}
        with pytest.raises(NotSupported, match=r"OUTP:PROT:WDOG\? refused: no I/O watchdog: the fixture heartbeat"):
            psu.arm_watchdog(5)


def test_a_watchdog_refused_when_armed_degrades_too() -> None:
    with expected_protocol(
        driver(),
        ("OUTP:PROT:WDOG:DEL 5", None), ("SYST:ERR?", UNDEFINED), ("SYST:ERR?", NO_ERROR),
    ) as psu, pytest.raises(NotSupported, match="OUTP:PROT:WDOG:DEL refused: no I/O watchdog"):
        psu.arm_watchdog(5)


def test_a_refused_query_is_blamed_on_itself_not_on_the_next_write() -> None:
    """Item 1 of issue 12: FUNC? refused (-113, no reply) left its error queued and the next checked
    write, VOLT:PROT 88, drained it and failed although the unit accepted it. Now the silence is
    followed at once by a fresh connection and an error-queue read, which names FUNC?."""
    with expected_protocol(
        driver(),
        ("FUNC?", None),  # no reply: the transport times out
        RECONNECT,  # a late reply must not answer the next query
        ("SYST:ERR?", UNDEFINED),
        ("SYST:ERR?", NO_ERROR),
        checked("VOLT:PROT 88"),
        checked("CURR:PROT:STAT ON"),
        ("VOLT:PROT?;:CURR:PROT:STAT?", "+8.800000E+01;1"),
    ) as psu:
        with pytest.raises(ScpiError, match=r"psu: 'FUNC\?': instrument reported -113,'Undefined header'"):
            psu.transport.query("FUNC?")
        assert psu.set_protection(88, 275) == SupplyProtection(88.0, None)


@pytest.mark.parametrize(("at_open", "capability"), [
    (checked("FUNC VOLT"), "FUNC VOLT sent once at open"),
    ([("FUNC VOLT", None), ("SYST:ERR?", UNDEFINED), ("SYST:ERR?", NO_ERROR)],
     "FUNC? and FUNC refused: unit taken to be voltage-priority only"),
])
def test_without_the_priority_query_voltage_priority_is_sent_once_at_open(at_open, capability: str) -> None:
    with expected_protocol(
        driver(),
        ("*IDN?", IDN),
        probe("OUTP:PROT:WDOG?", "0"),
        probe("FUNC?", None),
        probe("STAT:QUES:COND?", "+0"),
        ("*CLS", None),
        at_open,
        ("*CLS", None),  # a later reconnect: remote control again, but never FUNC VOLT mid-run
    ) as psu:
        psu._connect = lambda: None
        psu.open()
        assert psu.capabilities["priority"].detail.startswith(capability)
        psu._take_remote_control()


def test_a_refused_clear_is_reported_once_with_the_front_panel_action() -> None:
    """Item 3 of issue 12: a clear the unit refuses raises NotSupported naming what to do; it is not sent
    again (later re-arms fail at once, with the same words)."""
    with expected_protocol(
        driver(),
        checked("OUTP OFF"),
        ("OUTP:PROT:CLE", None), ("SYST:ERR?", UNDEFINED), ("SYST:ERR?", NO_ERROR),
        checked("OUTP OFF"),
    ) as psu:
        for _ in range(2):
            with pytest.raises(NotSupported, match="psu: cannot clear its protection remotely "
                                                   r"\(OUTP:PROT:CLE refused: clear the protection at the unit's"):
                psu.clear_protection()
        assert psu.capabilities["protection-clear"].present is False


def test_a_clear_that_switches_the_output_back_on_is_forced_off_and_read_back() -> None:
    """Item 4 of issue 12: OUTP OFF then OUTP:PROT:CLE restored the output to ON on a unit built on the
    guide's wording; the driver switches it off again and reads it back before returning."""
    with expected_protocol(
        driver(),
        checked("OUTP OFF"),
        checked("OUTP:PROT:CLE"),  # the unit turns the output back on here
        checked("OUTP OFF"),
        (MEASURE, "+0.000000E+00;+0.000000E+00;0;+0"),
    ) as psu:
        psu.clear_protection()


def test_without_the_status_query_measure_still_reads_and_says_nothing_is_latched() -> None:
    with expected_protocol(
        driver(),
        ("MEAS:VOLT?;:FETC:CURR?;:OUTP?", "+4.800000E+01;+1.205000E+02;1"),
    ) as psu:
        psu.capabilities["status"] = Capability("status", False, "STAT:QUES:COND? refused")
        assert psu.measure() == SupplyReading(48.0, 120.5, True, None)


def test_ocp_has_no_level_it_trips_at_the_current_limit() -> None:
    with expected_protocol(
        driver(),
        checked("VOLT:PROT 88"),
        checked("CURR:PROT:STAT ON"),
        ("VOLT:PROT?;:CURR:PROT:STAT?", "+8.800000E+01;1"),
    ) as psu:
        assert psu.set_protection(88, 275) == SupplyProtection(88.0, None)


def test_ocp_reading_back_off_is_a_fault() -> None:
    with expected_protocol(driver(), ("VOLT:PROT?;:CURR:PROT:STAT?", "+8.800000E+01;0")) as psu, \
            pytest.raises(InstrumentFault, match="over-current protection reads back OFF"):
        psu.read_protection()


def test_watchdog_is_armed_in_whole_seconds_and_read_back() -> None:
    with expected_protocol(
        driver(),
        checked("OUTP:PROT:WDOG:DEL 3"),  # 2.2 s rounded up
        checked("OUTP:PROT:WDOG ON"),
        ("OUTP:PROT:WDOG:DEL?;:OUTP:PROT:WDOG?", "+3;1"),
    ) as psu:
        psu.arm_watchdog(2.2)


def test_watchdog_has_a_one_second_minimum() -> None:
    with expected_protocol(
        driver(),
        checked("OUTP:PROT:WDOG:DEL 1"),
        checked("OUTP:PROT:WDOG ON"),
        ("OUTP:PROT:WDOG:DEL?;:OUTP:PROT:WDOG?", "+1;1"),
    ) as psu:
        psu.arm_watchdog(0.2)


def test_watchdog_that_does_not_read_back_on_is_a_fault() -> None:
    with expected_protocol(
        driver(),
        checked("OUTP:PROT:WDOG:DEL 5"),
        checked("OUTP:PROT:WDOG ON"),
        ("OUTP:PROT:WDOG:DEL?;:OUTP:PROT:WDOG?", "+5;0"),
    ) as psu, pytest.raises(InstrumentFault, match="watchdog reads back 0"):
        psu.arm_watchdog(5)


@pytest.mark.parametrize(("output", "wire"), [
    ("0", checked("OUTP:PROT:WDOG OFF")),  # output off: no latch while the unit idles between sessions
    ("1", []),  # output on (an unsafe exit): the watchdog stays armed
])
def test_close_disarms_the_watchdog_it_armed_only_with_the_output_off(output: str, wire) -> None:
    psu = driver()
    psu._watchdog_armed = True
    with expected_protocol(psu, ("OUTP?", output), wire):
        psu.close()


def test_close_leaves_a_watchdog_it_did_not_arm_alone() -> None:
    with expected_protocol(driver()) as psu:
        psu.close()


def test_watchdog_beyond_the_range_is_refused_before_anything_is_sent() -> None:
    with expected_protocol(driver()) as psu, pytest.raises(SetpointRefused, match="3601 s refused"):
        psu.arm_watchdog(3600.5)


@pytest.mark.parametrize(("reply", "expected"), [
    ("+4.800000E+01;+1.205000E+02;1;+0", SupplyReading(48.0, 120.5, True, None)),
    ("+4.800000E+01;+1.205000E+02;1;+128", SupplyReading(48.0, 120.5, True, None)),  # LIM+: in current limit
    # Latched: OUTP? still answers the programmed state (1); the output is off all the same.
    ("+1.200000E-02;+0.000000E+00;1;+2048", SupplyReading(0.012, 0.0, False, "WDOG")),
    ("+0.000000E+00;+0.000000E+00;1;+3", SupplyReading(0.0, 0.0, False, "OVP+OCP")),
    ("+0.000000E+00;+0.000000E+00;0;+512", SupplyReading(0.0, 0.0, False, "INH")),
])
def test_measure_is_one_round_trip_and_one_acquisition(reply: str, expected: SupplyReading) -> None:
    with expected_protocol(driver(), ("MEAS:VOLT?;:FETC:CURR?;:OUTP?;:STAT:QUES:COND?", reply)) as psu:
        assert psu.measure() == expected


def test_setpoint_above_the_rating_is_refused_before_anything_is_sent() -> None:
    with expected_protocol(driver()) as psu, pytest.raises(SetpointRefused, match="90 V refused: above the 80 V"):
        psu.set_voltage(90)


def test_a_refused_setpoint_raises_with_the_error_queue() -> None:
    with expected_protocol(
        driver(),
        ("CURR:LIM 200", None),
        ("SYST:ERR?", '-222,"Data out of range"'),
        ("SYST:ERR?", NO_ERROR),
    ) as psu, pytest.raises(ScpiError, match="-222"):
        psu.set_current_limit(200)


# --- end to end, over TCP, against the simulated unit ---------------------------------------------


@pytest.fixture
def rp_bench() -> Iterator[SimulatedBench]:
    spec = BenchSpec(
        name="RP7900 test bench",
        instruments=(
            SimInstrument("psu", "keysight-rp7900", "RP7952A", RATING, "p"),
            SimInstrument("load", "chroma-63200a", "63206A-150-600", Rating(150, 600, 6000), "p"),
        ),
        paths=(SimPath("p", 1),),
    )
    with SimulatedBench(spec=spec, clock=Clock(200.0)) as bench:
        yield bench


def test_end_to_end_against_the_simulated_supply(rp_bench: SimulatedBench) -> None:
    psu = KeysightRP7900("psu", rp_bench.servers["psu"].resource, RATING)
    identity = psu.open()
    try:
        assert (identity.manufacturer, identity.model) == ("Keysight Technologies", "RP7952A")
        assert psu.set_protection(60, 110) == SupplyProtection(60.0, None)
        psu.set_voltage(48)
        psu.set_current_limit(100)
        psu.output_on()
        assert psu.measure() == SupplyReading(48.0, 0.0, True, None)
        psu.safe_state()
        assert psu.measure().output_on is False
    finally:
        psu.close()


def test_the_simulated_unit_refuses_beyond_102_percent(rp_bench: SimulatedBench) -> None:
    psu = KeysightRP7900("psu", rp_bench.servers["psu"].resource, Rating(90, 250, 10000))  # a wrong config
    psu.open()
    try:
        psu.set_voltage(81.6)  # 102 % of 80 V: accepted
        with pytest.raises(ScpiError, match=r"-222,'Data out of range'"):
            psu.set_voltage(82)
    finally:
        psu.close()


def test_the_watchdog_trips_after_silence_and_clears(rp_bench: SimulatedBench) -> None:
    psu = KeysightRP7900("psu", rp_bench.servers["psu"].resource, RATING)
    psu.open()
    try:
        psu.set_protection(60, 110)
        psu.set_voltage(24)
        psu.output_on()
        psu.arm_watchdog(1)
        assert psu.measure().output_on is True
        time.sleep(1.3)  # no I/O on any interface for longer than the delay
        tripped = psu.measure()
        assert (tripped.output_on, tripped.protection) == (False, "WDOG")
        assert psu.transport.query("OUTP?") == "1"  # latched off; the programmed state is unchanged
        psu.clear_protection()
        cleared = psu.measure()
        assert (cleared.output_on, cleared.protection) == (False, None)  # cleared, and not re-energised
        psu.output_on()
        assert psu.measure().output_on is True
        psu.safe_state()
    finally:
        psu.close()
    assert rp_bench.model.unit("psu").watchdog_s is None  # disarmed by a close with the output off


def test_wrong_instrument_at_the_address_is_refused(rp_bench: SimulatedBench) -> None:
    psu = KeysightRP7900("psu", rp_bench.servers["load"].resource, RATING)  # a Chroma load answers there
    with pytest.raises(WrongInstrument, match=r"psu: found Chroma 63206A-150-600, expected a Keysight RP7900"):
        psu.open()
