"""The results database, the same tests against SQLite (the embedded default) and a real PostgreSQL
server started for the test session (``tests/pg_server.py``): a whole simulated run lands live with
every measurement and sample; the database stopped mid-run leaves the run passing and ``rig sync``
completes it with nothing duplicated; old folders import; syncing twice changes nothing; a database
at the first schema upgrades in place with its data; the query commands answer from it."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from rig.cli import main
from rig.config import ConfigError, parse_config
from rig.db import locate, schema
from rig.db.records import content_hash, csv_rows, measurement_row, read_folder, sample_row
from rig.db.store import HEAD_REVISION, Database, head_revision, make_engine, migrate
from tests.pg_server import PostgresServer
from tests.run_factory import endurance_run, unfinished_run

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Backend:
    name: str
    url: str
    stop: Callable[[], None]
    start: Callable[[], None]
    state: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: .ci/run installs it; these tests must not skip in CI")
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "db" / "rig.sqlite"
        held: dict[str, sqlite3.Connection] = {}

        def stop() -> None:
            """Another process takes the write lock and keeps it: every write of the session fails."""
            lock = sqlite3.connect(path, isolation_level=None, timeout=30)
            lock.execute("BEGIN EXCLUSIVE")
            held["lock"] = lock

        def start() -> None:
            lock = held.pop("lock")
            lock.execute("ROLLBACK")
            lock.close()

        yield Backend("sqlite", f"sqlite:///{path}", stop, start)
        if held:
            start()
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    running = {"up": True}

    def pg_stop() -> None:
        server.stop()
        running["up"] = False

    def pg_start() -> None:
        server.start()
        running["up"] = True

    yield Backend("postgresql", server.new_database(), pg_stop, pg_start)
    if not running["up"]:
        server.start()


# --- helpers ------------------------------------------------------------------------------------------


def rig_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def run_folder(results: Path) -> Path:
    folders = [p for p in results.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def stored(url: str, run_id: str) -> dict[str, Any]:
    """What the database holds of one run: its row, measurements and samples as comparable tuples."""
    db = Database(url)
    try:
        with db.engine.connect() as c:
            run = c.execute(sa.select(schema.runs).where(schema.runs.c.run_id == run_id)).mappings().one()
            m = schema.measurements
            measurements = [tuple(r) for r in c.execute(
                sa.select(m.c.seq, m.c.test, m.c.name, m.c.value, m.c.unit, m.c.low, m.c.high, m.c.verdict,
                          m.c.limit_key, m.c.source, m.c.confidence, m.c.time_s, m.c.wall_time)
                .where(m.c.run_pk == run["id"]).order_by(m.c.seq))]
            s = schema.samples
            samples = [(r.time_s, r.wall_time, r.test, json.dumps(r.data, sort_keys=True), r.errors) for r in c.execute(
                sa.select(s.c.time_s, s.c.wall_time, s.c.test, s.c.data, s.c.errors).where(s.c.run_pk == run["id"]))]
            children = {t.name: c.execute(sa.select(sa.func.count()).select_from(t)
                                          .where(t.c.run_pk == run["id"])).scalar() for t in schema.CHILDREN}
            tests = dict(c.execute(sa.select(schema.tests.c.nodeid, schema.tests.c.outcome)
                                   .where(schema.tests.c.run_pk == run["id"])).all())
            runs_total = c.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar()
        return {"run": dict(run), "measurements": measurements, "samples": samples, "children": children,
                "tests": tests, "runs_total": runs_total}
    finally:
        db.close()


def recorded(folder: Path) -> dict[str, Any]:
    """The same, read from the CSV files (the record)."""
    rows = csv_rows(folder / "measurements.csv")
    header = next(rows)
    measurements = []
    for seq, record in enumerate(rows):
        m = measurement_row(dict(zip(header, record, strict=True)))
        measurements.append((seq, m["test"], m["name"], m["value"], m["unit"], m["low"], m["high"], m["verdict"],
                             m["limit_key"], m["source"], m["confidence"], m["time_s"], m["wall_time"]))
    rows = csv_rows(folder / "samples.csv")
    header = next(rows)
    samples = []
    for record in rows:
        s = sample_row(header, record)
        samples.append((s["time_s"], s["wall_time"], s["test"], json.dumps(s["data"], sort_keys=True), s["errors"]))
    return {"measurements": measurements, "samples": samples}


def assert_database_holds(url: str, folder: Path) -> dict[str, Any]:
    meta = json.loads((folder / "run.json").read_text())
    db, csv = stored(url, meta["run_id"]), recorded(folder)
    assert db["measurements"] == csv["measurements"]
    assert len(db["samples"]) == len(csv["samples"]) > 0
    assert sorted(db["samples"]) == sorted(csv["samples"])
    assert db["run"]["content_hash"] == content_hash(folder)
    assert db["run"]["outcome"] == meta["outcome"] and db["run"]["finished"] is meta["finished"]
    assert db["children"]["safety_trips"] == len(meta["safety_trips"])
    assert db["children"]["instruments"] == len(meta["instruments"])
    return db


# --- a whole simulated run, live ---------------------------------------------------------------------------


@pytest.mark.slow
def test_whole_simulated_run_lands_live(backend: Backend, tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = rig_cli("run", "--sim", "--plain", "--yes", "--dut", "DB-WHOLE", "--tier", "1000", "--results", str(results),
                   env={"RIG_DATABASE_URL": backend.url})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "results database" not in proc.stdout + proc.stderr, "no complaint when the database is there"
    folder = run_folder(results)
    db = assert_database_holds(backend.url, folder)
    assert db["run"]["source"] == "live", "fed by the session, not by a later sync"
    assert len(db["tests"]) == 28 and set(db["tests"].values()) == {"passed"}
    assert db["run"]["dut_serial"] == "DB-WHOLE" and db["run"]["tier_v"] == 1000 and db["run"]["simulated"]
    assert db["children"]["safety_trips"] >= 1, "the E-stop tests trip the bench on purpose"
    benches = json.loads(rig_cli("benches", "--db", backend.url, "--json").stdout)
    assert [(b["state"], b["outcome"], b["dut_serial"], b["stale"]) for b in benches] == \
        [("free", "passed", "DB-WHOLE", False)]
    again = rig_cli("sync", str(results), "--db", backend.url)
    assert again.returncode == 0 and "0 added, 0 completed, 1 already stored" in again.stdout, again.stdout


# --- the database stopped mid-run ------------------------------------------------------------------------

OUTAGE_PLAN = '''
import os
import time
from pathlib import Path

from instruments.roles import Connector

HANDSHAKE = Path(os.environ["RIG_TEST_HANDSHAKE"])


def test_before(rig, check):
    rig.fixture.set_connector(Connector.UNPLUGGED)
    check("pp.unplugged", rig.sample().fixture.pp_voltage)
    rig.wait(20)


def test_outage(rig, check):
    (HANDSHAKE / "stop-db").touch()
    deadline = time.monotonic() + 120
    while not (HANDSHAKE / "db-stopped").exists():
        assert time.monotonic() < deadline, "the test never stopped the database"
        time.sleep(0.05)
    rig.fixture.set_connector(Connector.LATCHED)
    check("pp.latched", rig.sample().fixture.pp_voltage)
    rig.wait(30)


def test_after(rig, check):
    rig.fixture.set_connector(Connector.BUTTON_PRESSED)
    check("pp.button_pressed", rig.sample().fixture.pp_voltage)
    rig.wait(30)
'''


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def bench_rows(url: str) -> list[dict[str, Any]]:
    from rig.db.queries import list_benches

    db = Database(url)
    try:
        return list_benches(db)
    except Exception:
        return []
    finally:
        db.close()


@pytest.mark.slow
def test_database_stopped_mid_run_then_sync_completes(backend: Backend, tmp_path: Path) -> None:
    plans, handshake, results = tmp_path / "plans", tmp_path / "handshake", tmp_path / "results"
    plans.mkdir()
    handshake.mkdir()
    (plans / "test_outage_plan.py").write_text(OUTAGE_PLAN)
    args = [sys.executable, "-m", "rig", "run", str(plans), "--sim", "--plain", "--dut", "DB-OUTAGE",
            "--results", str(results)]
    env = {**os.environ, "RIG_DATABASE_URL": backend.url, "RIG_TEST_HANDSHAKE": str(handshake)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: (handshake / "stop-db").exists() or proc.poll() is not None, 120, "the outage test")
        assert proc.poll() is None, proc.communicate()[0]
        # The bench's status row is live: this session, this DUT, this test, the hottest contact.
        bench = wait_for(lambda: [b for b in bench_rows(backend.url) if (b["test"] or "").endswith("test_outage")],
                         60, "the bench row to show the running test")[0]
        assert (bench["state"], bench["dut_serial"], bench["stale"]) == ("running", "DB-OUTAGE", False)
        assert bench["hottest_c"] is not None and bench["hottest_contact"] in ("DC+", "DC-")
        backend.stop()
        (handshake / "db-stopped").touch()
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert out.count("results database unreachable") == 1, out
    assert "rig sync" in out
    folder = run_folder(results)
    backend.start()
    before = stored(backend.url, folder.name)
    csv = recorded(folder)
    assert len(before["measurements"]) < len(csv["measurements"]), "the outage cost the database some rows"
    assert before["run"]["content_hash"] is None

    synced = rig_cli("sync", str(results), "--db", backend.url)
    assert synced.returncode == 0 and "0 added, 1 completed, 0 already stored" in synced.stdout, synced.stdout
    after = assert_database_holds(backend.url, folder)
    assert len(after["measurements"]) == 3 and after["runs_total"] == 1
    assert set(after["tests"].values()) == {"passed"} and len(after["tests"]) == 3

    twice = rig_cli("sync", str(results), "--db", backend.url)
    assert "0 added, 0 completed, 1 already stored" in twice.stdout, twice.stdout
    assert stored(backend.url, folder.name) == after, "syncing twice changes nothing"


# --- old folders, sync, the query commands ---------------------------------------------------------------


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_sync_imports_old_folders_and_twice_changes_nothing(backend: Backend, tmp_path: Path) -> None:
    results = tmp_path / "old"
    endurance_run(results / "20261128-093000-INLET-42")  # run.json without run_id; dut as a bare serial
    unfinished_run(results / "20261129-101500-INLET-43")  # killed mid-write: a cut last line
    first = invoke("sync", str(results), "--db", backend.url)
    assert first.exit_code == 0, first.output
    assert "2 added, 0 completed, 0 already stored" in first.output
    for name in ("20261128-093000-INLET-42", "20261129-101500-INLET-43"):
        db = stored(backend.url, name)
        csv = recorded(results / name)
        assert db["measurements"] == csv["measurements"] and sorted(db["samples"]) == sorted(csv["samples"])
    killed = stored(backend.url, "20261129-101500-INLET-43")
    assert killed["run"]["finished"] is False and killed["run"]["dut_serial"] == "INLET-42"
    assert set(killed["tests"].values()) == {"unfinished"}
    snapshot = {n: stored(backend.url, n) for n in ("20261128-093000-INLET-42", "20261129-101500-INLET-43")}
    second = invoke("sync", str(results), "--db", backend.url)
    assert "0 added, 0 completed, 2 already stored" in second.output, second.output
    assert {n: stored(backend.url, n) for n in snapshot} == snapshot


def test_runs_history_trend_answer_from_the_database(backend: Backend, tmp_path: Path) -> None:
    results = tmp_path / "old"
    endurance_run(results / "20261128-093000-INLET-42", dut="INLET-42")
    endurance_run(results / "20261128-113000-INLET-42", dut="INLET-42", operator="A. Lead")
    endurance_run(results / "20261128-133000-LOT7-0001", dut="LOT7-0001")
    assert invoke("sync", str(results), "--db", backend.url).exit_code == 0

    runs = json.loads(invoke("runs", "--db", backend.url, "--json").output)
    assert [r["run_id"] for r in runs] == sorted((r["run_id"] for r in runs), reverse=True) and len(runs) == 3
    lot = json.loads(invoke("runs", "--db", backend.url, "--json", "--dut", "LOT7-*").output)
    assert [r["dut"] for r in lot] == ["LOT7-0001"]
    by_lead = json.loads(invoke("runs", "--db", backend.url, "--json", "--operator", "A. Lead").output)
    assert [r["run_id"] for r in by_lead] == ["20261128-113000-INLET-42"]
    dated = json.loads(invoke("runs", "--db", backend.url, "--json", "--since", "2026-11-29").output)
    assert dated == []
    failed = json.loads(invoke("runs", "--db", backend.url, "--json", "--outcome", "failed").output)
    assert len(failed) == 3 and all(r["failed_measurements"] == 2 for r in failed)  # CP state D, insulation DC-
    table = invoke("runs", "--db", backend.url)
    assert "3 run(s)" in table.output and "INLET-42" in table.output

    history = invoke("history", "INLET-42", "--db", backend.url, "--csv")
    lines = history.output.strip().splitlines()
    csv_measurements = len(list(csv_rows(results / "20261128-093000-INLET-42" / "measurements.csv"))) - 1
    assert len(lines) == 1 + 2 * csv_measurements
    assert lines[0].startswith("run_id,started,rig,operator,outcome,test,name,value")

    png = tmp_path / "rise.png"
    trend = invoke("trend", "endurance.temperature_rise", "--db", backend.url, "--png", str(png))
    assert trend.exit_code == 0, trend.output
    assert "3 value(s) in 3 run(s)" in trend.output and png.stat().st_size > 10_000
    points = json.loads(invoke("trend", "endurance.temperature_rise", "--db", backend.url, "--json").output)
    assert len(points) == 3 and all(p["high"] is not None and p["verdict"] == "PASS" for p in points)
    unknown = invoke("trend", "no.such.limit", "--db", backend.url)
    assert unknown.exit_code == 2 and "no measurement against limit no.such.limit" in unknown.output


def test_benches_marks_a_dead_sessions_row_stale(backend: Backend) -> None:
    db = Database(backend.url)
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=7)
    try:
        with db.engine.begin() as c:
            db.put_bench(c, {"bench_key": "dead", "rig_name": "bench 2", "owner": "J. Tech", "host": "pc2",
                             "state": "running", "dut_serial": "SN1", "since": old})
            c.execute(schema.benches.update().values(updated_at=old))
            db.put_bench(c, {"bench_key": "alive", "rig_name": "bench 1", "owner": "A. Lead", "host": "pc1",
                             "state": "running", "dut_serial": "SN2", "since": old, "hottest_c": 61.5,
                             "hottest_contact": "DC+"})
    finally:
        db.close()
    rows = {b["bench_key"]: b for b in json.loads(invoke("benches", "--db", backend.url, "--json").output)}
    assert rows["dead"]["stale"] is True and rows["dead"]["age_s"] >= 400
    assert rows["alive"]["stale"] is False
    table = invoke("benches", "--db", backend.url).output
    assert "STALE" in table and "7 min ago" in table and "61.5 °C DC+" in table


# --- migrations -------------------------------------------------------------------------------------------


def test_upgrade_in_place_from_the_first_schema(backend: Backend, tmp_path: Path) -> None:
    assert head_revision() == HEAD_REVISION, "a new migration must update store.HEAD_REVISION"
    engine = make_engine(backend.url)
    migrate(engine, "0001")
    first = sa.MetaData()
    first.reflect(engine)
    assert "benches" not in first.tables and "calibration_expired" not in first.tables["runs"].c
    with engine.begin() as c:  # a lab's data, written by a rig at the first schema
        for pk, (started, due) in enumerate([("2026-03-10 09:00:00", "2026-03-01"),
                                             ("2026-03-10 09:00:00", "2027-03-01")], start=1):
            c.execute(first.tables["runs"].insert().values(
                id=pk, run_id=f"run-{pk}", dut_serial="SN1", finished=True, outcome="passed",
                started=dt.datetime.fromisoformat(started), meta={"run_id": f"run-{pk}"}))
            c.execute(first.tables["instruments"].insert().values(
                run_pk=pk, name="psu", calibration_due=dt.date.fromisoformat(due)))
            c.execute(first.tables["measurements"].insert().values(
                run_pk=pk, seq=0, name="contact.resistance", value=60e-6, limit_key="contact.resistance"))
    engine.dispose()

    db = Database(backend.url)  # opening upgrades in place
    try:
        with db.engine.connect() as c:
            expired = dict(c.execute(sa.select(schema.runs.c.run_id, schema.runs.c.calibration_expired)).all())
            assert expired == {"run-1": True, "run-2": False}
            assert c.execute(sa.select(sa.func.count()).select_from(schema.measurements)).scalar() == 2
            assert c.execute(sa.select(sa.func.count()).select_from(schema.benches)).scalar() == 0
        head = sa.MetaData()
        head.reflect(db.engine)
        for table in schema.metadata.sorted_tables:
            assert set(head.tables[table.name].c.keys()) == set(table.c.keys()), table.name
        indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("measurements")}
        assert "ix_measurements_trend" in indexes
        points = json.loads(invoke("trend", "contact.resistance", "--db", backend.url, "--json").output)
        assert [p["run_id"] for p in points] == ["run-1", "run-2"]
    finally:
        db.close()


# --- where the database is -------------------------------------------------------------------------------


def test_locate_order_and_the_config_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIG_DATABASE_URL", raising=False)
    monkeypatch.delenv("NACS_LAB_DB", raising=False)
    assert locate(tmp_path).url == f"sqlite:///{(tmp_path / 'rig.sqlite').resolve()}"
    config = parse_config(_config({"url_env": "NACS_LAB_DB"}), "lab.toml")
    assert config.database_url_env == "NACS_LAB_DB"
    assert locate(tmp_path, config).url is None and "NACS_LAB_DB" in locate(tmp_path, config).origin
    monkeypatch.setenv("NACS_LAB_DB", "postgresql://rig@labdb/results")
    assert locate(tmp_path, config).url == "postgresql://rig@labdb/results"
    monkeypatch.setenv("RIG_DATABASE_URL", "off")
    assert locate(tmp_path, config).url is None
    assert locate(tmp_path, config, "sqlite:///x.sqlite").url == "sqlite:///x.sqlite"


@pytest.mark.parametrize(("table", "message"), [
    ({"url_env": "postgresql://rig:secret@labdb/results"}, "lab.toml: database.url_env: expected the name of an "
                                                           "environment variable"),
    ({"url": "postgresql://rig@labdb/results"}, "lab.toml: database.url: expected no such key (allowed: url_env)"),
    ({"url_env": 5}, "lab.toml: database.url_env: expected a non-empty string, got 5"),
])
def test_database_config_errors_are_one_line(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_config(table), "lab.toml")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def _config(database: dict[str, Any]) -> dict[str, Any]:
    return {
        "rig": {"name": "lab bench"},
        "safety": {"max_voltage": 1000, "max_current": 900, "abort_temperature": 90},
        "instruments": {
            "psu": {"driver": "ea-psi", "resource": "TCPIP::10.0.0.2::5025::SOCKET",
                    "rating": {"voltage": 1000, "current": 40, "power": 30000}},
            "load": {"driver": "chroma-63200a", "resource": "TCPIP::10.0.0.3::5025::SOCKET",
                     "rating": {"voltage": 1000, "current": 40, "power": 30000}},
            "inlet": {"driver": "nacs-fixture", "resource": "modbus+tcp://10.0.0.4:502"},
        },
        "paths": {"hv": {"selector": 1, "supplies": ["psu"], "loads": ["load"]}},
        "database": database,
    }


def test_read_folder_is_what_sync_stores(tmp_path: Path) -> None:
    folder = endurance_run(tmp_path / "run", hold_s=600)
    run = read_folder(folder)
    assert run.run["run_id"] == "run" and run.run["dut_serial"] == "INLET-42" and run.run["tier_v"] == 1000
    assert len(list(run.samples())) == len(recorded(folder)["samples"])


def test_unreachable_database_at_start_the_run_goes_on_and_says_so_once(tmp_path: Path) -> None:
    missing = tmp_path / "no-server-here"
    proc = rig_cli("run", "--sim", "--plain", "--yes", "--dut", "DB-NONE", "-k", "proximity", "--results",
                   str(tmp_path / "results"), env={"RIG_DATABASE_URL": f"postgresql://rig@/lab?host={missing}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("results database unreachable") == 1, proc.stdout
    assert "postgresql://rig@/lab" in proc.stdout and "rig sync" in proc.stdout
    folder = run_folder(tmp_path / "results")
    assert len(recorded(folder)["measurements"]) == 3, "the CSV is the record, whatever the database"


def test_the_feeds_sample_rows_are_what_sync_makes_of_the_csv_line(tmp_path: Path) -> None:
    """The feed builds a sample's row without formatting it to text; it must equal what ``rig sync`` reads
    back from samples.csv: rounding, integers, protection text, an open thermocouple (NaN), errors."""
    import random
    from dataclasses import replace
    from types import SimpleNamespace

    from instruments.errors import InstrumentError
    from instruments.roles import SupplyReading
    from rig.db.feed import RunFeed
    from rig.recorder import SAMPLE_HEAD, RunRecorder
    from rig.sampler import Sample
    from tests.run_factory import IDLE, _columns, bench_sample, endurance_sample

    columns = _columns(())
    recorder = RunRecorder(tmp_path / "run", {"run_id": "r"}, columns, origin=3.25)
    feed = RunFeed("sqlite://", SimpleNamespace(recorder=recorder), "key", print)
    samples = [endurance_sample(100.0 + k * 1.2345, k * 7.1, random.Random(k)) for k in range(5)]
    samples.append(bench_sample(200.0, replace(IDLE, contact_temp_dc_plus=float("nan")),
                                {"psu_hv": SupplyReading(1000.123456789, 0.01, True, "OVP")}, {}))
    timeout = InstrumentError("psu_hc1", "timeout after 0.5 s")
    samples.append(Sample(201.0, 1.7e9, samples[0].readings, {"psu_hc1": timeout}))
    header = [*SAMPLE_HEAD, *columns, "errors"]
    for sample in samples:
        assert feed._sample_row(sample, "t") == sample_row(header, feed._sample_cells(sample, "t"))
    recorder.finish("passed")
