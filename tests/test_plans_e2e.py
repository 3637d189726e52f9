"""The NACS plans end to end, as a technician runs them: `rig run` in a subprocess against the simulated
bench, results read back from disk. Each plan area fails, with a clear reason, on its simulated fault."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def rig_run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "rig", "run", "--sim", "--plain", "--yes", "--results", str(results),
                           *args],
                          capture_output=True, text=True, timeout=300)
    folders = sorted(p for p in results.iterdir() if p.is_dir()) if results.exists() else []
    return proc, (folders[-1] if folders else results)


def measurements(folder: Path) -> list[dict[str, str]]:
    with open(folder / "measurements.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_whole_suite_on_the_simulated_bench(tmp_path: Path) -> None:
    proc, folder = rig_run(tmp_path, "--dut", "SIM-0001", "--tier", "1000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in folder.iterdir()} >= {"samples.csv", "measurements.csv", "run.json", "junit.xml"}
    rows = measurements(folder)
    assert rows and all(r["verdict"] == "PASS" for r in rows)
    assert all(r["low"] or r["high"] for r in rows), "every measurement carries a limit"
    assert all(r["source"] and r["confidence"] for r in rows), "every limit carries its source and confidence"
    names = {r["name"] for r in rows}
    for area in ("voltage.inlet_deviation[500V]", "voltage.inlet_deviation[1000V]",
                 "insulation.resistance[DC+ 500V]", "insulation.resistance[DC+ 1000V]",
                 "endurance.temperature_rise[DC+]", "contact.resistance[DC+ before]", "contact.resistance_rise[DC+]",
                 "cp.state_c.high", "cp.offered_current_error[86%]", "cp.digital_duty", "pp.latched",
                 "shutdown.current_time[estop]", "shutdown.voltage_time[interlock]"):
        assert area in names, area
    meta = json.loads((folder / "run.json").read_text())
    assert meta["finished"] is True and meta["outcome"] == "passed"
    assert meta["dut"] == {"serial": "SIM-0001", "tier_v": 1000, "rated_current_a": 900.0}
    assert set(meta["instruments"]) == {"psu_hv", "load_hv", "psu_hc1", "psu_hc2", "psu_hc3", "load_hc1",
                                        "load_hc2", "inlet"}
    assert all(i["identity"] for i in meta["instruments"].values())
    assert meta["capabilities"]["psu_hv"]["status"] == {"present": True, "detail": "STAT:QUES:COND?"}
    assert meta["capabilities"]["psu_hc1"]["priority"]["present"] is True
    with open(folder / "samples.csv", newline="") as f:
        samples = list(csv.DictReader(f))
    assert len(samples) > 100 and max(float(s["inlet.current_a"]) for s in samples) == pytest.approx(900, abs=0.5)
    assert "PASS: 28 passed" in proc.stdout and str(folder) in proc.stdout


def test_endurance_rise_matches_the_analytic_steady_state(tmp_path: Path) -> None:
    """900 A through 60 µΩ contacts with 0.8 K/W to ambient: I²R·Rth = 38.88 K at steady state."""
    proc, folder = rig_run(tmp_path, "test_plans/test_endurance.py", "--dut", "SIM-0002", "-k", "temperature")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rise = {r["name"]: float(r["value"]) for r in measurements(folder)}
    analytic = 900.0**2 * 60e-6 * 0.8
    assert rise["endurance.temperature_rise[DC+]"] == pytest.approx(analytic, rel=0.01)
    assert rise["endurance.temperature_rise[DC-]"] == pytest.approx(analytic, rel=0.01)


@pytest.mark.parametrize(("plan", "fault", "failing", "reason"), [
    ("test_endurance.py", "degraded_contact", "contact.resistance[DC+ before]", "over-temperature: DC+ contact"),
    ("test_control_pilot.py", "wrong_cp_resistor", "cp.state_c.high", "cp.state_c.high = 6.82 V outside 5.48 .. 6.49"),
    ("test_insulation.py", "low_insulation", "insulation.resistance[DC+ 500V]",
     "insulation.resistance[DC+ 500V] = 40000 Ω outside"),
    ("test_emergency_shutdown.py", "slow_contactor", "shutdown.current_time[estop]",
     "shutdown.current_time[estop] = 250 ms outside"),
])
def test_each_plan_area_fails_on_its_fault(tmp_path: Path, plan: str, fault: str, failing: str, reason: str) -> None:
    proc, folder = rig_run(tmp_path, f"test_plans/{plan}", "--dut", "FAULTY", "--sim-fault", fault)
    assert proc.returncode in (1, 3), proc.stdout + proc.stderr
    assert reason in proc.stdout, proc.stdout
    verdicts = {r["name"]: r["verdict"] for r in measurements(folder)}
    assert verdicts[failing] == "FAIL"
    meta = json.loads((folder / "run.json").read_text())
    assert meta["finished"] is True and meta["outcome"] in ("failed", "tripped")
    assert meta["rig"]["sim_faults"] == [fault]


def test_degraded_contact_trips_the_endurance_and_exits_3(tmp_path: Path) -> None:
    proc, folder = rig_run(tmp_path, "test_plans/test_endurance.py", "--dut", "HOT", "--sim-fault",
                           "degraded_contact", "-k", "temperature")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "safety trip: over-temperature: DC+ contact" in proc.stdout
    meta = json.loads((folder / "run.json").read_text())
    assert meta["outcome"] == "tripped" and "over-temperature" in meta["safety_trips"][0]["reason"]
    assert meta["final_safe_state"] and all(line.startswith("ok") for line in meta["final_safe_state"])


def test_a_500_v_dut_never_sees_the_1000_v_tier(tmp_path: Path) -> None:
    """The 1000 V cases are skipped before setup: the bench is not even opened, nothing is energised."""
    proc, folder = rig_run(tmp_path, "--dut", "SIM-500", "--tier", "500", "-k", "1000V")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    skipped = [line for line in proc.stdout.splitlines() if line.lstrip("[ 0123456789/]").startswith("skipped")]
    assert len(skipped) == 2 and all("DUT rated 500 V: the 1000 V tier is never applied to it" in s for s in skipped)
    assert not (folder / "samples.csv").exists()


def test_nothing_selected_is_a_usage_error(tmp_path: Path) -> None:
    proc, _ = rig_run(tmp_path, "--dut", "X", "-k", "no_such_test")
    assert proc.returncode == 2
    assert "no test matched the selection" in proc.stderr


def test_plain_pytest_works_on_one_test(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_plans/test_proximity.py", "--sim", "-q",
                           "-k", "latched", "--results", str(tmp_path), "-p", "no:cacheprovider"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
