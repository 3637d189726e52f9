"""EA PSI 9000/10000: commands against the programming guide (PGMBEN rev. 24, section 5), then end to
end against the simulated unit over TCP."""

from __future__ import annotations

import pytest

from instruments.drivers.ea_psi import EaPsi
from instruments.errors import BadReply, ScpiError, SetpointRefused, WrongInstrument
from instruments.roles import Rating, SupplyProtection, SupplyReading
from instruments.sim.bench import SimulatedBench
from tests.protocol import checked, expected_protocol
from tests.safe_bench import wait_until

RATING = Rating(voltage=1500, current=60, power=30000)


def driver() -> EaPsi:
    return EaPsi("psu", "TCPIP::192.0.2.1::5025::SOCKET", RATING)


def test_remote_control_takes_the_lock_and_opens_the_power_limit() -> None:
    with expected_protocol(
        driver(),
        ("*CLS", None),
        ("SYST:LOCK ON", None),
        ("SYST:LOCK:OWN?", "REMOTE"),
        checked("SOUR:POW 30000"),
    ) as psu:
        psu._take_remote_control()


@pytest.mark.parametrize(("call", "wire"), [
    (lambda p: p.set_voltage(400), checked("SOUR:VOLT 400")),
    (lambda p: p.set_current_limit(12.5), checked("SOUR:CURR 12.5")),
    (lambda p: p.output_on(), checked("OUTP ON")),
    (lambda p: p.output_off(), checked("OUTP OFF")),
    (lambda p: p.clear_protection(), checked("OUTP:PROT:CLE")),
    (lambda p: p.emergency_off(), [("OUTP OFF", None)]),
])
def test_command_table(call, wire) -> None:
    with expected_protocol(driver(), wire) as psu:
        call(psu)


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
    with expected_protocol(driver(), ("MEAS:ARR?;:OUTP?;:STAT:QUES:COND?", reply)) as psu:
        assert psu.measure() == expected


def test_setpoint_above_the_limit_is_refused_before_anything_is_sent() -> None:
    with expected_protocol(driver()) as psu, pytest.raises(SetpointRefused, match="1600 V refused: above the 1500 V"):
        psu.set_voltage(1600)


def test_a_refused_command_raises_with_the_error_queue() -> None:
    with expected_protocol(
        driver(),
        ("SOUR:VOLT 1000", None),
        ("SYST:ERR?", '-221,"Settings conflict"'),
        ("SYST:ERR?", '0,"No error"'),
    ) as psu, pytest.raises(ScpiError, match=r"psu: 'SOUR:VOLT 1000': instrument reported -221,'Settings conflict'"):
        psu.set_voltage(1000)


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
