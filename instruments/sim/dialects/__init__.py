"""Simulated SCPI dialects, keyed by the same short driver names a rig config uses."""

from __future__ import annotations

from instruments.sim.dialects.chroma_63200a import Chroma63200ASim
from instruments.sim.dialects.ea_psi import EaPsiSim
from instruments.sim.scpi_dialect import Dialect

SIM_DIALECTS: dict[str, type[Dialect]] = {
    "ea-psi": EaPsiSim,
    "chroma-63200a": Chroma63200ASim,
}
