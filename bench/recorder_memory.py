"""``rss_growth_mb_1m_samples`` and ``recorder_samples_per_s``: ``RunRecorder.write_sample`` fed one
million samples.

One realistic sample is built from ``instruments.roles`` readings, the default NACS bench's shape: four
``SupplyReading``, three ``LoadReading`` and one ``FixtureReading``; each write is a new
``rig.sampler.Sample`` around those readings with its own rig time and wall time. The recorder writes
``samples.csv`` into a temporary folder as a run does (a row per sample, flushed at once). Resident
memory (psutil) is read after ``WARM`` samples, when the interpreter, the csv writer and the file buffer
have settled, and at the end, both after a garbage collection; the growth between them is the figure.
The rate is samples per second over the same stretch.

It runs in a subprocess of its own (``python -m bench.recorder_memory N``, printing one JSON line), so
no memory or thread of another figure is counted.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import Figure

WARM = 10_000
GOAL_MB = 1.0  # "about zero": less than one byte per sample over a million samples


def realistic_sample() -> tuple[list[str], dict[str, object]]:
    """The sample columns and readings of the default NACS bench (4 supplies, 3 loads, the fixture)."""
    from instruments.drivers.chroma_63200a import Chroma63200A
    from instruments.drivers.ea_psi import EaPsi
    from instruments.drivers.nacs_fixture import NacsInletFixture
    from instruments.roles import FixtureReading, LoadReading, Rating, SupplyReading
    from rig.sampler import columns

    rating = Rating(1500, 60, 30000)
    supplies = ["psu_hv", "psu_hc1", "psu_hc2", "psu_hc3"]
    loads = ["load_hv", "load_hc1", "load_hc2"]
    # Driver objects only name the columns: nothing is opened.
    instruments: dict[str, object] = {n: EaPsi(n, "TCPIP::127.0.0.1::5025::SOCKET", rating) for n in supplies}
    instruments |= {n: Chroma63200A(n, "TCPIP::127.0.0.1::2101::SOCKET", rating) for n in loads}
    instruments["inlet"] = NacsInletFixture("inlet", "modbus+tcp://127.0.0.1:502")
    readings: dict[str, object] = {n: SupplyReading(8.02, 300.1 + i, True, None) for i, n in enumerate(supplies)}
    readings |= {n: LoadReading(7.61, 450.2, True, None) for n in loads}
    readings["inlet"] = FixtureReading(
        contact_temp_dc_plus=63.9, contact_temp_dc_minus=63.8, inlet_sensor_1=59.1, inlet_sensor_2=59.0,
        ambient_temp=25.0, sensor_open=frozenset(), cp_high=5.98, cp_low=-12.0, cp_duty=5.0, cp_frequency=1000.0,
        pp_voltage=1.53, iso_dc_plus_ohm=5e7, iso_dc_minus_ohm=5e7, inlet_voltage=7.64, inlet_current=900.3,
        drop_dc_plus_mv=54.0, drop_dc_minus_mv=54.1, contactors_closed=True, contactor_dc_plus_closed=True,
        contactor_dc_minus_closed=True, interlock_closed=True, estop_pressed=False, heartbeat_tripped=False,
        safety_chain_ok=True, path=2)
    return columns(instruments), readings  # type: ignore[arg-type]


def measure(samples: int) -> dict[str, float]:
    import psutil

    from rig.recorder import RunRecorder
    from rig.sampler import Sample

    cols, readings = realistic_sample()
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="bench-recorder-") as tmp:
        recorder = RunRecorder(Path(tmp) / "run", {"dut": "BENCH"}, cols)
        recorder.test = "test_plans/test_endurance.py::test_temperature_rise_at_rated_current"
        wall = time.time()
        rss_warm = float("nan")
        t_warm = time.perf_counter()
        peak = 0
        for k in range(samples):
            if k == WARM:
                gc.collect()
                rss_warm = process.memory_info().rss
                t_warm = time.perf_counter()
            elif k > WARM and k % 100_000 == 0:
                peak = max(peak, process.memory_info().rss)
            recorder.write_sample(Sample(k * 0.1, wall + k * 0.1, readings))  # type: ignore[arg-type]
        elapsed = time.perf_counter() - t_warm
        gc.collect()
        rss_end = process.memory_info().rss
        size = (Path(tmp) / "run" / "samples.csv").stat().st_size
        recorder.finish("passed")
    return {"samples": samples, "rss_warm_mb": rss_warm / 1e6, "rss_end_mb": rss_end / 1e6,
            "rss_growth_mb": (rss_end - rss_warm) / 1e6, "rss_peak_growth_mb": (max(peak, rss_end) - rss_warm) / 1e6,
            "samples_per_s": (samples - WARM) / elapsed, "csv_mb": size / 1e6, "columns": len(cols)}


def run(quick: bool) -> list[Figure]:
    samples = 100_000 if quick else 1_000_000
    proc = subprocess.run([sys.executable, "-m", "bench.recorder_memory", str(samples)], capture_output=True,
                          text=True, timeout=600, check=False, cwd=Path(__file__).resolve().parent.parent)
    nan = float("nan")
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        note = f"the recorder subprocess failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
        return [Figure("rss_growth_mb_1m_samples", nan, "MB", GOAL_MB, "<=", note),
                Figure("recorder_samples_per_s", nan, "samples/s", None, ">=", note)]
    scope = f"{samples:,} samples{' (QUICK)' if quick else ''}"
    note = (f"{scope} of {result['columns']} columns (4 supplies, 3 loads, fixture); "
            f"RSS {result['rss_warm_mb']:.1f} MB after {WARM:,}, {result['rss_end_mb']:.1f} MB at the end; "
            f"samples.csv {result['csv_mb']:.0f} MB")
    return [
        Figure("rss_growth_mb_1m_samples", result["rss_growth_mb"], "MB", GOAL_MB, "<=", note, result),
        Figure("recorder_samples_per_s", result["samples_per_s"], "samples/s", None, ">=",
               f"write_sample rate over the same {scope}, a flushed CSV row each (no goal)"),
    ]


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
