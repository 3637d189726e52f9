"""Proximity pilot at the vehicle side: unplugged, latched, release button pressed."""

from __future__ import annotations

import pytest

from instruments.roles import Connector


@pytest.mark.parametrize(("connector", "limit"), [
    pytest.param(Connector.UNPLUGGED, "pp.unplugged", id="unplugged"),
    pytest.param(Connector.LATCHED, "pp.latched", id="latched"),
    pytest.param(Connector.BUTTON_PRESSED, "pp.button_pressed", id="button-pressed"),
])
def test_proximity_voltage(rig, check, connector: Connector, limit: str) -> None:
    """The fixture emulates the connector (150 Ω latched, 480 Ω with the release button pressed); the
    PP voltage at the inlet (330 Ω pull-up to 5 V, 2.7 kΩ pull-down) must fall in the vehicle-side
    window. Limits: pp.unplugged, pp.latched, pp.button_pressed."""
    rig.fixture.set_connector(connector)
    check(limit, rig.sample().fixture.pp_voltage)
