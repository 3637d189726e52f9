"""The lab dashboard's app (``rig serve``) without a browser: every page from a real SQLite results database
(run folders recorded by ``tests.run_factory``, stored by ``rig sync``'s code), values escaped, only GET
routes and nothing written, the access token, the lab states of the bench rows, a run's report from the
database when its folder is gone. The browser tests are in ``test_web_browser.py``."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from rig.cli import main
from rig.db.store import Database, make_engine, migrate
from rig.db.sync import run_folders, sync
from rig.web.app import DashboardError, create_app
from tests.run_factory import endurance_run

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TOKEN = "lab-secret-0123"


def put_benches(url: str, rows: list[dict[str, Any]], age_s: float = 0.0) -> None:
    db = Database(url)
    try:
        with db.engine.begin() as c:
            for row in rows:
                db.put_bench(c, row)
            if age_s:
                from rig.db import schema

                old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=age_s)
                keys = [r["bench_key"] for r in rows]
                c.execute(schema.benches.update().where(schema.benches.c.bench_key.in_(keys)).values(updated_at=old))
    finally:
        db.close()


@pytest.fixture
def lab(tmp_path: Path) -> dict[str, Any]:
    """Three recorded runs (two of INLET-42, one of a crafted serial) synced into a fresh database, and a
    running bench whose row carries crafted text too."""
    results = tmp_path / "results"
    endurance_run(results / "20261128-093000-INLET-42", dut="INLET-42")
    endurance_run(results / "20261128-113000-INLET-42", dut="INLET-42", operator="A. Lead")
    endurance_run(results / "20261129-080000-XSS", dut=XSS, operator="<img src=x onerror=alert(2)>",
                  started="2026-11-29T08:00:00+00:00")
    url = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    db = Database(url)
    try:
        sync(db, run_folders(results))
    finally:
        db.close()
    put_benches(url, [{"bench_key": "b1", "rig_name": "bench <b>1</b>", "owner": "J. Tech", "host": "pc1",
                       "state": "running", "dut_serial": XSS, "run_id": "20261129-080000-XSS",
                       "test": "test_plans/test_x.py::test_<i>y</i>", "hottest_c": 61.25, "hottest_contact": "DC+",
                       "live": {"bus_v": 400.0, "inlet_a": 250.5, "trip_c": 90.0, "test_elapsed_s": 300.0,
                                "hold": "hold <u>at</u> 250 A", "hold_elapsed_s": 280.0, "hold_remaining_s": 3320.0}}])
    return {"url": url, "results": results, "tmp": tmp_path}


@pytest.fixture
def client(lab: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(lab["url"])) as c:
        yield c


def test_every_page_answers_from_the_database(client: TestClient) -> None:
    lab_page = client.get("/")
    assert lab_page.status_code == 200
    assert "250.5 A" in lab_page.text and "400 V" in lab_page.text and "61.2 °C" in lab_page.text
    assert "trip at 90 °C" in lab_page.text and "5.0 min elapsed" in lab_page.text and "55.3 min to go" in lab_page.text
    assert 'src="/static/lab.js"' in lab_page.text and "//" not in lab_page.text.split("<body>")[0].replace(
        "http-equiv", ""), "no asset from elsewhere"
    for asset in ("/static/app.css", "/static/lab.js"):
        assert client.get(asset).status_code == 200

    runs = client.get("/runs").text
    assert runs.count('<tr class="run') == 3
    only = client.get("/runs", params={"dut": "INLET-42"}).text
    assert only.count('<tr class="run') == 2 and "20261129-080000-XSS" not in only
    assert client.get("/runs", params={"since": "2026-11-29"}).text.count('<tr class="run') == 1
    assert client.get("/runs", params={"outcome": "passed"}).text.count('<tr class="run') == 0
    assert client.get("/runs", params={"rig": "no such rig"}).text.count('<tr class="run') == 0
    assert "not a date" in client.get("/runs", params={"since": "yesterday"}).text

    report = client.get("/runs/20261128-093000-INLET-42")
    assert report.status_code == 200 and "Verdict per test" in report.text and "data:image/png;base64" in report.text
    assert client.get("/runs/no-such-run").status_code == 404

    dut = client.get("/dut", params={"serial": "INLET-42"}).text
    assert dut.count('<section class="dut-run">') == 2 and "cp.state_d.high" in dut and "FAIL" in dut
    assert "No run of DUT" in client.get("/dut", params={"serial": "NOBODY"}).text

    trend = client.get("/trend", params={"key": "endurance.temperature_rise"}).text
    assert "3 value(s) in 3 run(s)" in trend and '<svg class="trend"' in trend and 'class="limit high"' in trend
    assert "endurance.temperature_rise" in client.get("/trend").text, "the chooser lists the stored limit keys"
    assert "No measurement against limit" in client.get("/trend", params={"key": "no.such"}).text


def test_every_value_is_escaped(client: TestClient) -> None:
    pages = ["/", "/lab/fragment", "/runs", "/dut?serial=%3Cscript%3Ealert(1)%3C/script%3E",
             "/trend?key=endurance.temperature_rise", "/runs/20261129-080000-XSS"]
    for path in pages:
        text = client.get(path).text
        assert "<script>alert(1)" not in text, path
        assert "<img src=x" not in text and "<b>1</b>" not in text and "<i>y</i>" not in text, path
    assert ESCAPED in client.get("/dut", params={"serial": XSS}).text
    lab = client.get("/").text
    assert "bench &lt;b&gt;1&lt;/b&gt;" in lab and "hold &lt;u&gt;at&lt;/u&gt; 250 A" in lab
    assert "/dut?serial=%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in lab, "the link carries the serial URL-encoded"


def test_read_only_only_get_routes_and_nothing_written(lab: dict[str, Any], client: TestClient) -> None:
    app = client.app
    while not hasattr(app, "routes"):  # inside the timing (and token) wrappers
        app = app.app
    routes = [r for r in app.routes if isinstance(r, Route)]
    assert routes and all(set(r.methods or ()) <= {"GET", "HEAD"} for r in routes)
    assert all(isinstance(r, Route | Mount) for r in app.routes)

    def snapshot() -> list[str]:
        con = sqlite3.connect(lab["tmp"] / "lab.sqlite")
        try:
            return list(con.iterdump())
        finally:
            con.close()

    before = snapshot()
    for path in ("/", "/runs", "/runs/20261128-093000-INLET-42", "/dut?serial=INLET-42", "/trend?key=x"):
        assert client.get(path).status_code in (200, 404)
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert client.request(method, path.split("?")[0]).status_code == 405, (method, path)
    assert snapshot() == before


def test_lab_states_of_the_bench_rows(lab: dict[str, Any], client: TestClient) -> None:
    base = {"owner": "T", "host": "pc", "dut_serial": "SN"}
    put_benches(lab["url"], [
        {**base, "bench_key": "idle", "rig_name": "a idle", "state": "free", "outcome": "passed"},
        {**base, "bench_key": "owned", "rig_name": "b owned", "state": "running", "test": None},
        {**base, "bench_key": "tripped", "rig_name": "c tripped", "state": "tripped", "test": "t.py::t"},
    ])
    put_benches(lab["url"], [{**base, "bench_key": "stale", "rig_name": "d stale", "state": "running",
                              "test": "t.py::t"}], age_s=600)
    text = client.get("/lab/fragment").text
    states = {key: state for state, key in
              re.findall(r'<section class="bench state-(\w+)" data-bench="(\w+)"', text)}
    assert states == {"idle": "idle", "owned": "owned", "tripped": "tripped", "stale": "stale", "b1": "running"}
    assert "10 min ago" in text and "stopped reporting" in text


def test_access_token(lab: dict[str, Any]) -> None:
    with TestClient(create_app(lab["url"], token=TOKEN), follow_redirects=False) as c:
        for path in ("/", "/runs", "/static/app.css", "/lab/events", "/runs/20261128-093000-INLET-42"):
            assert c.get(path).status_code == 401, path
        assert c.get("/", params={"token": "wrong-token"}).status_code == 401
        assert c.get("/", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert c.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        login = c.get("/runs", params={"token": TOKEN, "dut": "INLET-42"})
        assert login.status_code == 303 and login.headers["location"] == "/runs?dut=INLET-42"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert c.get("/runs").status_code == 200, "the cookie set at login carries the token"


def test_serve_refuses_the_network_without_a_token_and_a_missing_database(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIG_SERVE_TOKEN", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--host", "0.0.0.0", "--db", "sqlite:///x.sqlite"])
    assert result.exit_code == 2 and "--token" in result.output
    result = runner.invoke(main, ["serve", "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code == 2 and "at least 8 characters" in result.output
    result = runner.invoke(main, ["serve", "--results", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no results database at" in result.output
    assert not (tmp_path / "nothing").exists(), "serving creates no database"


def test_an_older_schema_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    migrate(engine, "0002")
    engine.dispose()
    with pytest.raises(DashboardError, match=r"revision 0002.*rig sync"):
        create_app(url)
    con = sqlite3.connect(tmp_path / "old.sqlite")
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
    finally:
        con.close()


def test_a_run_whose_folder_is_gone_is_rebuilt_from_the_database(lab: dict[str, Any], client: TestClient) -> None:
    shutil.rmtree(lab["results"] / "20261128-113000-INLET-42")
    page = client.get("/runs/20261128-113000-INLET-42").text
    assert "rebuilt from the results database" in page
    assert "Verdict per test" in page and "cp.state_d.high" in page and "data:image/png;base64" in page


def test_trend_svg_limits_step_where_they_change_and_text_is_escaped() -> None:
    from rig.web.queries import TrendPoints
    from rig.web.svg import trend_svg

    n = 1000
    points = TrendPoints(started=[1.7e9 + 3600 * i for i in range(n)], run_pk=list(range(n)),
                         name=[XSS] * n, value=[1.0 + (i % 7) / 100 for i in range(n - 1)] + [2.0],
                         low=[None] * n, high=[1.5] * 500 + [1.6] * 500, verdict=["PASS"] * (n - 1) + ["FAIL"],
                         unit="<V>")
    svg, legend = trend_svg(points, f"{XSS} across runs")
    assert "<script>" not in svg and "&lt;V&gt;" in svg and ESCAPED in svg
    high = re.search(r'<path d="([^"]*)"[^>]*class="limit high"', svg)
    assert high is not None and high.group(1).count("V") == 1, "one step where the limit changed, not one per run"
    assert 'class="limit low"' not in svg
    assert svg.count("h0") == n and 'class="fails"' in svg
    assert legend[0][1] == XSS and [label for _, label in legend[1:]] == ["FAIL", "limit"]


def test_responses_carry_server_timing(client: TestClient) -> None:
    timing = client.get("/runs").headers["server-timing"]
    assert re.fullmatch(r"app;dur=\d+\.\d", timing)


def test_a_database_that_stops_answering_is_one_line_not_a_crash(lab: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    from rig.db import queries as db_queries
    from rig.web import queries

    def down(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused\nDETAIL: more"))

    with TestClient(create_app(lab["url"])) as c:
        monkeypatch.setattr(queries, "list_benches", down)
        monkeypatch.setattr(db_queries, "list_runs", down)
        fragment = c.get("/lab/fragment")
        assert fragment.status_code == 200 and "does not answer" in fragment.text and "DETAIL" not in fragment.text
        runs = c.get("/runs")
        assert runs.status_code == 503 and "does not answer" in runs.text and "Traceback" not in runs.text
