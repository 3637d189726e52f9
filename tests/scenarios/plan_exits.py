"""Synthetic plans for tests/test_safety_exits.py (not collected by the suite: the file name does not
start with test_). Each leaves a run a different way while the bench is energised."""

from __future__ import annotations

from rig.steps import energise, hold


def _energise(rig) -> None:
    energise(rig, 400.0, load_amps=10.0)  # the high-voltage path, 400 V, 10 A through the inlet
    rig.wait(1.0)
    assert rig.sample().fixture.inlet_current > 9.0


def test_pass(rig, check) -> None:
    _energise(rig)
    check("pp.unplugged", rig.sample().fixture.pp_voltage)


def test_failed_assertion(rig) -> None:
    _energise(rig)
    assert rig.sample().fixture.inlet_current > 1e6, "deliberately failing assertion"


def test_exception(rig) -> None:
    _energise(rig)
    raise RuntimeError("deliberate exception in a plan")


def test_long_hold(rig, check) -> None:
    """Energised, one measurement recorded, then a hold far longer than any test waits for."""
    _energise(rig)
    check("pp.unplugged", rig.sample().fixture.pp_voltage)
    rig.wait(1e9)


def test_hold_and_pass(rig, check) -> None:
    """Energised for 100 rig seconds (5 s at the standalone simulator's scale), then a measurement."""
    _energise(rig)
    for sample in hold(rig, 100.0, 1.0, "hold"):
        assert sample.fixture.inlet_current > 9.0
    check("pp.unplugged", rig.sample().fixture.pp_voltage)
