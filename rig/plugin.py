"""pytest plugin (entry point ``pytest11``): the rig, its roles and measurements as fixtures."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nacs-rig", "NACS rig")
    group.addoption("--rig", dest="rig_file", metavar="FILE", help="rig config (TOML) of the bench to use")
    group.addoption("--sim", action="store_true", help="run against a simulated bench in this process")
