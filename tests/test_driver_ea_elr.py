"""EA ELR 9000/10000: commands against the programming guide (PGMBEN rev. 24, sections 3.3.3 and 5), then
end to end over TCP against the simulated unit on a bench with a supply, checked against the physics.

The rating is the configured one, as a rig file would give it (ELR 11500-60 4U: 1500 V, 60 A, 30 kW).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from instruments.drivers.ea_elr import EaElr
from instruments.errors import InstrumentFault, ScpiError, SetpointRefused, WrongInstrument
from instruments.roles import LoadMode, LoadReading, Rating
from instruments.sim.bench import BenchSpec, SimInstrument, SimPath, SimulatedBench
from rig.clock import Clock
from rig.session import Rig
from tests.protocol import EA_ERROR_CHECK, expected_protocol
from tests.protocol import ea_checked as checked

RATING = Rating(voltage=1500, current=60, power=30000)
IDN = "EA Elektro-Automatik GmbH & Co. KG, ELR 11500-60 4U, 2200, V2.01"
MEASURE = "MEAS:ARR?;:INP?;:STAT:QUES:COND?;:STAT:OPER:COND?"


def driver() -> EaElr:
    return EaElr("load", "TCPIP::192.0.2.4::5025::SOCKET", RATING)


def test_remote_control_takes_the_lock_and_checks_the_owner() -> None:
    with expected_protocol(driver(), ("*CLS", None), ("SYST:LOCK ON", None), ("SYST:LOCK:OWN?", "REMOTE")) as load:
        load._take_remote_control()


def test_a_refused_lock_is_a_clear_error() -> None:
    with expected_protocol(driver(), ("*CLS", None), ("SYST:LOCK ON", None), ("SYST:LOCK:OWN?", "NONE")) as load, \
            pytest.raises(InstrumentFault, match=r"remote lock refused \(owner 'NONE'\)"):
        load._take_remote_control()


@pytest.mark.parametrize(("mode", "level", "wire"), [
    # Tightening values first, loosening ones last (see the driver's docstring).
    (LoadMode.CC, 45, ["SOUR:CURR 45", "SOUR:POW 30000", "SOUR:VOLT 0", "SYST:CONF:MODE UIP"]),
    (LoadMode.CV, 400, ["SOUR:VOLT 400", "SOUR:CURR 60", "SOUR:POW 30000", "SYST:CONF:MODE UIP"]),
    (LoadMode.CP, 12500, ["SOUR:POW 12500", "SOUR:CURR 60", "SOUR:VOLT 0", "SYST:CONF:MODE UIP"]),
    (LoadMode.CR, 80, ["SYST:CONF:MODE UIR", "SOUR:RES 80", "SOUR:CURR 60", "SOUR:POW 30000", "SOUR:VOLT 0"]),
])
def test_each_mode_is_a_combination_of_the_set_values(mode: LoadMode, level: float, wire: list[str]) -> None:
    with expected_protocol(driver(), *[checked(command) for command in wire]) as load:
        load.set_mode(mode, level)


def test_a_refusal_part_way_stops_before_the_loosening_values() -> None:
    with expected_protocol(
        driver(),
        ("SOUR:CURR 45", None),
        (EA_ERROR_CHECK, '1024;-222,"Data out of range"'),  # e.g. the unit's adjustment limit is lower
        ("SYST:ERR?", '0,"No error"'),
    ) as load, pytest.raises(ScpiError, match="-222"):
        load.set_mode(LoadMode.CC, 45)


@pytest.mark.parametrize(("call", "wire"), [
    (lambda ld: ld.input_on(), checked("INP ON")),
    (lambda ld: ld.input_off(), checked("INP OFF")),
    (lambda ld: ld.emergency_off(), [("INP OFF", None)]),
    # No INP:PROT:CLE (-100 on a unit): input off, read the queue (acknowledges), off again, read back.
    (lambda ld: ld.clear_protection(), [*checked("INP OFF"), (EA_ERROR_CHECK, '1024;0,"No error"'),
                                        *checked("INP OFF"), (MEASURE, "0.00 V, 0.00 A, 0.00 W;OFF;1024;0")]),
    (lambda ld: (setattr(ld, "remote_taken", True), ld.close()), [("SYST:LOCK OFF", None)]),
])
def test_command_table(call, wire) -> None:
    with expected_protocol(driver(), wire) as load:
        call(load)


@pytest.mark.parametrize(("reply", "expected"), [
    ("43.50 V, 10.00 A, 435.00 W;ON;3072;512", LoadReading(43.5, 10.0, True, None)),
    ("1531.00V, 0.00A, 0.00W;OFF;1025;0", LoadReading(1531.0, 0.0, False, "OVP")),  # guide spelling
    ("0.00 V, 0.00 A, 0.00 W;OFF;1030;0", LoadReading(0.0, 0.0, False, "OCP+OPP")),
    ("0.00 V, 0.00 A, 0.00 W;OFF;1032;0", LoadReading(0.0, 0.0, False, "OT")),
    ("0.00 V, 0.00 A, 0.00 W;OFF;1024;16", LoadReading(0.0, 0.0, False, "INH")),  # REM-SB: inhibit input
])
def test_measure_is_one_round_trip(reply: str, expected: LoadReading) -> None:
    with expected_protocol(driver(), (MEASURE, reply)) as load:
        assert load.measure() == expected


def test_a_status_query_the_unit_lacks_is_dropped_from_the_batch_and_blames_nothing_else() -> None:
    """Items 1 and 5 of issue 12, as an emulator without STAT:OPER answered: 3 replies for 4 and -100
    queued. Before, measure() failed for good (and so did safe_state, which reads back through it),
    and the next checked write (INP OFF) drained the -100 and failed with it."""
    with expected_protocol(
        driver(),
        (MEASURE, "43.50 V, 10.00 A, 435.00 W;ON;3072"),  # one part refused
        (EA_ERROR_CHECK, '3072;-100,"Command error"'),  # the queue says so: not a garbled reply
        ("SYST:ERR?", '0,"No error"'),
        ("*IDN?", IDN), ("STAT:QUES:COND?", "3072"), ("*IDN?", IDN),  # each optional part probed
        ("*IDN?", IDN), ("STAT:OPER:COND?", None), ("*IDN?", IDN),  # no reply before the marker's
        (EA_ERROR_CHECK, '3072;-100,"Command error"'),  # the probe's own refusal, drained
        ("SYST:ERR?", '0,"No error"'),
        ("MEAS:ARR?;:INP?;:STAT:QUES:COND?", "43.50 V, 10.00 A, 435.00 W;ON;3072"),  # asked again without it
        ("MEAS:ARR?;:INP?;:STAT:QUES:COND?", "43.50 V, 10.00 A, 435.00 W;ON;3072"),  # and from then on
        checked("INP OFF"),  # accepted, and nothing left in the queue to blame it for
    ) as load:
        assert load.measure() == LoadReading(43.5, 10.0, True, None)
        assert load.capabilities["operation-status"].present is False
        assert "the fixture's safety chain names it" in load.capabilities["operation-status"].detail
        assert load.measure() == LoadReading(43.5, 10.0, True, None)
        load.input_off()


def test_a_refused_query_that_is_not_optional_stays_an_error() -> None:
    with expected_protocol(
        driver(),
        (MEASURE, "43.50 V, 10.00 A, 435.00 W;3072;0"),
        (EA_ERROR_CHECK, '3072;-100,"Command error"'),
        ("SYST:ERR?", '0,"No error"'),
        ("*IDN?", IDN), ("STAT:QUES:COND?", "3072"), ("*IDN?", IDN),
        ("*IDN?", IDN), ("STAT:OPER:COND?", "0"), ("*IDN?", IDN),
    ) as load, pytest.raises(ScpiError, match=r"load: 'MEAS:ARR\?;:INP\?;.*': instrument reported -100"):
        load.measure()


@pytest.mark.parametrize(("mode", "level", "message"), [
    (LoadMode.CC, 61, "CC level 61 A refused: above the 60 A limit"),
    (LoadMode.CV, 1530, "CV level 1530 V refused: above the 1500 V limit"),
    (LoadMode.CP, 30600, "CP level 30600 W refused: above the 30000 W limit"),
    (LoadMode.CR, 20, r"CR level 20 ohm refused: below 75 ohm, .* more than 30000 W"),  # 1500 V² / 20 = 112 kW
])
def test_a_level_beyond_the_rating_is_refused_before_anything_is_sent(mode: LoadMode, level: float,
                                                                      message: str) -> None:
    with expected_protocol(driver()) as load, pytest.raises(SetpointRefused, match=message):
        load.set_mode(mode, level)


# --- end to end, over TCP, against the simulated unit ---------------------------------------------

SPEC = BenchSpec(
    name="ELR bench",
    instruments=(
        SimInstrument("psu_hv", "ea-psi", "PSI 11500-60 4U", Rating(1500, 60, 30000), "hv"),
        SimInstrument("load_hv", "ea-elr", "ELR 11500-60 4U", RATING, "hv"),
    ),
    paths=(SimPath("hv", 1),),
)


@pytest.fixture
def elr_bench(clock: Clock) -> Iterator[SimulatedBench]:
    with SimulatedBench(spec=SPEC, clock=clock) as b:
        yield b


@pytest.fixture
def elr_rig(elr_bench: SimulatedBench, clock: Clock) -> Iterator[Rig]:
    with Rig(elr_bench.config(), clock=clock) as r:
        yield r


def opened(bench: SimulatedBench) -> EaElr:
    load = EaElr("load_hv", bench.servers["load_hv"].resource, RATING)
    assert load.open().model == "ELR 11500-60 4U"
    return load


def test_each_mode_sinks_what_the_physics_says(elr_rig: Rig) -> None:
    """400 V from the supply (limit 20 A) through the inlet: the current the fixture measures through
    the inlet follows the setpoint in CC, V/R in CR and P/V in CP; in CV the load holds its voltage."""
    path = elr_rig.path_for(voltage=400, current=20)
    elr_rig.connect(path)
    elr_rig.source(path, volts=400, current_limit=20)
    load = path.load

    def inlet_current() -> float:
        fixture = elr_rig.sample().fixture
        assert fixture is not None
        return fixture.inlet_current

    elr_rig.sink(path, LoadMode.CC, 10)
    reading = load.measure()
    assert (reading.input_on, reading.protection) == (True, None)
    assert reading.current == pytest.approx(10, abs=0.01)
    assert inlet_current() == pytest.approx(10, abs=0.01)

    load.set_mode(LoadMode.CR, 100)
    reading = load.measure()
    assert reading.voltage == pytest.approx(400, abs=0.1)
    assert reading.current == pytest.approx(reading.voltage / 100, abs=0.01)
    assert inlet_current() == pytest.approx(reading.voltage / 100, abs=0.01)

    load.set_mode(LoadMode.CP, 2000)
    reading = load.measure()
    assert reading.current == pytest.approx(2000 / reading.voltage, abs=0.01)

    load.set_mode(LoadMode.CV, 300)  # more than the supply's 20 A would be needed to hold 400 V
    reading = load.measure()
    assert reading.voltage == pytest.approx(300, abs=0.1)
    assert inlet_current() == pytest.approx(20, abs=0.01)

    load.set_mode(LoadMode.CC, 5)  # back from CR/CV to UIP with U set 0
    assert load.measure().current == pytest.approx(5, abs=0.01)
    load.safe_state()
    assert load.measure().input_on is False


@pytest.mark.parametrize("alarm", ["OVP", "OCP", "INH"])
def test_a_latched_alarm_is_reported_and_cleared_and_the_input_stays_off(elr_bench: SimulatedBench,
                                                                         alarm: str) -> None:
    load = opened(elr_bench)
    try:
        load.set_mode(LoadMode.CC, 1)
        load.input_on()
        with elr_bench.model.lock:  # the model latches it (over-voltage at the terminals, inhibit chain)
            elr_bench.model.unit("load_hv").tripped = alarm
        assert load.measure() == LoadReading(0.0, 0.0, False, alarm)
        load.clear_protection()
        assert load.measure() == LoadReading(0.0, 0.0, False, None)
    finally:
        load.close()


def test_the_unit_refuses_settings_without_the_lock_and_above_102_percent(elr_bench: SimulatedBench) -> None:
    load = opened(elr_bench)
    try:
        with pytest.raises(ScpiError, match=r"-222"):
            load.transport.write_checked("SOUR:CURR 61.3")  # 60 A * 1.02 = 61.2 A
        load.transport.write("SYST:LOCK OFF")
        with pytest.raises(ScpiError, match=r"'SOUR:CURR 45': instrument reported -221"):
            load.set_mode(LoadMode.CC, 45)
    finally:
        load.close()


def test_the_unit_executes_nothing_of_a_line_with_more_than_5_commands(elr_bench: SimulatedBench) -> None:
    load = opened(elr_bench)
    try:
        load.transport.write("INP ON;INP OFF;INP ON;INP OFF;INP ON;INP ON")
        with pytest.raises(ScpiError, match=r"-223"):
            load.transport.check_errors("six commands")
        assert load.measure().input_on is False
    finally:
        load.close()


@pytest.mark.slow
def test_an_idle_connection_is_dropped_and_the_driver_takes_the_lock_again(elr_bench: SimulatedBench) -> None:
    """The unit closes a connection after 5 s without traffic (and leaves remote control with it); after
    5.5 s of silence the transport reconnects and takes the lock again before the next command."""
    server = elr_bench.servers["load_hv"]
    load = opened(elr_bench)
    idle = socket.create_connection((server.host, server.port), timeout=1.0)  # a second, silent client
    try:
        load.set_mode(LoadMode.CC, 5)
        time.sleep(5.5)
        assert idle.recv(16) == b"", "the simulated unit kept an idle connection open for 5.5 s"
        with socket.create_connection((server.host, server.port), timeout=1.0) as other:
            other.sendall(b"INP ON\nSYST:ERR?\n")  # remote control was left with the dropped connection
            assert other.recv(64).startswith(b'-221,"Settings conflict"')
        load.set_mode(LoadMode.CC, 6)  # refused with -221 unless the lock was taken again
        assert load.measure().input_on is False
        assert sum(line == "SYST:LOCK ON" for line in server.dialect.log) == 2
    finally:
        idle.close()
        load.close()


def test_wrong_instrument_at_the_address_is_refused(elr_bench: SimulatedBench) -> None:
    load = EaElr("load_hv", elr_bench.servers["psu_hv"].resource, RATING)  # a PSI supply answers there
    with pytest.raises(WrongInstrument, match=r"load_hv: found EA Elektro-Automatik GmbH & Co. KG PSI 11500-60 4U, "
                                              r"expected a Elektro-Automatik ELR"):
        load.open()
