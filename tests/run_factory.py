"""Realistic run folders for tests, written by the real ``RunRecorder`` from real ``Sample`` objects.

    folder = endurance_run(tmp_path / "run")                       # finished, 1 h at 900 A
    folder = endurance_run(tmp_path / "run", finish=False, stop_at=2400)
    truncate_last_line(folder / "samples.csv")                     # as a kill -9 mid-write leaves it

The run: CP/PP checks, insulation at 1000 V (DC- fails at 45 kΩ), then an endurance hold of 900 A for
``hold_s`` rig seconds with the DC+ contact following 25 + 38.9 (1 - exp(-t / 300)) °C. Limits, sources
and confidence come from the real profile, so verdicts are what a plan would record.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import random
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from instruments.roles import FixtureReading, LoadReading, SupplyReading
from rig.profile import load_profile
from rig.recorder import Measurement, RunRecorder
from rig.sampler import Sample, row

PROFILE = load_profile()
START_WALL = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC).timestamp()
T0 = 5.0  # rig seconds on the clock when the first sample is taken
AMBIENT = 25.0
RISE_DC_PLUS = 38.9  # K at steady state
TAU = 300.0  # s

PILOT = "test_plans/test_pilot.py::test_cp_states"
PROXIMITY = "test_plans/test_pilot.py::test_pp_states"
INSULATION = "test_plans/test_insulation.py::test_insulation[1000V]"
ENDURANCE = "test_plans/test_endurance.py::test_temperature_rise[900A]"

SUPPLIES_HV = ("psu_hv",)
SUPPLIES_HC = ("psu_hc1", "psu_hc2", "psu_hc3")
LOADS_HV = ("load_hv",)
LOADS_HC = ("load_hc1", "load_hc2")
FIXTURE = "inlet"

IDLE = FixtureReading(
    contact_temp_dc_plus=AMBIENT, contact_temp_dc_minus=AMBIENT, inlet_sensor_1=AMBIENT, inlet_sensor_2=AMBIENT,
    ambient_temp=AMBIENT, sensor_open=frozenset(), cp_high=12.0, cp_low=-12.0, cp_duty=100.0, cp_frequency=0.0,
    pp_voltage=4.46, iso_dc_plus_ohm=1.2e9, iso_dc_minus_ohm=1.2e9, inlet_voltage=0.0, inlet_current=0.0,
    drop_dc_plus_mv=0.0, drop_dc_minus_mv=0.0, contactors_closed=False, contactor_dc_plus_closed=False,
    contactor_dc_minus_closed=False, interlock_closed=True, estop_pressed=False, heartbeat_tripped=False,
    safety_chain_ok=True, path=0,
)


def contact_temperature(t_on: float, rise: float = RISE_DC_PLUS, tau: float = TAU) -> float:
    """First-order heating: ambient + rise (1 - exp(-t / tau)), t seconds into the hold."""
    return AMBIENT + rise * (1 - math.exp(-max(0.0, t_on) / tau))


def bench_sample(time_s: float, fixture: FixtureReading, supplies: dict[str, SupplyReading],
                 loads: dict[str, LoadReading]) -> Sample:
    """One poll of the example lab's bench (rigs/example-lab.toml): every unit, idle unless given."""
    readings: dict[str, Any] = {n: supplies.get(n, SupplyReading(0.0, 0.0, False)) for n in SUPPLIES_HV + SUPPLIES_HC}
    readings |= {n: loads.get(n, LoadReading(0.0, 0.0, False)) for n in LOADS_HV + LOADS_HC}
    readings[FIXTURE] = fixture
    return Sample(time_s, START_WALL + time_s - T0, readings)


def idle_sample(time_s: float) -> Sample:
    return bench_sample(time_s, IDLE, {}, {})


def insulation_sample(time_s: float) -> Sample:
    fixture = replace(IDLE, inlet_voltage=999.2, iso_dc_minus_ohm=45e3, contactors_closed=True, path=1)
    return bench_sample(time_s, fixture, {"psu_hv": SupplyReading(1000.1, 0.02, True)},
                        {"load_hv": LoadReading(999.0, 0.0, False)})


def endurance_sample(time_s: float, t_on: float, noise: random.Random) -> Sample:
    """A sample ``t_on`` seconds into the 900 A hold (8 V source, cabling drop, three supplies, two loads)."""
    current = 900.0 + noise.uniform(-1.5, 1.5)
    fixture = replace(
        IDLE, inlet_voltage=7.71, inlet_current=current, contactors_closed=True, contactor_dc_plus_closed=True,
        contactor_dc_minus_closed=True, path=2, cp_high=6.0, cp_duty=5.0, cp_frequency=1000.0, pp_voltage=1.51,
        contact_temp_dc_plus=contact_temperature(t_on) + noise.gauss(0, 0.05),
        contact_temp_dc_minus=contact_temperature(t_on, rise=36.2) + noise.gauss(0, 0.05),
        inlet_sensor_1=contact_temperature(t_on, rise=27.0, tau=420) + noise.gauss(0, 0.05),
        inlet_sensor_2=contact_temperature(t_on, rise=25.5, tau=420) + noise.gauss(0, 0.05),
        drop_dc_plus_mv=52.0, drop_dc_minus_mv=50.5,
    )
    supplies = {n: SupplyReading(8.0, current / 3, True) for n in SUPPLIES_HC}
    loads = {n: LoadReading(7.42, current / 2, True) for n in LOADS_HC}
    return bench_sample(time_s, fixture, supplies, loads)


def measurement(key: str, value: float, test: str, time_s: float, name: str | None = None) -> Measurement:
    """A measurement checked against the real profile's limit ``key`` (its window, source, confidence)."""
    limit = PROFILE.limit(key)
    return Measurement(test, name or key, value, limit.unit, limit.low, limit.high, limit.verdict(value), key,
                       limit.source, limit.confidence, time_s, START_WALL + time_s - T0)


def metadata(dut: str = "INLET-42", **extra: Any) -> dict[str, Any]:
    """run.json as a plan runner would start it: DUT, rig, profile, instruments, software."""
    identities = {"ea-psi": ("EA Elektro-Automatik", "PSI 10200-420 4U"),
                  "chroma-63200a": ("Chroma", "63206A-150-600"), "nacs-fixture": ("Lab", "NACS inlet fixture v2")}
    roles = {n: ("supply", "ea-psi") for n in SUPPLIES_HV + SUPPLIES_HC}
    roles |= {n: ("load", "chroma-63200a") for n in LOADS_HV + LOADS_HC}
    roles[FIXTURE] = ("fixture", "nacs-fixture")
    instruments = {
        name: {"role": role, "driver": driver,
               "identity": f"{identities[driver][0]} {identities[driver][1]} s/n {1000 + i} fw 3.02",
               "watchdog": "heartbeat 2 s" if role == "fixture" else "I/O watchdog 5 s"}
        for i, (name, (role, driver)) in enumerate(roles.items())
    }
    return {
        "dut": dut, "tier": 1000, "rated_current": 900, "operator": "J. Tech",
        "rig": {"name": "NACS bench 1", "file": "rigs/example-lab.toml", "sha256": "ab" * 32},
        "profile": {"name": PROFILE.name, "version": PROFILE.version, "path": PROFILE.path, "sha256": PROFILE.sha256},
        "instruments": instruments,
        "software": {"python": platform.python_version(), "nacs-rig": "0.1.0", "pyvisa": "1.14.1"},
        "started": dt.datetime.fromtimestamp(START_WALL, dt.UTC).isoformat(),
        "prompts": [], "overrides": [],
        **extra,
    }


def _columns(drop: Iterable[str]) -> list[str]:
    """The sampler's columns for this bench (``rig.sampler.row`` order), minus dropped columns or instruments."""
    dropped = tuple(drop)
    return [c for c in row(idle_sample(T0)) if not any(c == d or c.startswith(d + ".") for d in dropped)]


def endurance_run(folder: Path, *, finish: bool = True, hold_s: float = 3600.0, period: float = 10.0,
                  stop_at: float | None = None, drop: Iterable[str] = (), trip: str | None = None,
                  extra_measurements: Iterable[Measurement] = (), **meta: Any) -> Path:
    """Record the whole run into ``folder``. ``stop_at`` (rig s into the hold) ends the recording early,
    ``finish=False`` leaves it as a killed process would (run.json still says running)."""
    recorder = RunRecorder(folder, metadata(**meta), _columns(drop))
    t = T0
    recorder.test = PILOT
    for _ in range(3):
        recorder.write_sample(idle_sample(t))
        t += period
    for key, value in (("cp.state_a.high", 11.98), ("cp.state_b.high", 8.97), ("cp.state_c.high", 6.02),
                       ("cp.state_d.high", 2.55), ("cp.state_e.high", 0.02), ("cp.state_f.high", -11.97),
                       ("cp.pwm_low", -11.96), ("cp.frequency", 1000.4), ("cp.duty_error", 0.12)):
        recorder.write_measurement(measurement(key, value, PILOT, t))
    recorder.test = PROXIMITY
    for key, value in (("pp.unplugged", 4.45), ("pp.latched", 1.50), ("pp.button_pressed", 2.77)):
        recorder.write_measurement(measurement(key, value, PROXIMITY, t))
    recorder.test = INSULATION
    for _ in range(3):
        recorder.write_sample(insulation_sample(t))
        t += period
    recorder.write_measurement(measurement("insulation.resistance", 1.2e9, INSULATION, t, "insulation.dc_plus"))
    recorder.write_measurement(measurement("insulation.resistance", 45e3, INSULATION, t, "insulation.dc_minus"))
    for m in extra_measurements:
        recorder.write_measurement(m)
    recorder.test = ENDURANCE
    noise = random.Random(3400)
    start, end = t, t + (hold_s if stop_at is None else min(stop_at, hold_s))
    while t <= end + 1e-9:
        recorder.write_sample(endurance_sample(t, t - start, noise))
        t += period
    if stop_at is None or stop_at >= hold_s:
        rise = contact_temperature(hold_s) - AMBIENT
        name = "temperature_rise.dc_plus"
        recorder.write_measurement(measurement("endurance.temperature_rise", rise, ENDURANCE, t, name))
        recorder.write_measurement(measurement("endurance.current_regulation", 0.04, ENDURANCE, t))
    if trip is not None:
        recorder.append("safety_trips", {"time_s": round(t, 3), "reason": trip})
    recorder.test = ""
    if finish:
        recorder.finish("safety trip" if trip else "failed")
    else:
        # A killed process closes nothing; the files are closed here only so the test process does not
        # leak descriptors. Every row was already flushed, exactly as it would be on disk after kill -9.
        recorder._samples_file.close()
        recorder._measurements_file.close()
    return folder


def truncate_last_line(path: Path, keep: float = 0.5) -> str:
    """Cut the file's last line to ``keep`` of its length, without its newline; returns the cut line."""
    data = path.read_bytes()
    start = data.rstrip(b"\r\n").rfind(b"\n") + 1
    last = data[start:].rstrip(b"\r\n")
    cut = last[: max(1, int(len(last) * keep))]
    path.write_bytes(data[:start] + cut)
    return cut.decode("utf-8")


def unfinished_run(folder: Path, stop_at: float = 2400.0) -> Path:
    """An endurance run killed 40 min into the hold, mid-way through writing a sample row."""
    endurance_run(folder, finish=False, stop_at=stop_at)
    truncate_last_line(folder / "samples.csv")
    return folder
