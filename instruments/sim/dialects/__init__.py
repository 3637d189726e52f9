"""Simulated SCPI dialects, keyed by the same short driver names a rig config uses."""

from __future__ import annotations

from instruments.sim.dialects.chroma_63200a import Chroma63200ASim
from instruments.sim.dialects.ea_elr import EaElrSim
from instruments.sim.dialects.ea_psi import EaPsiSim
from instruments.sim.dialects.itech_it6000c import ItechIT6000CSim
from instruments.sim.dialects.itech_it8000 import ItechIT8000Sim
from instruments.sim.dialects.keysight_rp7900 import KeysightRP7900Sim
from instruments.sim.scpi_dialect import Dialect

SIM_DIALECTS: dict[str, type[Dialect]] = {
    "ea-psi": EaPsiSim,
    "ea-elr": EaElrSim,
    "itech-it8000": ItechIT8000Sim,
    "chroma-63200a": Chroma63200ASim,
    "keysight-rp7900": KeysightRP7900Sim,
    "itech-it6000c": ItechIT6000CSim,
}
