"""ITECH IT8000: commands against the ITECH SCPI set (low confidence, see the driver), then end to end over
TCP against the simulated unit on a bench with a supply, checked against the physics.

The rating is the configured one, as a rig file would give it (illustrative, not a datasheet value).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from instruments.drivers.itech_it8000 import ItechIT8000
from instruments.errors import ScpiError, SetpointRefused, WrongInstrument
from instruments.roles import LoadMode, LoadReading, Rating
from instruments.sim.bench import BenchSpec, SimInstrument, SimPath, SimulatedBench
from rig.clock import Clock
from rig.session import Rig
from tests.protocol import RECONNECT, checked, expected_protocol

RATING = Rating(voltage=1500, current=60, power=18000)


def driver() -> ItechIT8000:
    return ItechIT8000("load", "TCPIP::192.0.2.5::30000::SOCKET", RATING)


@pytest.mark.parametrize(("mode", "level", "wire"), [
    (LoadMode.CC, 45, [*checked("CURR 45"), *checked("FUNC CURR")]),
    (LoadMode.CV, 400, [*checked("VOLT 400"), *checked("FUNC VOLT")]),
    (LoadMode.CP, 12500, [*checked("POW 12500"), *checked("FUNC POW")]),
    (LoadMode.CR, 150, [*checked("RES 150"), *checked("FUNC RES")]),
])
def test_modes_set_the_level_then_select_the_function(mode: LoadMode, level: float, wire) -> None:
    with expected_protocol(driver(), wire) as load:
        load.set_mode(mode, level)


@pytest.mark.parametrize(("call", "wire"), [
    (lambda ld: ld._take_remote_control(), [("*CLS", None), *checked("SYST:REM")]),
    (lambda ld: ld.input_on(), checked("INP ON")),
    (lambda ld: ld.input_off(), checked("INP OFF")),
    (lambda ld: ld.emergency_off(), [("INP OFF", None)]),
    (lambda ld: ld.clear_protection(), [*checked("INP OFF"), *checked("PROT:CLE"), *checked("INP OFF"),
                                        ("MEAS:VOLT?;:MEAS:CURR?;:INP?;:STAT:QUES:COND?", "0;0;0;0")]),
    # Item 9 of issue 12: remote control taken with SYST:REM is handed back at close.
    (lambda ld: (setattr(ld, "remote_taken", True), ld.close()), [("SYST:LOC", None)]),
])
def test_command_table(call, wire) -> None:
    with expected_protocol(driver(), wire) as load:
        call(load)


@pytest.mark.parametrize(("reply", "expected"), [
    ("400.0123;10.0000;1;0", LoadReading(400.0123, 10.0, True, None)),
    ("1531.0000;0.0000;0;1", LoadReading(1531.0, 0.0, False, "OVP")),
    ("0.0000;0.0000;0;6", LoadReading(0.0, 0.0, False, "OCP")),  # RMS and peak: one name
    ("0.0000;0.0000;0;72", LoadReading(0.0, 0.0, False, "OPP+OT")),
    ("0.0000;0.0000;0;2048", LoadReading(0.0, 0.0, False, "INH")),
    ("0.0000;0.0000;0;32", LoadReading(0.0, 0.0, False, None)),  # under-voltage: not a latched protection
])
def test_measure_is_one_round_trip(reply: str, expected: LoadReading) -> None:
    with expected_protocol(driver(), ("MEAS:VOLT?;:MEAS:CURR?;:INP?;:STAT:QUES:COND?", reply)) as load:
        assert load.measure() == expected


@pytest.mark.parametrize(("mode", "level", "message"), [
    (LoadMode.CC, 61, "CC level 61 A refused: above the 60 A limit"),
    (LoadMode.CP, 18001, "CP level 18001 W refused: above the 18000 W limit"),
    (LoadMode.CR, 20, r"CR level 20 ohm refused: below 125 ohm, .* more than 18000 W"),
])
def test_a_level_beyond_the_rating_is_refused_before_anything_is_sent(mode: LoadMode, level: float,
                                                                      message: str) -> None:
    with expected_protocol(driver()) as load, pytest.raises(SetpointRefused, match=message):
        load.set_mode(mode, level)


# --- end to end, over TCP, against the simulated unit ---------------------------------------------

SPEC = BenchSpec(
    name="IT8000 bench",
    instruments=(
        SimInstrument("psu_hv", "ea-psi", "PSI 11500-60 4U", Rating(1500, 60, 30000), "hv"),
        SimInstrument("load_hv", "itech-it8000", "IT8018-1500-60", RATING, "hv"),
    ),
    paths=(SimPath("hv", 1),),
)


@pytest.fixture
def it8000_bench(clock: Clock) -> Iterator[SimulatedBench]:
    with SimulatedBench(spec=SPEC, clock=clock) as b:
        yield b


@pytest.fixture
def it8000_rig(it8000_bench: SimulatedBench, clock: Clock) -> Iterator[Rig]:
    with Rig(it8000_bench.config(), clock=clock) as r:
        yield r


def test_each_mode_sinks_what_the_physics_says(it8000_rig: Rig) -> None:
    """400 V from the supply (limit 20 A) through the inlet: the current the fixture measures through
    the inlet follows the setpoint in CC, V/R in CR and P/V in CP; in CV the load holds its voltage."""
    path = it8000_rig.path_for(voltage=400, current=20)
    it8000_rig.connect(path)
    it8000_rig.source(path, volts=400, current_limit=20)
    load = path.load

    def inlet_current() -> float:
        fixture = it8000_rig.sample().fixture
        assert fixture is not None
        return fixture.inlet_current

    it8000_rig.sink(path, LoadMode.CC, 10)
    reading = load.measure()
    assert (reading.input_on, reading.protection) == (True, None)
    assert reading.current == pytest.approx(10, abs=1e-3)
    assert inlet_current() == pytest.approx(10, abs=0.01)

    load.set_mode(LoadMode.CR, 100)
    reading = load.measure()
    assert reading.voltage == pytest.approx(400, abs=0.1)
    assert reading.current == pytest.approx(reading.voltage / 100, abs=1e-3)
    assert inlet_current() == pytest.approx(reading.voltage / 100, abs=0.01)

    load.set_mode(LoadMode.CP, 2000)
    reading = load.measure()
    assert reading.current == pytest.approx(2000 / reading.voltage, abs=1e-3)

    load.set_mode(LoadMode.CV, 300)  # more than the supply's 20 A would be needed to hold 400 V
    reading = load.measure()
    assert reading.voltage == pytest.approx(300, abs=0.1)
    assert inlet_current() == pytest.approx(20, abs=0.01)

    load.safe_state()
    assert load.measure().input_on is False


@pytest.mark.parametrize("alarm", ["OVP", "OCP", "INH"])
def test_a_latched_protection_is_reported_and_cleared_and_the_input_stays_off(it8000_bench: SimulatedBench,
                                                                              alarm: str) -> None:
    load = ItechIT8000("load_hv", it8000_bench.servers["load_hv"].resource, RATING)
    assert load.open().model == "IT8018-1500-60"
    try:
        load.set_mode(LoadMode.CC, 1)
        load.input_on()
        with it8000_bench.model.lock:  # the model latches it (over-voltage at the terminals, inhibit chain)
            it8000_bench.model.unit("load_hv").tripped = alarm
        assert load.measure() == LoadReading(0.0, 0.0, False, alarm)
        load.clear_protection()
        assert load.measure() == LoadReading(0.0, 0.0, False, None)
    finally:
        load.close()


def test_wrong_instrument_at_the_address_is_refused(it8000_bench: SimulatedBench) -> None:
    load = ItechIT8000("load_hv", it8000_bench.servers["psu_hv"].resource, RATING)  # a PSI supply answers there
    with pytest.raises(WrongInstrument, match=r"load_hv: found EA Elektro-Automatik GmbH & Co. KG PSI 11500-60 4U, "
                                              r"expected a ITECH IT8000"):
        load.open()


def test_a_failure_while_taking_remote_control_still_hands_it_back_at_close() -> None:
    """Item 9 of issue 12 (the IT6000C had it the other way round): held remote is recorded before
    it is taken, so a failure half way still sends SYST:LOC at close."""
    load, idn = driver(), "ITECH Ltd.,IT8018-500-180,SIM1,1.0"
    with expected_protocol(load, ("*IDN?", idn), ("STAT:QUES:COND?", "0"), ("*IDN?", idn),
                           ("*CLS", None), ("SYST:REM", None), ("SYST:ERR?", '-221,"Settings conflict"'),
                           ("SYST:ERR?", '0,"No error"'), ("SYST:LOC", None)):
        with pytest.raises(ScpiError, match="-221"):
            load._prepare()
        load.close()


def test_without_the_status_query_the_batch_drops_it() -> None:
    """Item 5 of issue 12: STAT:QUES:COND? refused made measure() fail for good."""
    idn = "ITECH Ltd.,IT8018-500-180,SIM1,1.0"
    with expected_protocol(
        driver(),
        ("MEAS:VOLT?;:MEAS:CURR?;:INP?;:STAT:QUES:COND?", None),  # refused part: no reply to the line
        RECONNECT,
        ("SYST:ERR?", '-113,"Undefined header"'),
        ("SYST:ERR?", '0,"No error"'),
        ("*IDN?", idn), ("STAT:QUES:COND?", None), ("*IDN?", idn),
        ("SYST:ERR?", '-113,"Undefined header"'),
        ("SYST:ERR?", '0,"No error"'),
        ("MEAS:VOLT?;:MEAS:CURR?;:INP?", "400.0;5.0;1"),
    ) as load:
        assert load.measure() == LoadReading(400.0, 5.0, True, None)
        assert load.capabilities["status"].present is False
