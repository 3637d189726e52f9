"""The lab dashboard in a real browser: Playwright driving the system's Chromium (Debian's package;
``.ci/run`` installs it; Playwright's own browser download is never used) against ``rig serve`` in its own
process, while ``rig run --sim`` runs a plan in another process that holds the bench until the test
releases it. The Lab page must show the live current and temperature change without a reload (server-
sent events), the run must appear in Runs with its verdicts when it ends, the DUT and Trend pages must
follow from it, and a crafted ``<script>`` DUT serial must stay text.

Set ``RIG_WEB_SCREENSHOTS=DIR`` to keep a screenshot of each page at 1400 px and at a tablet's 820 px.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.db.store import Database
from rig.db.sync import run_folders, sync
from tests.run_factory import endurance_run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
XSS = "<script>alert(1)</script>"
WAIT_MS = 180_000  # generous: a busy two-core machine; every wait ends as soon as its condition holds

HOLD_PLAN = '''
import os
import time
from pathlib import Path

from instruments.roles import LoadMode
from rig.steps import energise, hold

RELEASE = Path(os.environ["RIG_TEST_RELEASE"])


def test_hold_until_released(rig, profile, check):
    """Alternate the load between two currents, 30 rig-seconds each, until the browser test releases it."""
    path = energise(rig, profile.value("endurance.source_voltage"), 300.0)
    ambient = rig.sample().fixture.ambient_temp
    deadline = time.monotonic() + 600
    level = 0
    while not RELEASE.exists():
        assert time.monotonic() < deadline, "the browser test never released the hold"
        amps = (150.0, 300.0)[level % 2]
        rig.sink(path, LoadMode.CC, amps)
        for _ in hold(rig, 30, every=5, label=f"hold at {amps:g} A"):
            pass
        level += 1
    fixture = rig.sample().fixture
    check("endurance.temperature_rise", fixture.contact_temp_dc_plus - ambient, name="temperature_rise[DC+]")
'''

SEEN_CHANGES = """() => {
  const seen = window.__seen || (window.__seen = {amps: new Set(), temps: new Set()});
  const bench = [...document.querySelectorAll('section.bench')]
    .find(s => (s.querySelector('a.dut') || {}).textContent === 'WEB-1');
  if (!bench) { return false; }
  const amps = bench.querySelector('.inlet-a'), temp = bench.querySelector('.hottest-c');
  if (amps && amps.textContent !== '—') seen.amps.add(amps.textContent);
  if (temp && temp.textContent !== '—') seen.temps.add(temp.textContent);
  const near = amps => [...seen.amps].some(text => Math.abs(parseFloat(text) - amps) < 3);
  return near(150) && near(300) && seen.temps.size >= 2;  // both load levels seen, the temperature moved
}"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A results database holding one old run of a crafted DUT serial, and ``rig serve`` on it."""
    old = tmp_path / "old"
    endurance_run(old / "20261128-093000-XSS", dut=XSS)
    url = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    db = Database(url)
    try:
        sync(db, run_folders(old))
        with db.engine.begin() as c:  # the rest of the lab: other benches beside the one the test runs on
            db.put_bench(c, {"bench_key": "bench-2", "rig_name": "NACS bench 2", "owner": "A. Lead", "host": "pc2",
                             "state": "free", "outcome": "failed", "dut_serial": XSS, "run_id": "20261128-093000-XSS"})
            db.put_bench(c, {"bench_key": "bench-3", "rig_name": "NACS bench 3", "owner": "J. Tech", "host": "pc3",
                             "state": "tripped", "dut_serial": "LOT7-0012", "run_id": "20261202-071500-LOT7-0012",
                             "test": "test_plans/test_endurance.py::test_temperature_rise_at_rated_current",
                             "hottest_c": 90.4, "hottest_contact": "DC+",
                             "live": {"bus_v": 0.4, "inlet_a": 0.0, "trip_c": 90.0, "test_elapsed_s": 1830.0}})
    finally:
        db.close()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rig", "serve", "--db", url, "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)

    def listening() -> bool:
        assert server.poll() is None, server.communicate()[0]
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, 60, "rig serve to listen")
        yield {"url": url, "base": f"http://127.0.0.1:{port}", "tmp": tmp_path}
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def shoot(page: Any, name: str, full_page: bool = True) -> None:
    """Screenshots at 1400 px and 820 px (a tablet), when RIG_WEB_SCREENSHOTS names a folder."""
    folder = os.environ.get("RIG_WEB_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for width in (1400, 820):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(Path(folder) / f"{name}-{width}.png"), full_page=full_page)
    page.set_viewport_size({"width": 1400, "height": 900})


def test_lab_live_then_runs_dut_trend_in_a_browser(chromium: Any, dashboard: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    tmp, base = dashboard["tmp"], dashboard["base"]
    plans, release = tmp / "plans", tmp / "release"
    plans.mkdir()
    (plans / "test_hold_plan.py").write_text(HOLD_PLAN)
    run = subprocess.Popen([sys.executable, "-m", "rig", "run", str(plans), "--sim", "--plain", "--dut", "WEB-1",
                            "--time-scale", "10", "--results", str(tmp / "results")], cwd=ROOT,
                           env={**os.environ, "RIG_DATABASE_URL": dashboard["url"], "RIG_TEST_RELEASE": str(release)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        # Lab: the bench appears running, then its current and temperature change in place (no reload).
        page.goto(base + "/")
        page.evaluate("window.__loaded_once = true")
        bench = page.locator("section.bench", has=page.locator("a.dut", has_text="WEB-1"))
        expect(page.locator("section[data-bench='bench-2'] a.dut")).to_have_text(XSS)  # text, not a script
        expect(bench.locator(".state")).to_have_text("running", timeout=WAIT_MS)
        expect(bench.locator("a.dut")).to_have_text("WEB-1")
        expect(bench.locator(".bus-v")).to_have_text(re.compile(r"^\d[\d.]* V$"), timeout=WAIT_MS)
        expect(bench).to_contain_text("trip at 90 °C")
        expect(bench.locator(".hold")).to_contain_text("hold at", timeout=WAIT_MS)
        expect(bench.locator(".test")).to_contain_text("test_hold_until_released")
        expect(bench.locator(".test-elapsed")).to_contain_text("elapsed")
        expect(bench.locator(".hold")).to_contain_text("to go")
        page.wait_for_function(SEEN_CHANGES, timeout=WAIT_MS, polling=100)
        assert page.evaluate("window.__loaded_once") is True, "the values changed by server-sent events, not a reload"
        expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"))
        shoot(page, "lab")

        # The run's page while it runs: the report so far, marked in progress.
        run_id = bench.locator("a[href^='/runs/']").inner_text()
        page.goto(f"{base}/runs/{run_id}")
        expect(page.locator(".runbar")).to_contain_text("run in progress", timeout=WAIT_MS)
        shoot(page, "run-in-progress", full_page=False)

        release.touch()
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0, out
        # Browsing changed nothing on the bench: the run ended as its plan did, with no trip and no override.
        meta = json.loads(next((tmp / "results").glob("*/run.json")).read_text())
        assert (meta["outcome"], meta["safety_trips"], meta.get("overrides", [])) == ("passed", [], []), meta

        # Runs: the finished run with its verdicts.
        page.goto(base + "/runs")
        row = page.locator(f"tr[data-run='{run_id}']")
        expect(row.locator(".outcome")).to_have_text("passed", timeout=WAIT_MS)
        expect(row.locator(".tests")).to_contain_text("1 passed")
        assert "FAIL" not in row.inner_text()
        shoot(page, "runs")
        row.locator("a", has_text=run_id).click()
        expect(page.locator("h1")).to_contain_text("WEB-1", timeout=WAIT_MS)
        expect(page.locator("body")).to_contain_text("PASS")
        assert page.locator(".runbar").inner_text().count("in progress") == 0

        # DUT, then the Trend of its measurement.
        page.goto(base + "/runs")
        page.locator(f"tr[data-run='{run_id}'] a.dut").click()
        expect(page.locator("h1 .serial")).to_have_text("WEB-1")
        expect(page.locator("section.dut-run")).to_have_count(1)
        expect(page.locator("table.measurements .verdict")).to_have_text(["PASS"])
        shoot(page, "dut")
        page.locator("table.measurements a", has_text="temperature_rise[DC+]").click()
        expect(page.locator("h1 .key")).to_have_text("endurance.temperature_rise")
        expect(page.locator("svg.trend path.series")).to_have_count(1)
        expect(page.locator("svg.trend path.limit")).not_to_have_count(0)
        page.goto(base + "/trend?key=endurance.temperature_rise")
        expect(page.locator("table.points tbody tr")).to_have_count(2)  # WEB-1 and the crafted DUT's run
        shoot(page, "trend")

        # The crafted serial is text on every page that shows it, and no script of it ran.
        page.goto(base + "/runs")
        expect(page.get_by_role("link", name=XSS)).to_be_visible()
        page.get_by_role("link", name=XSS).click()
        expect(page.locator("h1 .serial")).to_have_text(XSS)
        page.goto(base + "/trend?key=endurance.temperature_rise")
        expect(page.get_by_role("link", name=XSS)).to_be_visible()
        assert dialogs == [], dialogs

        # Lab again: the bench is idle, its last run passed.
        page.goto(base + "/")
        bench = page.locator("section.bench", has=page.locator("a.dut", has_text="WEB-1"))
        expect(bench.locator(".state")).to_have_text("idle", timeout=WAIT_MS)
        expect(bench.locator(".outcome")).to_have_text("passed")
        expect(page.locator("section.bench")).to_have_count(3)
    finally:
        page.close()
        if run.poll() is None:
            release.touch()
            try:
                run.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                run.kill()
                run.communicate()
