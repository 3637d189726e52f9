"""Firmware variants end to end (issue 12): simulated units whose firmware lacks or refuses a command the
manual lists, each run through `rig check` and a short plan (`tests/scenarios/plan_firmware.py`, run by
pytest in a subprocess against this process's simulated bench over real sockets, as `rig run --rig`
does), then the bench read back as a technician would.

A variant that lacks an optional feature must not stop the rig: `rig check` exits 0 and lists what is
missing and what covers for it, the plan passes, run.json records the capability. A rig config that
requires the feature turns the same bench into a one-line refusal (exit 3, `Rig.open` too).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruments.roles import Rating
from instruments.sim.bench import BenchSpec, SimInstrument, SimPath, SimulatedBench
from rig.cli import main
from rig.clock import Clock
from rig.errors import RigError
from rig.session import Rig
from tests.safe_bench import ROOT, read_state

pytestmark = pytest.mark.slow

RP7900 = ("keysight-rp7900", "RP7952A", Rating(80, 250, 10000))
IT6000C = ("itech-it6000c", "IT6015C-80-450", Rating(80, 450, 15000))
PSI = ("ea-psi", "PSI 11500-60 4U", Rating(1500, 60, 30000))
CHROMA = ("chroma-63200a", "63206A-150-600", Rating(150, 600, 6000))
ELR = ("ea-elr", "ELR 11500-60 4U", Rating(1500, 60, 30000))
IT8000 = ("itech-it8000", "IT8018-1500-60", Rating(1500, 60, 18000))


@dataclass(frozen=True)
class Variant:
    supply: tuple[str, str, Rating]
    load: tuple[str, str, Rating]
    unit: str  # "psu" or "load": the one playing the variant
    variants: tuple[str, ...]
    missing: str | None  # the capability `rig check` lists as missing, if any
    covers: str = ""  # words of what covers for it

    def spec(self) -> BenchSpec:
        def inst(name: str, kind: tuple[str, str, Rating]) -> SimInstrument:
            driver, model, rating = kind
            return SimInstrument(name, driver, model, rating, "p", self.variants if name == self.unit else ())

        return BenchSpec("firmware variant bench", (inst("psu", self.supply), inst("load", self.load)),
                         (SimPath("p", 1),))


VARIANTS = {
    "rp7900 without watchdog": Variant(RP7900, CHROMA, "psu", ("no-watchdog",), "watchdog",
                                       "the fixture heartbeat and inhibit chain are the backstop"),
    "rp7900 without FUNC?": Variant(RP7900, CHROMA, "psu", ("no-func-query",), "priority",
                                    "FUNC VOLT is sent once at open"),
    "rp7900 without status": Variant(RP7900, CHROMA, "psu", ("no-status",), "status", "measured V and I only"),
    "rp7900 clear re-enables": Variant(RP7900, CHROMA, "psu", ("clear-reenables",), None),
    "rp7900 refusing clear": Variant(RP7900, CHROMA, "psu", ("refuse-clear",), None),
    "it6000c without FUNC?": Variant(IT6000C, CHROMA, "psu", ("no-func-query",), "priority",
                                     "FUNC VOLT is sent once at open"),
    "it6000c without FUNC": Variant(IT6000C, CHROMA, "psu", ("no-func",), "priority", "voltage priority assumed"),
    "it6000c without status": Variant(IT6000C, CHROMA, "psu", ("no-status",), "status", "output read back off"),
    "it6000c without UVP states": Variant(IT6000C, CHROMA, "psu", ("no-undervoltage",), "undervoltage-protection",
                                          "below its UVP level may trip"),
    "it6000c load-style clear": Variant(IT6000C, CHROMA, "psu", ("load-style-clear",), None),
    "psi without status": Variant(PSI, ELR, "psu", ("no-status",), "status", "output read back off"),
    "elr without STAT:OPER": Variant(PSI, ELR, "load", ("no-oper-status",), "operation-status",
                                     "the fixture's safety chain names it"),
    "it8000 without status": Variant(PSI, IT8000, "load", ("no-status",), "status", "input read back off"),
    "chroma 63203 without the A": Variant(RP7900, ("chroma-63200a", "63203", Rating(150, 300, 3000)), "load", (),
                                          None),
}


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Variant:
    return VARIANTS[request.param]


@pytest.fixture
def variant_bench(variant: Variant) -> Iterator[SimulatedBench]:
    with SimulatedBench(spec=variant.spec(), clock=Clock(20.0)) as bench:
        yield bench


def write_config(bench: SimulatedBench, folder: Path, require: dict[str, list[str]] | None = None) -> Path:
    text = bench.config_toml()
    for name, keys in (require or {}).items():
        header = f"[instruments.{name}]\n"
        text = text.replace(header, header + f"require = {json.dumps(keys)}\n")
    path = folder / "variant.toml"
    path.write_text(text)
    return path


def run_plan(config: Path, results: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/scenarios/plan_firmware.py", "--rig", str(config), "--dut", "FW-1",
         "--results", str(results), "-q", "-p", "no:cacheprovider",
         "--rearm-after-trip"],  # a protection latched before the run is acknowledged (recorded)
        capture_output=True, text=True, cwd=ROOT, timeout=300)


def latch(bench: SimulatedBench, name: str, protection: str = "OVP") -> None:
    """A protection latched on the unit before the run (left by an earlier session)."""
    with bench.model.lock:
        bench.model.advance()
        bench.model.unit(name).tripped = protection
        bench.model.solve()


def test_check_lists_what_is_missing_then_a_short_plan_passes(variant: Variant, variant_bench: SimulatedBench,
                                                              tmp_path: Path) -> None:
    config = write_config(variant_bench, tmp_path)
    check = CliRunner().invoke(main, ["check", "--rig", str(config)])
    assert check.exit_code == 0, check.output
    assert "all 3 instruments identified" in check.stdout
    if variant.missing:
        assert f"{variant.unit}: no {variant.missing}: " in check.stdout
        assert variant.covers in check.stdout.replace("\n", " ")
    else:
        assert ": no " not in check.stdout
    if any("clear" in v for v in variant.variants):
        latch(variant_bench, variant.unit)
    results = tmp_path / "results"
    proc = run_plan(config, results)
    if "refuse-clear" in variant.variants:
        # Reported by name with the front-panel action, at each test's re-arm; the bench stays safe.
        assert proc.returncode != 0, proc.stdout
        assert ("cannot re-arm: psu: cannot clear its protection remotely (OUTP:PROT:CLE refused: clear the "
                "protection at the unit's front panel, then re-arm)") in proc.stdout
        assert read_state(config).safe
        variant_bench.model.clear_protection(variant_bench.model.unit("psu"))  # the operator, at the unit
        results = tmp_path / "results-after-front-panel"
        proc = run_plan(config, results)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    state = read_state(config)
    assert state.safe, state
    meta = json.loads(next(results.glob("*/run.json")).read_text())
    if variant.missing:
        assert meta["capabilities"][variant.unit][variant.missing]["present"] is False
    dialect = variant_bench.servers[variant.unit].dialect
    if "clear-reenables" in variant.variants:  # the clear switched the output back on: forced off, read back
        log = list(dialect.log)
        cleared = log.index("OUTP:PROT:CLE")
        assert log[cleared + 2] == "OUTP OFF" and log[cleared + 4].startswith("MEAS:VOLT?")


def test_a_required_capability_that_is_missing_is_one_line_at_check_and_open(tmp_path: Path) -> None:
    variant = VARIANTS["rp7900 without watchdog"]
    with SimulatedBench(spec=variant.spec(), clock=Clock(20.0)) as bench:
        config = write_config(bench, tmp_path, require={"psu": ["watchdog"]})
        check = CliRunner().invoke(main, ["check", "--rig", str(config)])
        assert check.exit_code == 3, check.output
        assert "psu: required capability 'watchdog' missing (OUTP:PROT:WDOG? refused: no I/O watchdog" in check.stdout
        assert "not ready: psu (lacking a required capability)" in check.stderr
        from rig.config import load_config

        with pytest.raises(RigError) as exc:
            Rig(load_config(config), clock=Clock(20.0)).open()
        assert "\n" not in str(exc.value)
        assert str(exc.value).startswith("psu: required capability 'watchdog' missing (OUTP:PROT:WDOG? refused")
        run = run_plan(config, tmp_path / "results")
        assert run.returncode != 0 and "psu: required capability 'watchdog' missing" in run.stdout + run.stderr
        assert read_state(config).safe


def test_a_required_capability_that_is_present_passes(tmp_path: Path) -> None:
    with SimulatedBench(spec=VARIANTS["rp7900 clear re-enables"].spec(), clock=Clock(20.0)) as bench:
        config = write_config(bench, tmp_path, require={"psu": ["watchdog", "status"]})
        check = CliRunner().invoke(main, ["check", "--rig", str(config)])
        assert check.exit_code == 0, check.output
