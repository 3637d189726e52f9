"""Re-arming after a trip (issue 12, items 3 and 4): only units that hold a protection are cleared, each the
way it accepts; afterwards every output is read back and forced off; a unit that cannot be cleared
remotely is named with what to do at its front panel. Audited from the simulated units' own logs."""

from __future__ import annotations

import pytest

from instruments.roles import LoadMode
from instruments.scpi import batch_line
from instruments.sim.bench import SimulatedBench
from rig.errors import SafetyTrip
from rig.session import Rig

CLEARS = ("OUTP:PROT:CLE", "PROT:CLE", "LOAD:PROT:CLE", "INP:PROT:CLE")
UNITS = ("psu_hv", "load_hv", "psu_hc1", "psu_hc2", "psu_hc3", "load_hc1", "load_hc2")


def logs(bench: SimulatedBench) -> dict[str, int]:
    return {n: len(bench.servers[n].dialect.log) for n in UNITS}


def since(bench: SimulatedBench, start: dict[str, int], name: str) -> list[str]:
    return list(bench.servers[name].dialect.log)[start[name]:]


def energise(rig: Rig) -> None:
    path = rig.path_for(400, 10)
    rig.connect(path)
    rig.source(path, 400, current_limit=10.5)
    rig.sink(path, LoadMode.CC, 10)


def test_a_trip_with_nothing_latched_clears_no_unit(bench: SimulatedBench, sim_rig: Rig) -> None:
    """After the over-temperature trip no unit holds a protection: nothing is sent a clear command (before,
    every unit was, and the EA units' -100 made every later test fail at setup)."""
    energise(sim_rig)
    with bench.model.lock:
        bench.model.advance()
        for contact in bench.model.contacts.values():
            contact.node.temperature = 130.0
        bench.model.params.ambient_c = 130.0
    with pytest.raises(SafetyTrip, match="over-temperature"):
        sim_rig.wait(60)
    with bench.model.lock:
        bench.model.params.ambient_c = 25.0
        for contact in bench.model.contacts.values():
            contact.node.temperature = 25.0
    start = logs(bench)
    sim_rig.rearm()
    assert sim_rig.trip is None
    for name in UNITS:
        assert not [line for line in since(bench, start, name) if line in CLEARS], name


def test_after_an_e_stop_each_inhibited_unit_is_cleared_its_own_way_then_read_back_off(
        bench: SimulatedBench, sim_rig: Rig) -> None:
    energise(sim_rig)
    bench.inject("estop")
    with pytest.raises(SafetyTrip, match="E-stop pressed"):
        sim_rig.wait(60)
    with bench.model.lock:
        bench.model.fixture.estop_button = False
    start = logs(bench)
    sim_rig.rearm()
    assert sim_rig.trip is None
    for name in ("psu_hc1", "load_hc1"):  # ITECH supply, Chroma load: their clear, then off and read back
        sent = since(bench, start, name)
        # The background sampler's batch may land between any two of the rearm's messages.
        sampled = batch_line(sim_rig.instruments[name].MEASURE)  # type: ignore[attr-defined]
        clear = next(i for i, line in enumerate(sent) if line in CLEARS)
        off = next(i for i, line in enumerate(sent) if i > clear and line in ("OUTP OFF", "LOAD OFF"))
        assert [line for line in sent[clear + 1:off] if line != sampled] == ["SYST:ERR?"], sent  # its check
        assert next(line for line in sent[off + 1:] if line != sampled) == "SYST:ERR?", sent
        assert sampled in sent[off + 2:], sent  # the read-back
    for name in ("psu_hv", "load_hv"):  # EA: no clear command; the error-queue read acknowledges
        assert not [line for line in since(bench, start, name) if line in CLEARS], name
    with bench.model.lock:
        bench.model.advance()
        assert not any(u.tripped for u in bench.model.units())
        assert not any(s.delivering for p in bench.model.paths.values() for s in p.supplies)
