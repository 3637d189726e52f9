"""A load's power rating is checked like its current and voltage (issue 12, item 8): a CC level whose power
at the path's voltage exceeds the load's (or its group's) power limit is refused before anything is sent,
and so is a supply voltage that would take a CC load already set beyond it."""

from __future__ import annotations

import pytest

from instruments.drivers.chroma_63200a import Chroma63200A
from instruments.drivers.ea_elr import EaElr
from instruments.drivers.ea_psi import EaPsi
from instruments.errors import SetpointRefused
from instruments.roles import LoadMode, Rating
from instruments.sim.bench import SimulatedBench
from rig.session import Rig
from tests.protocol import checked, ea_checked, expected_protocol


def test_a_cc_level_beyond_the_power_rating_at_the_path_voltage_is_refused_before_sending() -> None:
    """As seen with an emulator: CC 50 A at 400 V on a 6 kW load went out and tripped its OPP."""
    load = EaElr("load", "TCPIP::192.0.2.4::5025::SOCKET", Rating(voltage=500, current=60, power=6000))
    load.set_path_voltage(400)
    with expected_protocol(load), pytest.raises(
            SetpointRefused, match=r"load: CC level 50 A at 400 V refused: 20000 W is above the 6000 W limit "
                                   r"\(load rating\)"):
        load.set_mode(LoadMode.CC, 50)


def test_within_the_power_rating_the_level_goes_out() -> None:
    load = EaElr("load", "TCPIP::192.0.2.4::5025::SOCKET", Rating(voltage=500, current=60, power=6000))
    load.set_path_voltage(400)
    with expected_protocol(load, *[ea_checked(c) for c in ("SOUR:CURR 15", "SOUR:POW 6000", "SOUR:VOLT 0",
                                                           "SYST:CONF:MODE UIP")]):
        load.set_mode(LoadMode.CC, 15)


def test_switching_on_or_raising_the_voltage_beyond_the_load_power_is_refused_before_sending() -> None:
    """A CC level set while the path voltage was unknown (or low) is checked again when the input is
    switched on, and when a supply voltage would take a load whose input may be on beyond its power."""
    load = Chroma63200A("load", "TCPIP::192.0.2.2::2101::SOCKET", Rating(voltage=150, current=600, power=6000))
    psu = EaPsi("psu", "TCPIP::192.0.2.1::5025::SOCKET", Rating(voltage=1500, current=60, power=30000))
    psu.loads.append(load)
    with expected_protocol(load, checked("CURR:STAT:L1 500"), checked("MODE CCH")):
        load.set_mode(LoadMode.CC, 500)  # path voltage not known yet
    with expected_protocol(psu, ea_checked("SOUR:POW 30000"), ea_checked("SOUR:VOLT 48")):
        psu.set_voltage(48)  # the load's input is off: it draws nothing
    with expected_protocol(load), pytest.raises(SetpointRefused, match=r"load: CC level 500 A at 48 V refused: "
                                                                       r"24000 W is above the 6000 W limit"):
        load.input_on()
    with expected_protocol(psu, ea_checked("SOUR:VOLT 10")), expected_protocol(load, checked("LOAD ON")):
        psu.set_voltage(10)
        load.input_on()  # 5 kW
    with expected_protocol(psu), pytest.raises(SetpointRefused, match=r"load: CC level 500 A at 48 V refused"):
        psu.set_voltage(48)


def test_a_group_checks_its_own_power_and_each_members(bench: SimulatedBench, sim_rig: Rig) -> None:
    """The high-current path: three 80 V supplies, two 6 kW loads (12 kW as a group). At 8 V, 900 A is
    7.2 kW (fine); at 20 V it is 18 kW: refused, and no load received a level."""
    path = sim_rig.paths["hc"]
    path.supply.set_voltage(8)
    path.load.set_mode(LoadMode.CC, 900)
    assert [u.level for u in bench.model.paths["hc"].loads] == pytest.approx([450, 450])
    path.load.set_mode(LoadMode.CC, 0)
    path.supply.set_voltage(20)
    before = {n: len(bench.servers[n].dialect.log) for n in ("load_hc1", "load_hc2")}
    with pytest.raises(SetpointRefused, match=r"hc.load: CC level 900 A at 20 V refused: 18000 W is above the "
                                              r"12000 W limit"):
        path.load.set_mode(LoadMode.CC, 900)
    with pytest.raises(SetpointRefused, match=r"load_hc1: CC level 400 A at 20 V refused: 8000 W is above the "
                                              r"6000 W limit"):
        path.load.members[0].set_mode(LoadMode.CC, 400)  # a member alone checks its own rating
    sent = [line for n in before for line in list(bench.servers[n].dialect.log)[before[n]:]]
    assert [line for line in sent if "?" not in line] == []  # only the sampler's reads: no setting went out
