"""The simulated benches the benchmark runs against.

- ``default``: the NACS bench of ``instruments.sim.bench.nacs_bench()`` (4 EA PSI supplies, 3 Chroma
  loads, the fixture), what ``rig run --sim`` uses. EA units want >= 5 ms between messages, so a
  sampling loop on it is bound by that gap, not by the software.
- ``no_gap``: 2 Keysight RP7900 supplies and 2 Chroma 63200A loads (no inter-message gap) and the
  fixture: a sampling loop on it is bound by the software and the simulator.
"""

from __future__ import annotations

from instruments.roles import Rating
from instruments.sim.bench import BenchSpec, SimInstrument, SimPath, nacs_bench


def no_gap_bench() -> BenchSpec:
    return BenchSpec(
        name="benchmark bench without inter-message gaps",
        instruments=(
            SimInstrument("psu_a", "keysight-rp7900", "RP7952A", Rating(950, 20, 10000), "a"),
            SimInstrument("load_a", "chroma-63200a", "63210A-1200-100", Rating(1200, 100, 10000), "a"),
            SimInstrument("psu_b", "keysight-rp7900", "RP7952A", Rating(950, 20, 10000), "b"),
            SimInstrument("load_b", "chroma-63200a", "63206A-150-600", Rating(150, 600, 6000), "b"),
        ),
        paths=(SimPath("a", 1), SimPath("b", 2)),
    )


SPECS = {"default": nacs_bench, "no_gap": no_gap_bench}


def describe(spec: BenchSpec) -> str:
    """``4x ea-psi, 3x chroma-63200a + fixture``."""
    counts: dict[str, int] = {}
    for inst in spec.instruments:
        counts[inst.driver] = counts.get(inst.driver, 0) + 1
    return ", ".join(f"{n}x {driver}" for driver, n in counts.items()) + " + nacs-fixture"
