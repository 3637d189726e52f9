"""``sample_rate_ratio``: the rig's sampling loop against the hand-written baseline, in one run.

The rig side is ``rig.sampler.Sampler.sample_once()`` over the bench's instruments, each opened with
``rig.session.make_instrument`` + ``open()`` (drivers, transports, the pipelined sampler). The baseline
is ``bench.hand_loop.HandLoop``. Both talk to the same simulated bench over the same sockets; they run
in alternating rounds (rig, hand, rig, ...) so drifting machine load hits both alike. Each round pair
gives a ratio, rig samples/s over hand samples/s; the figure is the median of those ratios.

A third loop is timed beside them for the diagnosis: the same drivers read one after another with
``measure()`` / ``read()`` (no pipelining), which separates the cost of the drivers from the gain of
sending every request before waiting for any reply.
"""

from __future__ import annotations

import contextlib
import glob
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import Figure
from bench.hand_loop import HandLoop
from bench.simproc import external_bench
from bench.specs import SPECS, describe
from instruments.roles import InletFixture, Instrument
from instruments.sim.bench import SimulatedBench
from rig.clock import Clock
from rig.config import RigConfig
from rig.sampler import Sampler
from rig.session import make_instrument

GOAL = 0.9
#: With the simulator in its own process, as real instruments are, the rig must beat the hand loop.
GOAL_EXT = 1.0


def context_switches() -> int:
    """Voluntary + involuntary context switches of every thread of this process (0 off Linux)."""
    total = 0
    for path in glob.glob("/proc/self/task/*/status"):
        with contextlib.suppress(OSError), open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def open_instruments(config: RigConfig) -> dict[str, Instrument]:
    instruments = {name: make_instrument(cfg) for name, cfg in config.instruments.items()}
    for inst in instruments.values():
        inst.open()
    return instruments


def _read_sequentially(instruments: dict[str, Instrument]) -> Callable[[], object]:
    def run() -> list[object]:
        return [i.read() if isinstance(i, InletFixture) else i.measure()  # type: ignore[attr-defined]
                for i in instruments.values()]
    return run


class _Loop:
    def __init__(self, name: str, step: Callable[[], object]) -> None:
        self.name = name
        self.step = step
        self.samples = 0
        self.seconds = 0.0
        self.cpu = 0.0
        self.switches = 0
        self.rates: list[float] = []  # samples/s of each round

    def run_for(self, seconds: float) -> None:
        for _ in range(5):  # re-warm after the other loops (caches, connections)
            self.step()
        c0, p0, t0 = context_switches(), time.process_time(), time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds:
            self.step()
            n += 1
        elapsed = time.perf_counter() - t0
        self.rates.append(n / elapsed)
        self.seconds += elapsed
        self.cpu += time.process_time() - p0
        self.switches += context_switches() - c0
        self.samples += n

    @property
    def rate(self) -> float:
        return self.samples / self.seconds if self.seconds else float("nan")

    def per_sample(self) -> dict[str, float]:
        n = max(1, self.samples)
        return {"per_s": self.rate, "cpu_us_per_sample": self.cpu / n * 1e6,
                "context_switches_per_sample": self.switches / n}


def compare(config: RigConfig, rounds: int, round_s: float, bench: SimulatedBench | None = None) -> dict[str, Any]:
    """Alternate rig / hand / rig-sequential rounds on one bench; rates and per-sample costs of each."""
    instruments = open_instruments(config)
    sampler = Sampler(instruments, Clock(1.0), 1.0, lambda s: None)
    hand = HandLoop(config)
    try:
        same = _same_wire_requests(bench, sampler, hand) if bench is not None else None
        loops = [_Loop("rig", sampler.sample_once), _Loop("hand", hand.sample),
                 _Loop("rig_sequential", _read_sequentially(instruments))]
        for k in range(rounds):
            for loop in loops if k % 2 == 0 else loops[::-1]:
                loop.run_for(round_s)
        last = sampler.sample_once()
        ratios = [r / h for r, h in zip(loops[0].rates, loops[1].rates, strict=True)]
        return {"loops": {loop.name: loop.per_sample() for loop in loops},
                "ratio": statistics.median(ratios), "round_ratios": ratios,
                "errors": {k: str(v) for k, v in last.errors.items()},
                "same_wire_requests": same}
    finally:
        hand.close()
        sampler.stop()
        for inst in instruments.values():
            with contextlib.suppress(Exception):
                inst.close()


def _same_wire_requests(bench: SimulatedBench, sampler: Sampler, hand: HandLoop) -> bool:
    """Whether one rig sample and one hand sample put the same lines on every SCPI instrument's wire."""
    sampler.sample_once()
    hand.sample()
    seen = []
    for take in (sampler.sample_once, hand.sample):
        for server in bench.servers.values():
            server.dialect.log.clear()
        take()
        seen.append({name: list(server.dialect.log) for name, server in bench.servers.items()})
    return seen[0] == seen[1] and all(len(lines) == 1 for lines in seen[0].values())


def _figure(name: str, result: dict[str, Any], where: str, spec_name: str, goal: float, limit: str) -> Figure:
    loops = result["loops"]
    rig, hand, seq = loops["rig"]["per_s"], loops["hand"]["per_s"], loops["rig_sequential"]["per_s"]
    rounds = result["round_ratios"]
    note = (f"{describe(SPECS[spec_name]())}, simulator {where}; median of {len(rounds)} alternated rounds "
            f"(ratios {min(rounds):.2f} - {max(rounds):.2f}); rig {rig:.0f}/s vs hand {hand:.0f}/s "
            f"(drivers read one after another, not pipelined: {seq:.0f}/s, ratio {seq / hand:.2f}). "
            f"Limited by: {limit}")
    if result["same_wire_requests"] is False:
        note += "; WARNING: rig and hand loop sent different lines"
    if result["errors"]:
        note += f"; errors: {result['errors']}"
    detail = {"rig_per_s": rig, "hand_per_s": hand, "rig_sequential_per_s": seq,
              "rig_sequential_ratio": seq / hand, "bench": describe(SPECS[spec_name]()),
              "simulator": where, "same_wire_requests": result["same_wire_requests"],
              "round_ratios": rounds, "per_sample": loops}
    return Figure(name, result["ratio"], "x", goal, ">=", note, detail)


#: What bounds each figure (see docs/performance.md for the measurements behind these sentences).
LIMITS = {
    "default": "the EA units' 5 ms between messages, for rig and hand loop alike (both about 5 ms + one "
               "round trip per sample), so this shows the rig adds nothing there, not its own cost",
    "no_gap": "the one interpreter: the simulator's event loop, the rig and the hand loop share the GIL; "
              "the rig's extra CPU per sample (drivers, reading objects, checks) against the hand loop's "
              "is offset by sending every request before reading any reply",
    "no_gap_ext": "the simulator's replies (its own process): pipelining overlaps the instruments' "
                  "round trips that the hand loop waits out one after another",
}


def run(quick: bool) -> list[Figure]:
    rounds, round_s = (2, 0.25) if quick else (6, 0.5)
    figures = []
    for spec_name, name in (("default", "sample_rate_ratio"), ("no_gap", "sample_rate_ratio_no_gap")):
        with SimulatedBench(spec=SPECS[spec_name](), clock=Clock(1.0)) as bench:
            result = compare(bench.config(), rounds, round_s, bench)
        figures.append(_figure(name, result, "in this process", spec_name, GOAL, LIMITS[spec_name]))
    with external_bench("no_gap") as config:
        result = compare(config, rounds, round_s)
    figures.append(_figure("sample_rate_ratio_no_gap_ext", result, "in its own process", "no_gap", GOAL_EXT,
                           LIMITS["no_gap_ext"]))
    return figures
