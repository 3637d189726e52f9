"""A short plan for tests/test_firmware_variants.py (not collected by the suite: the file name does not
start with test_): energise, measure, make safe; twice, so the rig re-arms between tests."""

from __future__ import annotations

import pytest

from rig.steps import energise


@pytest.mark.parametrize(("volts", "amps"), [(40.0, 10.0), (30.0, 5.0)])
def test_energise_and_measure(rig, volts: float, amps: float) -> None:
    energise(rig, volts, load_amps=amps)
    rig.wait(1.0)
    sample = rig.sample()
    assert not sample.errors, sample.errors
    assert sample.fixture.inlet_current == pytest.approx(amps, abs=0.5)
    assert sample.fixture.inlet_voltage == pytest.approx(volts, abs=1.0)
