"""`rig report`: what a lab lead reads in the report, checked on run folders written by the real recorder
(tests.run_factory) and on a real `rig run` against the simulated bench with a degraded contact."""

from __future__ import annotations

import html
import io
import json
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
    plots,
    print_summary,
    temperature_columns,
    temperature_limit,
    time_axis,
    verdicts,
    write_report,
)
from rig.report.run import junit_key, nodeid
from rig.report.series import phases, trip_level
from rig.report.verdicts import clean_message
from tests.run_factory import (
    AMBIENT,
    ENDURANCE,
    FIXTURE,
    INSULATION,
    LOADS_HC,
    LOADS_HV,
    PILOT,
    PROXIMITY,
    endurance_run,
    measurement,
    metadata,
    truncate_last_line,
)

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]
PYTHON_LITERAL = re.compile(r"\b(None|True|False|nan|inf)\b|\{'|\[\]|\d\.\d{7,}|\de[+-]\d")


# --- reading the page as a reader sees it ------------------------------------------------------------


def visible(fragment: str) -> str:
    """The text a browser shows: tags dropped, entities decoded, whitespace collapsed."""
    text = re.sub(r"<wbr>", "", fragment)
    text = re.sub(r"<(head|style|script)\b.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def section(page: str, heading: str) -> str:
    """The HTML from an <h2> up to the next one."""
    start = page.index(f"<h2>{heading}</h2>")
    end = page.find("<h2>", start + 4)
    return page[start:end if end > 0 else None]


def table_rows(fragment: str) -> list[str]:
    """Visible text of each body row of the first table in ``fragment``."""
    body = fragment[fragment.index("<tbody>"):fragment.index("</tbody>")]
    return [visible(r) for r in re.findall(r"<tr\b.*?</tr>", body, flags=re.S)]


def write_junit(folder: Path, outcomes: dict[str, tuple[str, str]]) -> None:
    """junit.xml as pytest writes it: node id -> (passed | failure | error | skipped, message)."""
    cases = []
    for node, (outcome, message) in outcomes.items():
        key = junit_key(node)
        classname, name = key.split("::")
        child = "" if outcome == "passed" else f'<{outcome} message="{html.escape(message)}">details</{outcome}>'
        cases.append(f'<testcase classname="{classname}" name="{html.escape(name)}" time="0.5">{child}</testcase>')
    (folder / "junit.xml").write_text('<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
                                      f'<testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>')


def summary_text(folder: Path) -> str:
    out = io.StringIO()
    print_summary(load_run(folder), Console(file=out, width=200))
    return out.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = endurance_run(tmp_path_factory.mktemp("runs") / "finished")
    write_junit(folder, {PILOT: ("passed", ""), PROXIMITY: ("passed", ""),
                         INSULATION: ("failure", "Failed: 1 measurement(s) out of limits"),
                         ENDURANCE: ("passed", "")})
    return folder


# --- a real run: `rig run` on the simulated bench with a degraded DC+ contact ------------------------

SELECTION = "pilot_state_voltage or shutdown or endurance"


def real_run(results: Path, *args: str) -> Path:
    """`rig run` on the simulated bench in a subprocess, as a technician runs it; the run folder."""
    proc = subprocess.run([sys.executable, "-m", "rig", "run", "--sim", "--plain", "--yes", "--results", str(results),
                           "--tier", "1000", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    folders = sorted(p for p in results.iterdir() if p.is_dir())
    assert folders, proc.stdout + proc.stderr
    return folders[-1]


@pytest.fixture(scope="module")
def degraded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pilot states pass; E-stop and interlock tests pass by tripping the rig on purpose; the contact
    resistance fails before and after endurance; the endurance hold trips on over-temperature before
    it measures anything."""
    return real_run(tmp_path_factory.mktemp("real"), "--dut", "REPORT-1", "--sim-fault", "degraded_contact",
                    "-k", SELECTION, "--rearm-after-trip")  # go on after the hold's trip (recorded)


@pytest.mark.slow
def test_a_passing_run_whose_tests_trip_on_purpose_shows_no_safety_trip(tmp_path: Path) -> None:
    folder = real_run(tmp_path, "--dut", "REPORT-2", "-k", "shutdown")
    proc = subprocess.run([sys.executable, "-m", "rig", "report", str(folder)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (folder / "report.html").read_text(encoding="utf-8")
    text = visible(page)
    assert "SAFETY TRIP" not in text and "tag unexpected" not in page
    assert visible(page[:page.index("<h2>")]).count("PASS 2 tests: 2 pass 2 expected trips") == 1
    assert [r.split(" ")[3] for r in table_rows(section(page, "Verdict per test"))] == ["PASS", "PASS"]
    assert "None: every test passed" in visible(section(page, "Failures and warnings"))


@pytest.fixture(scope="module")
def degraded_page(degraded: Path) -> str:
    return write_report(load_run(degraded)).html.read_text(encoding="utf-8")


def by_name(folder: Path) -> dict[str, object]:
    return {v.name: v for v in verdicts(load_run(folder))}


@pytest.mark.slow
def test_every_test_has_a_verdict_and_every_failure_a_reason(degraded: Path) -> None:
    run = load_run(degraded)
    rows = verdicts(run)
    assert [v.nodeid for v in rows] == run.meta["planned_tests"] and len(rows) == 11
    assert run.cases is not None and len(run.cases) == len(rows)
    got = {v.name: v for v in rows}
    before = got["test_contact_resistance_before_endurance"]
    assert before.verdict == "FAIL" and "contact.resistance[DC+ before] = 180 µΩ (limit ≤ 100 µΩ)" in before.reason
    hold = got["test_temperature_rise_at_rated_current"]
    assert hold.verdict == "FAIL" and hold.results == []  # tripped before measuring: still a row, with why
    assert hold.reason.startswith("unexpected safety trip: over-temperature: DC+ contact")
    assert all(v.verdict == "PASS" and v.reason == "" for v in rows if "pilot" in v.name or "shutdown" in v.name)


@pytest.mark.slow
def test_tests_that_error_before_measuring_are_rows_with_the_reason(tmp_path: Path) -> None:
    folder = real_run(tmp_path, "--dut", "REPORT-3", "--sim-fault", "estop", "-k", "pilot_state_voltage")
    run = load_run(folder)
    assert run.results == []  # nothing was measured: the old report said nothing about these tests
    rows = verdicts(run)  # the pre-flight refused the bench (E-stop pressed): every test a row, with why
    assert len(rows) == 6 and {v.verdict for v in rows} == {"NOT RUN"}
    assert all("outcome: refused" in v.reason for v in rows)
    page = write_report(run).html.read_text(encoding="utf-8")
    assert "E-stop" in visible(page[:page.index("<h2>Run, DUT")])
    shown = table_rows(section(page, "Verdict per test"))
    assert len(shown) == 6 and all(" NOT RUN " in r and "refused" in r for r in shown)


@pytest.mark.slow
def test_the_page_opens_with_the_verdict_table(degraded_page: str) -> None:
    assert degraded_page.index("<h2>Verdict per test</h2>") < degraded_page.index("<h2>Run, DUT, rig and profile</h2>")
    rows = table_rows(section(degraded_page, "Verdict per test"))
    assert len(rows) == 11
    assert rows[0].startswith("1 test_pilot_state_voltage[A] test_plans/test_control_pilot.py PASS cp.state_a.high = ")
    hold = next(r for r in rows if "test_temperature_rise_at_rated_current" in r)
    assert " FAIL " in hold and "over-temperature: DC+ contact" in hold
    failures = visible(section(degraded_page, "Failures and warnings"))
    for name in ("test_contact_resistance_before_endurance", "test_temperature_rise_at_rated_current",
                 "test_contact_resistance_after_endurance"):
        assert name in failures
    assert "shutdown" not in failures and "pilot" not in failures
    headline = visible(degraded_page[:degraded_page.index("<h2>")])
    assert "FAIL 11 tests: 8 pass, 3 fail" in headline


@pytest.mark.slow
def test_expected_trips_are_marked_expected_not_as_safety_trips(degraded: Path, degraded_page: str) -> None:
    recorded = json.loads((degraded / "run.json").read_text())["safety_trips"]
    assert {t["expected"] for t in recorded if "shutdown" in t["test"]} == {True}
    assert [t["expected"] for t in recorded if "endurance" in t["test"]] == [False]
    rows = table_rows(section(degraded_page, "Verdict per test"))
    for row in (r for r in rows if "test_emergency_shutdown[" in r):
        assert " PASS expected trip " in row and "SAFETY TRIP" not in row
    headline = visible(degraded_page[:degraded_page.index("<h2>")])
    assert "1 unexpected safety trip" in headline and "expected trips (caused on purpose by the test)" in headline
    events = table_rows(section(degraded_page, "Safety events"))
    assert len(events) == len(recorded)
    assert sum("SAFETY TRIP" in r for r in events) == 1 and sum("expected trip" in r for r in events) == len(events) - 1
    assert "expected trip: E-stop pressed" in summary_text(degraded)


@pytest.mark.slow
def test_a_simulated_bench_is_marked(degraded_page: str, finished: Path) -> None:
    top = degraded_page[:degraded_page.index("<h2>")]
    assert "SIMULATED BENCH" in visible(top) and "<title>[SIMULATED]" in top
    rig = visible(section(degraded_page, "Run, DUT, rig and profile"))
    assert "rig file SHA-256 none: a simulated bench has no rig file" in rig
    real = write_report(load_run(finished)).html.read_text(encoding="utf-8")
    assert "SIMULATED" not in visible(real)


@pytest.mark.slow
def test_values_are_si_scaled_and_free_of_python_literals(degraded_page: str) -> None:
    text = visible(degraded_page)
    for shown in ("contact.resistance[DC+ before] = 180 µΩ (limit ≤ 100 µΩ)", "trip current 990 A",
                  "trip voltage 1100 V", "trip temperature 90 °C", "cp.state_a.high = 12 V"):
        assert shown in text
    measured = {r.split(" ")[1]: r for r in table_rows(section(degraded_page, "Measurements"))}
    assert " 60 µΩ ≤ 100 µΩ PASS " in measured["contact.resistance[DC-"]
    assert " 180 µΩ ≤ 100 µΩ FAIL " in measured["contact.resistance[DC+"]
    assert PYTHON_LITERAL.findall(text) == []


@pytest.mark.slow
def test_plots_show_limits_trips_and_test_phases(degraded: Path) -> None:
    run = load_run(degraded)
    rows = verdicts(run)
    made = {p.name: p for p in plots(run, rows)}
    assert trip_level(run, "trip_temperature").value == 90  # type: ignore[union-attr]
    temperatures = made["temperatures.png"].figure.axes[0]
    labels = [line.get_label() for line in temperatures.get_lines()]
    assert "DC+ contact" in labels and "DC− contact" in labels and "rig trips at 90 °C" in labels
    assert any(label.startswith("rise limit") for label in labels)
    assert {"expected trip (test's own)", "SAFETY TRIP (unexpected)"} <= set(labels)
    assert "90 °C" in made["temperatures.png"].caption
    ran = [junit_key(p.test) for p in phases(run)]
    assert ran == [junit_key(v.nodeid) for v in rows if junit_key(v.nodeid) in ran]  # phases in the order run
    power = made["power.png"].figure
    voltage, current = power.axes[:2]
    assert voltage.get_yscale() == current.get_yscale() == "linear"
    assert "rig trips at 1100 V" in [line.get_label() for line in voltage.get_lines()]
    assert "rig trips at 990 A" in [line.get_label() for line in current.get_lines()]
    power.canvas.draw()
    for ax in (voltage, current, temperatures):
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1  # beside the plot, never over the data
    numbered = [t.get_text() for ax in temperatures.child_axes for t in ax.get_xticklabels()]
    failed = [str(v.number) for v in rows if v.verdict != "PASS" and junit_key(v.nodeid) in ran]
    assert numbered and set(failed) <= set(numbered)


@pytest.mark.slow
def test_cli_report_prints_verdicts_and_exits_1_on_a_failed_run(degraded: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rig", "report", str(degraded)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert "FAIL: 11 tests: 8 pass, 3 fail" in proc.stdout and "SIMULATED BENCH" in proc.stdout
    assert "unexpected safety trip: over-temperature" in proc.stdout and "report.html" in proc.stdout
    assert (degraded / "report.html").exists() and (degraded / "temperatures.png").read_bytes().startswith(PNG)


# --- recorded runs (tests.run_factory) ---------------------------------------------------------------


def test_load_reads_every_sample_and_measurement(finished: Path) -> None:
    run = load_run(finished)
    assert run.finished and run.outcome == "failed"
    assert len(run.samples) == 3 + 3 + 361  # pilot, insulation, one hour at 10 s
    assert len(run.results) == 16
    assert run.count("FAIL") == 2 and run.count("PASS") == 14
    assert run.notes == []
    assert [c.outcome for c in run.cases or []] == ["passed", "passed", "failed", "passed"]
    b = bench(run)
    assert b.fixtures == [FIXTURE] and b.supplies[0] == "psu_hv" and b.loads == [*LOADS_HV, *LOADS_HC]


def test_report_files_are_valid_self_contained_and_print_on_a4(finished: Path) -> None:
    run = load_run(finished)
    files = write_report(run)
    assert files.html == finished / "report.html"
    assert [p.name for p in files.images] == ["temperatures.png", "power.png", "pilot.png"]
    for image in files.images:
        assert image.parent == finished and image.read_bytes().startswith(PNG)
    page = files.html.read_text(encoding="utf-8")
    rows = table_rows(section(page, "Measurements"))
    assert len(rows) == len(run.results)
    for r, row in zip(run.results, rows, strict=True):  # in test order, which is the recording order here
        assert r.name in row and r.source in row and r.verdict in row
    assert page.count('src="data:image/png;base64,') == 3
    assert re.findall(r"""(?:src|href)\s*=\s*(?!["']?data:)""", page) == []
    assert "<link" not in page and "<script" not in page and "url(" not in page
    assert "@media print" in page and "size: A4" in page and "table-layout: fixed" in page
    text = visible(page)
    for detail in ("PSI 10200-420 4U s/n", "I/O watchdog 5 s", "NACS bench 1", "ab" * 32, run.meta["profile"]["sha256"],
                   "insulation.dc_minus = 45 kΩ (limit ≥ 100 kΩ)", "1.2 GΩ"):
        assert detail in text
    assert PYTHON_LITERAL.findall(text) == []
    assert "Unfinished run." not in text


def test_a_trip_in_a_test_that_passed_counts_as_expected_in_older_runs(tmp_path: Path) -> None:
    """Runs recorded before run.json flagged expected trips: a trip in a test that then passed was the
    test's own (an E-stop test); a trip in a failed test was not."""
    folder = endurance_run(tmp_path / "run", stop_at=60, trip="E-stop pressed")
    data = json.loads((folder / "run.json").read_text())
    data["safety_trips"] = [{"test": PILOT, "reason": "E-stop pressed", "time_s": 10.0},
                            {"test": ENDURANCE, "reason": "over-temperature: DC+ contact 121 °C > 120 °C",
                             "time_s": 50.0}]
    (folder / "run.json").write_text(json.dumps(data))
    write_junit(folder, {PILOT: ("passed", ""), PROXIMITY: ("passed", ""), INSULATION: ("passed", ""),
                         ENDURANCE: ("failure", "rig.errors.SafetyTrip: safety trip: over-temperature: DC+ contact "
                                                "121 °C > 120 °C")})
    got = {v.nodeid: v for v in verdicts(load_run(folder))}
    assert [t.expected for t in got[PILOT].trips] == [True] and got[PILOT].verdict == "PASS"
    assert [t.expected for t in got[ENDURANCE].trips] == [False]
    assert got[ENDURANCE].reason == "unexpected safety trip: over-temperature: DC+ contact 121 °C > 120 °C"


def test_calibration_dates_are_a_column_with_their_status(tmp_path: Path) -> None:
    meta = metadata()
    instruments = meta["instruments"]
    instruments["psu_hv"]["calibration_due"] = "2027-06-30"
    instruments["load_hv"]["calibration_due"] = "2026-11-01"  # the run started 2026-11-28
    instruments[FIXTURE]["calibration_due"] = "2026-12-10"
    folder = endurance_run(tmp_path / "run", stop_at=60, instruments=instruments, calibration_override=True)
    page = write_report(load_run(folder)).html.read_text(encoding="utf-8")
    rows = {r.split(" ", 1)[0]: r for r in table_rows(section(page, "Instruments and calibration"))}
    assert "2027-06-30: valid" in rows["psu_hv"]
    assert "2026-11-01: EXPIRED 27 days before the run" in rows["load_hv"]
    assert "2026-12-10: due 12 days after the run" in rows[FIXTURE]
    assert "not recorded in the rig file" in rows["psu_hc1"]
    assert "CALIBRATION OVERRIDE the run was started with --allow-expired-calibration: calibration of load_hv had " \
        "expired" in visible(section(page, "Failures and warnings"))
    assert "calibration expired: load_hv" in visible(page[:page.index("<h2>")])


def test_instrument_capabilities_are_shown_when_recorded(tmp_path: Path) -> None:
    meta = metadata()
    meta["instruments"]["psu_hv"]["capabilities"] = {"max_voltage_v": 2000.0, "readback_ovp": True}
    folder = endurance_run(tmp_path / "run", stop_at=60, instruments=meta["instruments"],
                           capabilities={"load_hv": {"modes": ["CC", "CV"], "slew": None}})
    text = visible(section(write_report(load_run(folder)).html.read_text(encoding="utf-8"),
                           "Instruments and calibration"))
    assert "capabilities: max_voltage_v: 2000; readback_ovp: yes" in text
    assert "capabilities: modes: CC, CV; slew: —" in text


def test_unknown_run_json_fields_are_listed_readably(tmp_path: Path) -> None:
    folder = endurance_run(tmp_path / "run", stop_at=60, database={"url": None, "synced": True, "rows": 12.0})
    text = visible(section(write_report(load_run(folder)).html.read_text(encoding="utf-8"), "Other records"))
    assert "database url: —; synced: yes; rows: 12" in text


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


def test_an_interrupted_run_names_the_test_it_stopped_in_and_the_tests_never_run(tmp_path: Path) -> None:
    later = "test_plans/test_voltage_tiers.py::test_tier_voltage[500V]"
    folder = endurance_run(tmp_path / "killed", finish=False, stop_at=2400,
                           planned_tests=[PILOT, PROXIMITY, INSULATION, ENDURANCE, later])
    truncate_last_line(folder / "samples.csv")
    run = load_run(folder)
    assert not run.finished and run.outcome == "running" and run.cases is None
    assert any("last line incomplete" in note for note in run.notes)
    assert len(run.samples) == 3 + 3 + 240  # the half-written 241st hold sample is dropped
    got = {v.nodeid: v for v in verdicts(run)}
    assert list(got) == [PILOT, PROXIMITY, INSULATION, ENDURANCE, later]
    assert got[ENDURANCE].verdict == "INTERRUPTED" and "stopped during this test" in got[ENDURANCE].reason
    assert got[later].verdict == "NOT RUN" and "not reached" in got[later].reason
    assert got[INSULATION].verdict == "FAIL" and "45 kΩ" in got[INSULATION].reason  # from its measurement
    assert got[PROXIMITY].verdict == "NO VERDICT"  # no junit.xml: its measurements passed, its end is unknown
    files = write_report(run)
    page = files.html.read_text(encoding="utf-8")
    top = visible(page[:page.index("<h2>")])
    assert top.startswith("Inlet test report: INLET-42") and "Unfinished run." in top
    assert "FAIL 5 tests: 2 fail, 1 no verdict, 1 interrupted, 1 not run" in top  # failed measurements: no pass
    assert "last line incomplete" in visible(section(page, "Reader notes"))
    assert "NOT RUN — 1 test not reached (the run ended first, outcome: running): #5 test_tier_voltage[500V]" in \
        visible(section(page, "Failures and warnings"))
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
    page = files.html.read_text(encoding="utf-8")
    assert "No measurements recorded" in page and "No tests recorded" in page
    assert "INCOMPLETE" in visible(page[:page.index("<h2>")])


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
    page = write_report(load_run(folder)).html.read_text(encoding="utf-8")
    assert "<script" not in page and "<b>freq" not in page
    assert "cp.<b>freq</b> at 10 s 1000 Hz" in visible(page) and 'Inlet test report: DUT "<1>" & co' in visible(page)


def test_summary_lists_who_what_and_a_verdict_per_test(finished: Path) -> None:
    text = summary_text(finished)
    assert "FAIL: 4 tests: 3 pass, 1 fail" in text
    for field in ("INLET-42", "J. Tech", "NACS bench 1", "failed", "test_insulation[1000V]",
                  "insulation.dc_minus = 45 kΩ (limit ≥ 100 kΩ)", "14 of 16 measurements passed"):
        assert field in text
    assert "\x1b[" not in text  # not a terminal: no colour codes


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a run folder"):
        load_run(tmp_path)


@pytest.mark.parametrize(("classname", "name", "node"), [
    ("test_plans.test_endurance", "test_rise[900A]", "test_plans/test_endurance.py::test_rise[900A]"),
    ("test_plans.test_x.TestGroup", "test_y[a.b]", "test_plans/test_x.py::TestGroup::test_y[a.b]"),
    ("test_top", "test_z", "test_top.py::test_z"),
])
def test_junit_names_map_to_node_ids(classname: str, name: str, node: str) -> None:
    assert nodeid(classname, name) == node
    assert junit_key(node) == f"{classname}::{name}"


@pytest.mark.parametrize(("message", "reason"), [
    ("rig.errors.SafetyTrip: safety trip: over-temperature: DC+ contact 92.1 °C > 90 °C",
     "unexpected safety trip: over-temperature: DC+ contact 92.1 °C > 90 °C"),
    ('failed on setup with "rig.errors.RigError: E-stop still pressed"',
     "error in setup: RigError: E-stop still pressed"),
    ("instruments.errors.InstrumentFault: psu_hv: no reply to MEAS:VOLT?",
     "InstrumentFault: psu_hv: no reply to MEAS:VOLT?"),
    ("AssertionError: test current not flowing\nassert 0.0 == 900 ± 18", "test current not flowing"),
    ("Failed: operator declined: Enclosure closed?", "operator declined: Enclosure closed?"),
    ("Failed: 1 measurement(s) out of limits:\n  x = 0.00018 Ω outside -inf .. 0.0001 Ω",
     "1 measurement(s) out of limits: x = 180 µΩ outside -inf .. 100 µΩ"),
])
def test_pytest_messages_become_one_readable_reason(message: str, reason: str) -> None:
    assert clean_message(message) == reason


@pytest.mark.parametrize(("span", "unit"), [(60, "s"), (3660, "min"), (11 * 3600, "h")])
def test_time_axis_unit(span: float, unit: str) -> None:
    assert time_axis(span)[1] == unit


def test_importing_the_report_stays_light() -> None:
    code = "import sys, rig.report; print(sorted(m for m in ('matplotlib', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
