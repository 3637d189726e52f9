"""EA PSI 9000/10000: commands against the programming guide (PGMBEN rev. 24, section 5), then end to
end against the simulated unit over TCP."""

from __future__ import annotations

import pytest

from instruments.drivers.ea_psi import EaPsi
from instruments.errors import BadReply, ScpiError, SetpointRefused, WrongInstrument
from instruments.roles import Rating, SupplyProtection, SupplyReading
from instruments.sim.bench import SimulatedBench
from tests.protocol import EA_ERROR_CHECK as ERROR_CHECK
from tests.protocol import ea_checked as checked
from tests.protocol import expected_protocol
from tests.safe_bench import wait_until

RATING = Rating(voltage=1500, current=60, power=30000)
MEASURE = "MEAS:ARR?;:OUTP?;:STAT:QUES:COND?"


def driver() -> EaPsi:
    return EaPsi("psu", "TCPIP::192.0.2.1::5025::SOCKET", RATING)


def test_remote_control_takes_the_lock_and_changes_no_setting() -> None:
    """Item 7 of issue 12: `rig check` and `rig safe` take remote control; the power set value is not
    written there (it was: SOUR:POW <rating>) but with the first voltage setpoint."""
    with expected_protocol(
        driver(),
        ("*CLS", None),
        ("SYST:LOCK ON", None),
        ("SYST:LOCK:OWN?", "REMOTE"),
    ) as psu:
        psu._take_remote_control()


def test_the_power_limit_is_opened_once_with_the_first_voltage_setpoint() -> None:
    with expected_protocol(driver(), checked("SOUR:POW 30000"), checked("SOUR:VOLT 400"),
                           checked("SOUR:VOLT 500")) as psu:
        psu.set_voltage(400)
        psu.set_voltage(500)


IDN = "EA Elektro-Automatik GmbH & Co. KG, PSI 11500-60 4U, 2100, V2.01"


def test_open_probes_optional_queries_then_clears_the_queue_and_takes_the_lock() -> None:
    with expected_protocol(
        driver(),
        ("*IDN?", IDN),
        ("*IDN?", IDN),  # the probe: the marker's reply first...
        ("STAT:QUES:COND?", "0"),  # ...then the optional query, the marker after it
        ("*IDN?", IDN),
        ("*CLS", None),
        ("SYST:LOCK ON", None),
        ("SYST:LOCK:OWN?", "REMOTE"),
    ) as psu:
        psu._connect = lambda: None  # the script is the connection
        psu.open()
        assert psu.capabilities["status"].present is True
        assert psu.capabilities["protection-clear"].detail.startswith("alarm acknowledged by reading the error queue")


@pytest.mark.parametrize(("call", "wire"), [
    (lambda p: p.set_current_limit(12.5), checked("SOUR:CURR 12.5")),
    (lambda p: p.output_on(), checked("OUTP ON")),
    (lambda p: p.output_off(), checked("OUTP OFF")),
    (lambda p: p.emergency_off(), [("OUTP OFF", None)]),
])
def test_command_table(call, wire) -> None:
    with expected_protocol(driver(), wire) as psu:
        call(psu)


def test_there_is_no_clear_command_the_alarm_is_acknowledged_by_reading_the_queue() -> None:
    """Item 3 of issue 12: ``OUTP:PROT:CLE`` was answered -100 (the guide lists no such command).
    Clearing is: output off, read the queue (acknowledges), output off again, read back."""
    with expected_protocol(
        driver(),
        checked("OUTP OFF", status="1025"),  # OVP standing: remembered before the read acknowledges it
        (ERROR_CHECK, '1024;0,"No error"'),
        checked("OUTP OFF"),
        (MEASURE, "0.00 V, 0.00 A, 0.00 W;OFF;1024"),
    ) as psu:
        psu.clear_protection()
        assert psu.capabilities["protection-clear"].present is True


def test_an_alarm_the_drivers_own_error_check_acknowledges_is_still_reported() -> None:
    """Item 10 of issue 12: right after an OVP trip, the SYST:ERR? of the next checked write
    acknowledged the alarm and measure() showed the output off with protection=None. The status read
    in the same line keeps the cause until the protection is cleared."""
    with expected_protocol(
        driver(),
        checked("SOUR:CURR 5", status="1025"),  # OVP bit set when the queue is read (and acknowledged)
        (MEASURE, "0.00 V, 0.00 A, 0.00 W;OFF;1024"),  # acknowledged: the bit is gone
        (MEASURE, "0.00 V, 0.00 A, 0.00 W;OFF;1024"),
        checked("OUTP OFF"),
        (ERROR_CHECK, '1024;0,"No error"'),
        checked("OUTP OFF"),
        (MEASURE, "0.00 V, 0.00 A, 0.00 W;OFF;1024"),
        (MEASURE, "0.00 V, 0.00 A, 0.00 W;OFF;1024"),
    ) as psu:
        psu.set_current_limit(5)
        assert psu.measure() == SupplyReading(0.0, 0.0, False, "OVP")
        assert psu.measure().protection == "OVP"  # until cleared
        psu.clear_protection()
        assert psu.measure().protection is None


def test_protection_is_programmed_and_read_back_with_units() -> None:
    with expected_protocol(
        driver(),
        checked("SOUR:VOLT:PROT 1100"),
        checked("SOUR:CURR:PROT 66"),
        ("SOUR:VOLT:PROT?;:SOUR:CURR:PROT?", "1100.00 V;66.00 A"),
    ) as psu:
        assert psu.set_protection(1100, 66) == SupplyProtection(1100.0, 66.0)


@pytest.mark.parametrize(("reply", "expected"), [
    ("43.50 V, 10.00 A, 435.00 W;ON;3072", SupplyReading(43.5, 10.0, True, None)),
    ("43.50V, 10.00A, 435.00W;OFF;1025", SupplyReading(43.5, 10.0, False, "OVP")),  # guide spelling
    ("0.00 V, 0.00 A, 0.00 W;OFF;1030", SupplyReading(0.0, 0.0, False, "OCP+OPP")),
])
def test_measure_is_one_round_trip(reply: str, expected: SupplyReading) -> None:
    with expected_protocol(driver(), (MEASURE, reply)) as psu:
        assert psu.measure() == expected


def test_setpoint_above_the_limit_is_refused_before_anything_is_sent() -> None:
    with expected_protocol(driver()) as psu, pytest.raises(SetpointRefused, match="1600 V refused: above the 1500 V"):
        psu.set_voltage(1600)


def test_a_refused_command_raises_with_the_error_queue() -> None:
    with expected_protocol(
        driver(),
        ("SOUR:CURR 10", None),
        (ERROR_CHECK, '1024;-221,"Settings conflict"'),
        ("SYST:ERR?", '0,"No error"'),
    ) as psu, pytest.raises(ScpiError, match=r"psu: 'SOUR:CURR 10': instrument reported -221,'Settings conflict'"):
        psu.set_current_limit(10)


def test_garbage_reply_is_a_clear_error() -> None:
    with expected_protocol(driver(), ("MEAS:ARR?;:OUTP?;:STAT:QUES:COND?", "#?!;ON;0")) as psu, \
            pytest.raises(BadReply, match=r"psu: 'MEAS:ARR\?': reply '#\?!' is not 'U, I, P'"):
        psu.measure()


# --- end to end, over TCP, against the simulated unit ---------------------------------------------


def test_end_to_end_against_the_simulated_supply(bench: SimulatedBench) -> None:
    psu = EaPsi("psu_hv", bench.servers["psu_hv"].resource, RATING)
    identity = psu.open()
    try:
        assert identity.model == "PSI 11500-60 4U"
        assert psu.set_protection(550, 10) == SupplyProtection(550.0, 10.0)
        psu.set_voltage(400)
        psu.set_current_limit(5)
        psu.output_on()
        reading = psu.measure()
        assert (reading.voltage, reading.output_on, reading.protection) == (400.0, True, None)
        psu.safe_state()
        assert psu.measure().output_on is False
    finally:
        psu.close()


def test_the_unit_refuses_settings_without_the_remote_lock(bench: SimulatedBench) -> None:
    """The simulated unit enforces the lock like the real one (-221)."""
    psu = EaPsi("psu_hv", bench.servers["psu_hv"].resource, RATING)
    psu.open()
    try:
        psu.transport.write("SYST:LOCK OFF")
        with pytest.raises(ScpiError, match="-221"):
            psu.set_voltage(10)
    finally:
        psu.close()


def test_wrong_instrument_at_the_address_is_refused(bench: SimulatedBench) -> None:
    psu = EaPsi("psu_hv", bench.servers["load_hc1"].resource, RATING)  # a Chroma load answers there
    with pytest.raises(WrongInstrument, match=r"psu_hv: found Chroma 63206A-150-600, expected a Elektro-Automatik"):
        psu.open()


def test_a_read_only_session_never_releases_the_lock_of_a_run(bench: SimulatedBench) -> None:
    """`rig monitor` opens without taking remote control; closing it must leave a run's lock alone."""
    run = EaPsi("psu_hv", bench.servers["psu_hv"].resource, RATING)
    run.open()
    monitor = EaPsi("psu_hv", bench.servers["psu_hv"].resource, RATING)
    monitor.open(prepare=False)
    monitor.measure()
    monitor.close()
    try:
        assert bench.servers["psu_hv"].dialect.locked
        run.set_voltage(10)  # still accepted: no -221
    finally:
        run.close()
    wait_until(lambda: not bench.servers["psu_hv"].dialect.locked, 2, "the run's own close to release the lock")
