"""Chroma 63200A: commands against the programming manual's syntax, then end to end over TCP."""

from __future__ import annotations

import pytest

from instruments.drivers.chroma_63200a import Chroma63200A
from instruments.errors import SetpointRefused, WrongInstrument
from instruments.roles import LoadMode, LoadReading, Rating
from instruments.sim.bench import SimulatedBench
from tests.protocol import checked, expected_protocol

RATING = Rating(voltage=150, current=600, power=6000)


def driver() -> Chroma63200A:
    return Chroma63200A("load", "TCPIP::192.0.2.2::2101::SOCKET", RATING)


@pytest.mark.parametrize(("mode", "level", "wire"), [
    (LoadMode.CC, 450, [*checked("CURR:STAT:L1 450"), *checked("MODE CCH")]),
    (LoadMode.CR, 5, [*checked("RES:STAT:L1 5"), *checked("MODE CRH")]),
    (LoadMode.CV, 48, [*checked("VOLT:STAT:L1 48"), *checked("MODE CVH")]),
    (LoadMode.CP, 3000, [*checked("POW:STAT:L1 3000"), *checked("MODE CPH")]),
])
def test_modes_set_the_level_then_select_the_high_range(mode: LoadMode, level: float, wire) -> None:
    with expected_protocol(driver(), wire) as load:
        load.set_mode(mode, level)


@pytest.mark.parametrize(("call", "wire"), [
    (lambda ld: ld._take_remote_control(), [("*CLS", None), *checked("CONF:REM ON")]),
    (lambda ld: ld.input_on(), checked("LOAD ON")),
    (lambda ld: ld.input_off(), checked("LOAD OFF")),
    (lambda ld: ld.emergency_off(), [("LOAD OFF", None)]),
    (lambda ld: ld.clear_protection(), [*checked("LOAD OFF"), *checked("LOAD:PROT:CLE"), *checked("LOAD OFF"),
                                        ("MEAS:VOLT?;:MEAS:CURR?;:LOAD?;:LOAD:PROT?", "0.0000;0.0000;OFF;0")]),
])
def test_command_table(call, wire) -> None:
    with expected_protocol(driver(), wire) as load:
        call(load)


@pytest.mark.parametrize(("reply", "expected"), [
    ("12.3456;450.0000;ON;0", LoadReading(12.3456, 450.0, True, None)),
    ("0.0000;0.0000;0;4", LoadReading(0.0, 0.0, False, "PROT 4")),  # LOAD? as 1|0 on some firmware
])
def test_measure_is_one_round_trip(reply: str, expected: LoadReading) -> None:
    with expected_protocol(driver(), ("MEAS:VOLT?;:MEAS:CURR?;:LOAD?;:LOAD:PROT?", reply)) as load:
        assert load.measure() == expected


@pytest.mark.parametrize(("ohms", "why"), [
    (0.1, r"below 3\.75 ohm, .* more than 6000 W"),  # 150 V / 0.1 ohm: 1500 A and 225 kW
    (3.0, r"below 3\.75 ohm, .* more than 6000 W"),  # 50 A is fine, 7.5 kW is not
])
def test_cr_below_the_safe_minimum_is_refused_before_sending(ohms: float, why: str) -> None:
    with expected_protocol(driver()) as load, pytest.raises(SetpointRefused, match=why):
        load.set_mode(LoadMode.CR, ohms)


def test_end_to_end_against_the_simulated_load(bench: SimulatedBench) -> None:
    load = Chroma63200A("load_hc1", bench.servers["load_hc1"].resource, RATING)
    assert load.open().model == "63206A-150-600"
    try:
        load.set_mode(LoadMode.CC, 100)
        load.input_on()
        assert load.measure().input_on is True
        load.safe_state()
        assert load.measure() == LoadReading(0.0, 0.0, False, None)
    finally:
        load.close()


@pytest.mark.parametrize("model", ["63203", "63203A", "63206A-150-600", "63224A"])
def test_every_documented_model_spelling_is_accepted(model: str) -> None:
    """Item 6 of issue 12: ``*IDN?`` may name the model without the trailing A (``63203``)."""
    load = driver()
    load._connect = lambda: None  # type: ignore[method-assign]
    with expected_protocol(load, ("*IDN?", f"Chroma,{model},123,1.00")):
        assert load.open(prepare=False).model == model


@pytest.mark.parametrize("model", ["63600-2", "6314A", "632030", "63203B"])
def test_other_models_are_still_refused(model: str) -> None:
    load = driver()
    load._connect = lambda: None  # type: ignore[method-assign]
    with expected_protocol(load, ("*IDN?", f"Chroma,{model},123,1.00")), pytest.raises(WrongInstrument):
        load.open(prepare=False)
