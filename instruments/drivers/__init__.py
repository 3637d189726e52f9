"""The driver registry: short names a rig config may use, mapped to driver classes.

Names are validated when a config loads, so a rig file never holds an import path (renaming a module
cannot silently break a rig) and never executes anything.
"""

from __future__ import annotations

from instruments.drivers.chroma_63200a import Chroma63200A
from instruments.drivers.ea_elr import EaElr
from instruments.drivers.ea_psi import EaPsi
from instruments.drivers.itech_it6000c import ItechIT6000C
from instruments.drivers.itech_it8000 import ItechIT8000
from instruments.drivers.keysight_rp7900 import KeysightRP7900
from instruments.drivers.nacs_fixture import NacsInletFixture
from instruments.roles import DCSupply, ElectronicLoad, InletFixture, Instrument

DRIVERS: dict[str, type[Instrument]] = {
    "ea-psi": EaPsi,
    "ea-elr": EaElr,
    "itech-it8000": ItechIT8000,
    "chroma-63200a": Chroma63200A,
    "nacs-fixture": NacsInletFixture,
    "keysight-rp7900": KeysightRP7900,
    "itech-it6000c": ItechIT6000C,
}


def driver_role(name: str) -> str:
    cls = DRIVERS[name]
    if issubclass(cls, DCSupply):
        return "supply"
    if issubclass(cls, ElectronicLoad):
        return "load"
    if issubclass(cls, InletFixture):
        return "fixture"
    raise AssertionError(f"driver {name} has no role")
