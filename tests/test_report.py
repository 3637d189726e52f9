"""`rig report`: run folders written by the real recorder, read back into a summary, plots and HTML."""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from rig.config import ConfigError
from rig.recorder import RunRecorder
from rig.report import (
    bench,
    load_run,
    print_summary,
    temperature_columns,
    temperature_limit,
    time_axis,
    write_report,
)
from tests.run_factory import (
    AMBIENT,
    ENDURANCE,
    FIXTURE,
    LOADS_HC,
    LOADS_HV,
    endurance_run,
    measurement,
    metadata,
    truncate_last_line,
    unfinished_run,
)

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return endurance_run(tmp_path_factory.mktemp("runs") / "finished")


def summary_text(folder: Path) -> str:
    out = io.StringIO()
    print_summary(load_run(folder), Console(file=out, width=200))
    return out.getvalue()


def test_load_reads_every_sample_and_measurement(finished: Path) -> None:
    run = load_run(finished)
    assert run.finished and run.outcome == "failed"
    assert len(run.samples) == 3 + 3 + 361  # pilot, insulation, one hour at 10 s
    assert len(run.results) == 16
    assert run.count("FAIL") == 2 and run.count("PASS") == 14
    assert run.notes == []
    b = bench(run)
    assert b.fixtures == [FIXTURE] and b.supplies[0] == "psu_hv" and b.loads == [*LOADS_HV, *LOADS_HC]


def test_report_files_are_valid_and_self_contained(finished: Path) -> None:
    run = load_run(finished)
    files = write_report(run)
    assert files.html == finished / "report.html"
    assert [p.name for p in files.images] == ["temperatures.png", "power.png", "pilot.png"]
    for image in files.images:
        assert image.parent == finished and image.read_bytes().startswith(PNG)
    text = files.html.read_text(encoding="utf-8")
    for r in run.results:
        assert f"<td>{html.escape(r.name)}</td>" in text
        assert html.escape(r.source) in text
    assert text.count('<tr class="fail">') == 2
    assert text.count('src="data:image/png;base64,') == 3
    assert re.findall(r"""(?:src|href)\s*=\s*(?!["']?data:)""", text) == []
    assert "<link" not in text and "<script" not in text and "url(" not in text
    assert "2 FAIL" in text and "UNFINISHED" not in text
    for detail in ("PSI 10200-420 4U s/n", "I/O watchdog 5 s", "nacs-rig", "ab" * 32, run.meta["profile"]["sha256"]):
        assert detail in text


def test_limit_line_is_ambient_plus_the_measured_rise_limit(finished: Path) -> None:
    limit = temperature_limit(load_run(finished))
    assert limit is not None
    assert limit.ambient_c == pytest.approx(AMBIENT)
    assert limit.rise_k == 50
    assert limit.value_c == pytest.approx(AMBIENT + 50)
    assert "endurance.temperature_rise" in limit.source and "50 K above ambient" in limit.source


def test_the_hottest_contact_settles_under_the_limit_line(finished: Path) -> None:
    run = load_run(finished)
    limit = temperature_limit(run)
    assert limit is not None
    dc_plus = [v for v, t in zip(run.samples.numbers(f"{FIXTURE}.temp_dc_plus_c"),
                                 run.samples.text["test"], strict=True) if t == ENDURANCE]
    assert max(dc_plus) < limit.value_c
    assert abs(dc_plus[-1] - dc_plus[-31]) < 1.0  # steady state: < 1 K over the last 5 minutes


def test_limit_from_run_json_when_no_rise_was_measured(tmp_path: Path) -> None:
    folder = endurance_run(tmp_path / "run", stop_at=600, profile={},
                           limits={"endurance.temperature_rise": {"high": 45, "source": "lab override"}})
    limit = temperature_limit(load_run(folder))
    assert limit is not None and limit.value_c == pytest.approx(AMBIENT + 45)
    assert "run.json" in limit.source and "lab override" in limit.source


def test_a_changed_profile_file_is_not_trusted(tmp_path: Path) -> None:
    folder = endurance_run(tmp_path / "run", stop_at=600, profile={"path": str(ROOT / "rigs" / "example-lab.toml"),
                                                                    "sha256": "0" * 64})
    run = load_run(folder)
    assert temperature_limit(run) is None
    files = write_report(run)
    assert files.images[0].name == "temperatures.png"
    assert "No limit line" in files.html.read_text(encoding="utf-8")


def test_unfinished_truncated_run_reports_with_a_banner(tmp_path: Path) -> None:
    folder = unfinished_run(tmp_path / "killed")
    assert not (folder / "samples.csv").read_bytes().endswith(b"\n")
    run = load_run(folder)
    assert not run.finished and run.outcome == "running"
    assert any("last line incomplete" in note for note in run.notes)
    assert len(run.samples) == 3 + 3 + 240  # the half-written 241st hold sample is dropped
    files = write_report(run)
    text = files.html.read_text(encoding="utf-8")
    assert "UNFINISHED RUN" in text and "last line incomplete" in text
    assert len(files.images) == 3
    limit = temperature_limit(run)  # no rise measured yet: the profile named in run.json (hash checked)
    assert limit is not None and limit.value_c == pytest.approx(AMBIENT + 50) and "j3400.toml" in limit.source
    assert "RUN DID NOT FINISH" in summary_text(folder)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.99])
def test_any_cut_of_the_last_line_reads(tmp_path: Path, keep: float) -> None:
    folder = endurance_run(tmp_path / "run", finish=False, stop_at=100)
    truncate_last_line(folder / "measurements.csv", keep)
    truncate_last_line(folder / "samples.csv", keep)
    run = load_run(folder)
    assert len(run.samples) == 6 + 10 and len(run.results) == 13


def test_a_run_that_just_started_has_no_rows(tmp_path: Path) -> None:
    RunRecorder(tmp_path / "new", metadata(), ["inlet.temp_dc_plus_c"]).finish("interrupted")
    files = write_report(load_run(tmp_path / "new"))
    assert files.images == []
    assert "No measurements recorded" in files.html.read_text(encoding="utf-8")


def test_missing_columns_do_not_crash(tmp_path: Path) -> None:
    drop = (f"{FIXTURE}.temp_ambient_c", f"{FIXTURE}.temp_inlet_2_c", f"{FIXTURE}.voltage_v", *LOADS_HC, *LOADS_HV)
    folder = endurance_run(tmp_path / "run", drop=drop)
    run = load_run(folder)
    assert [label for _, label in temperature_columns(run)] == ["DC+ contact", "DC− contact", "inlet sensor 1"]
    assert bench(run).loads == []
    assert temperature_limit(run) is None  # no ambient: no line, rather than a wrong one
    files = write_report(run)
    assert [p.name for p in files.images] == ["temperatures.png", "power.png", "pilot.png"]


def test_a_rig_without_fixture_still_reports_power(tmp_path: Path) -> None:
    folder = endurance_run(tmp_path / "run", drop=(FIXTURE,))
    run = load_run(folder)
    assert bench(run).fixtures == [] and temperature_columns(run) == []
    assert [p.name for p in write_report(run).images] == ["power.png", "pilot.png"]


def test_strings_are_escaped_in_html(tmp_path: Path) -> None:
    evil = measurement("cp.frequency", 1000.0, "<script>alert(1)</script>", 10.0, name="cp.<b>freq</b>")
    folder = endurance_run(tmp_path / "run", extra_measurements=[evil], dut='DUT "<1>" & co', stop_at=60)
    text = write_report(load_run(folder)).html.read_text(encoding="utf-8")
    assert "<script" not in text and "<b>freq" not in text
    assert "cp.&lt;b&gt;freq&lt;/b&gt;" in text and "DUT &quot;&lt;1&gt;&quot; &amp; co" in text


def test_safety_trip_shows_in_html_and_summary(tmp_path: Path) -> None:
    reason = "over-temperature: DC+ contact 121.3 °C > 120 °C (rig config safety.abort_temperature)"
    folder = endurance_run(tmp_path / "run", trip=reason)
    assert "SAFETY TRIP" in write_report(load_run(folder)).html.read_text(encoding="utf-8")
    assert reason in summary_text(folder)


def test_summary_lists_header_measurements_and_counts(finished: Path) -> None:
    text = summary_text(finished)
    assert "14 PASS, 2 FAIL" in text
    for field in ("INLET-42", "1000 V", "J. Tech", "NACS bench 1", "failed", "insulation.dc_minus", "<= 50 K"):
        assert field in text
    assert "\x1b[" not in text  # not a terminal: no colour codes


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a run folder"):
        load_run(tmp_path)


@pytest.mark.parametrize(("span", "unit"), [(60, "s"), (3660, "min"), (11 * 3600, "h")])
def test_time_axis_unit(span: float, unit: str) -> None:
    assert time_axis(span)[1] == unit


def test_importing_the_report_stays_light() -> None:
    code = "import sys, rig.report; print(sorted(m for m in ('matplotlib', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
