"""The results database: what it costs the sampler, and how fast the query commands answer.

``db_sampler_ratio_sqlite`` / ``..._postgresql``: a Rig open on the simulated NACS bench at time scale
1000 (sampling back to back, bound by the instruments), its samples recorded to CSV as a run does, in
adjacent pairs of rounds without and with the session's database feed (``rig.db.feed.RunFeed``: a writer
thread, a bounded queue, samples in batches). The figure is the median over the pairs of the sampler's
rate with the feed over its rate without (goal >= 0.95: at most 5 % slower). Beside it, the writer
thread's own CPU time per sample while the round runs (from /proc; opening the database and the end of
the run are not counted), which the machine's load does not blur.
``db_samples_per_s_sqlite`` / ``..._postgresql``: samples per second that reached the database during
those rounds (the note says whether every sample of the rounds was stored).

``history_wall_s_*`` / ``trend_wall_s_*``: ``rig history DUT --csv`` and ``rig trend LIMIT_KEY --csv``
run in this process (click's runner: open the database, check its schema revision, query, print) on a
database of 10 000 runs x 60 measurements (1 000 DUTs x 10 runs, 60 limit keys; built with bulk inserts
first, not timed). The best of 5 calls; the detail also has the same command in a new process, which
adds Python's start and the imports. Goal <= 0.5 s.

PostgreSQL is a server started for the benchmark (``tests/pg_server.py``: the machine's initdb/pg_ctl,
a unix socket, fsync off); without one its figures are n/a.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import Figure

SAMPLER_GOAL = 0.95
FLUSH_S = 1.1  # rig.db.feed.FLUSH_S and a margin
QUERY_GOAL_S = 0.5
LIMIT_KEYS = 60


@contextlib.contextmanager
def backends(folder: Path) -> Iterator[dict[str, Any]]:
    """``{"sqlite": [url, url], "postgresql": [url, url] or None}``: a database for the sampler rounds and
    one for the query commands, of each kind; ``postgresql_error`` says why PostgreSQL is not there."""
    urls: dict[str, Any] = {"sqlite": [f"sqlite:///{folder / name}" for name in ("feed.sqlite", "big.sqlite")],
                            "postgresql": None}
    server = None
    try:
        from tests.pg_server import PostgresServer

        server = PostgresServer()
        server.start()
        urls["postgresql"] = [server.new_database(), server.new_database()]
    except Exception as exc:  # no PostgreSQL on this machine: its figures are n/a
        urls["postgresql_error"] = f"{type(exc).__name__}: {exc}"
    try:
        yield urls
    finally:
        if server is not None:
            server.close()


# --- the sampler with and without the feed --------------------------------------------------------------


class Session:
    """A Rig on the simulated bench, recording its samples as ``rig.plugin.RigRun`` does."""

    def __init__(self, folder: Path) -> None:
        from instruments.sim.bench import SimulatedBench
        from rig.clock import Clock
        from rig.session import Rig

        self.folder = folder
        clock = Clock(1000.0)
        self.bench = SimulatedBench(clock=clock).start()
        self.rig = Rig(self.bench.config(), clock=clock)
        self.rig.open()
        self.rounds = 0

    def round(self, seconds: float, url: str | None) -> dict[str, Any]:
        from rig.bench_identity import bench_key
        from rig.recorder import RunRecorder
        from rig.sampler import columns

        self.rounds += 1
        recorder = RunRecorder(self.folder / f"round-{self.rounds}", {"run_id": f"bench-{self.rounds}-{time.time()}",
                                                                       "dut": {"serial": "BENCH"}},
                               columns(self.rig.instruments), origin=self.rig.clock.now())
        feed = None
        listeners: list[Any] = [lambda kind, payload: recorder.write_sample(payload) if kind == "sample" else None]
        if url is not None:
            from rig.db.feed import RunFeed

            run = SimpleNamespace(recorder=recorder, rig=self.rig, operator="bench",
                                  dut=SimpleNamespace(serial="BENCH"))
            say = lambda text: print(f"  {text}", flush=True)  # noqa: E731
            feed = RunFeed(url, run, bench_key(self.rig.config), say).begin()
            listeners.append(feed.on_rig_event)
        deadline = time.monotonic() + 60
        while feed is not None and getattr(feed, "pk", None) is None and feed.failed is None:
            assert time.monotonic() < deadline, "the feed never opened its database"
            time.sleep(0.05)  # the feed opens (and migrates) its database on its own thread: not timed
        time.sleep(0.2)
        cpu0 = thread_cpu_s(feed._thread.native_id) if feed is not None else 0.0
        n0, t0 = self.rig.sampler.count, time.perf_counter()
        self.rig.listeners += listeners
        time.sleep(seconds)
        for listener in listeners:
            self.rig.listeners.remove(listener)
        rate = (self.rig.sampler.count - n0) / (time.perf_counter() - t0)
        out = {"rate": rate, "recorded": recorder.sample_count}
        if feed is not None:
            time.sleep(FLUSH_S)  # the last batch of the round is written
            out["writer_cpu_s"] = thread_cpu_s(feed._thread.native_id) - cpu0
        recorder.finish("passed")
        if feed is not None:
            t1 = time.perf_counter()
            feed.finish()
            out |= {"stored": feed.samples_written, "finish_s": time.perf_counter() - t1,
                    "failed": feed.failed, "dropped": feed.dropped}
        return out

    def close(self) -> None:
        self.rig.close()
        self.bench.stop()


def thread_cpu_s(native_id: int | None) -> float:
    """User + system CPU seconds of one thread of this process so far (NaN off Linux)."""
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def sampler_figures(urls: dict[str, Any], quick: bool, folder: Path) -> list[Figure]:
    rounds, seconds = (2, 1.0) if quick else (15, 1.0)
    session = Session(folder / "runs")
    figures = []
    try:
        for name in ("sqlite", "postgresql"):
            url = urls[name][0] if urls.get(name) else None
            if url is None:
                note = f"no PostgreSQL server: {urls.get('postgresql_error')}"
                figures += [Figure(f"db_sampler_ratio_{name}", float("nan"), "x", SAMPLER_GOAL, ">=", note),
                            Figure(f"db_samples_per_s_{name}", float("nan"), "/s", None, ">=", note)]
                continue
            plain, fed, ratios = [], [], []
            for k in range(rounds):  # adjacent pairs, alternating which goes first: drifting load hits both
                pair = {}
                for with_db in ((False, True) if k % 2 == 0 else (True, False)):
                    pair[with_db] = session.round(seconds, url if with_db else None)
                plain.append(pair[False])
                fed.append(pair[True])
                ratios.append(pair[True]["rate"] / pair[False]["rate"])
            ratio = statistics.median(ratios)
            rate_plain = statistics.median(r["rate"] for r in plain)
            rate_fed = statistics.median(r["rate"] for r in fed)
            stored = sum(r["stored"] for r in fed)
            recorded = sum(r["recorded"] for r in fed)
            seconds_fed = rounds * seconds
            writer_us = sum(r["writer_cpu_s"] for r in fed) / max(1, stored) * 1e6
            detail = {"sampler_per_s_without_db": rate_plain, "sampler_per_s_with_db": rate_fed,
                      "writer_cpu_us_per_sample": writer_us,
                      "pair_ratios": ratios, "samples_recorded": recorded, "samples_stored": stored,
                      "finish_s_max": max(r["finish_s"] for r in fed),
                      "failures": [r["failed"] for r in fed if r["failed"]], "dropped": sum(r["dropped"] for r in fed)}
            note = (f"median of {rounds} adjacent {seconds:g} s rounds without/with the {name} feed (pair ratios "
                    f"{min(ratios):.2f} - {max(ratios):.2f}; sampler {rate_fed:.0f}/s with, {rate_plain:.0f}/s "
                    f"without); {stored} of {recorded} samples stored; writer thread {writer_us:.0f} µs CPU per sample")
            figures += [Figure(f"db_sampler_ratio_{name}", ratio, "x", SAMPLER_GOAL, ">=", note,
                               detail),
                        Figure(f"db_samples_per_s_{name}", stored / seconds_fed, "/s", None, ">=",
                               f"samples stored per second of sampling ({name})", detail)]
    finally:
        session.close()
    return figures


# --- the query commands on a big database ------------------------------------------------------------------


def build(url: str, runs: int, per_run: int = LIMIT_KEYS) -> dict[str, Any]:
    """``runs`` runs of ``per_run`` measurements (10 runs per DUT), inserted in bulk: executemany on
    SQLite, COPY on PostgreSQL."""
    import json

    import sqlalchemy as sa

    from rig.db import schema
    from rig.db.store import Database

    db = Database(url)
    t0 = time.perf_counter()
    start = dt.datetime(2026, 1, 1)
    keys = [f"bench.limit_{k:02d}" for k in range(per_run)]

    def run_rows() -> Iterator[dict[str, Any]]:
        for i in range(1, runs + 1):
            yield {"id": i, "run_id": f"run-{i:06d}", "dut_serial": f"SN{(i - 1) // 10:05d}", "tier_v": 1000,
                   "operator": f"op{i % 7}", "rig_name": f"bench {i % 4 + 1}", "finished": True,
                   "outcome": "passed" if i % 23 else "failed", "started": start + dt.timedelta(minutes=50 * i),
                   "counts": {"passed": 28}, "meta": {"run_id": f"run-{i:06d}"}, "content_hash": f"{i:064x}",
                   "source": "sync"}

    def measurement_rows() -> Iterator[dict[str, Any]]:
        for i in range(1, runs + 1):
            for k, key in enumerate(keys):
                yield {"run_pk": i, "seq": k, "test": f"test_plans/test_x.py::test_{k % 12}", "name": key,
                       "value": 1.0 + 0.01 * ((i * 7 + k) % 50), "unit": "V", "low": 0.9, "high": 1.5,
                       "verdict": "PASS", "limit_key": key, "source": "bench", "confidence": "M",
                       "time_s": 10.0 * k, "wall_time": start + dt.timedelta(minutes=50 * i, seconds=10 * k)}

    with db.engine.begin() as c:
        if c.dialect.name == "postgresql":
            raw = c.connection.driver_connection
            with raw.cursor() as cursor:
                for table, rows in (("runs", run_rows()), ("measurements", measurement_rows())):
                    first = next(rows)
                    columns = list(first)
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in _chain(first, rows):
                            copy.write_row([json.dumps(v) if isinstance(v, dict) else v for v in row.values()])
                cursor.execute("SELECT setval('runs_id_seq', %s)", (runs,))
        else:
            batch: list[dict[str, Any]] = []
            for table, rows in ((schema.runs, run_rows()), (schema.measurements, measurement_rows())):
                for row in rows:
                    batch.append(row)
                    if len(batch) == 5000:
                        c.execute(table.insert(), batch)
                        batch = []
                if batch:
                    c.execute(table.insert(), batch)
                    batch = []
    # The planner's statistics (and PostgreSQL's visibility map), as a lab database's autovacuum keeps them.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text("VACUUM ANALYZE" if c.dialect.name == "postgresql" else "ANALYZE"))
    built = time.perf_counter() - t0
    db.close()
    return {"runs": runs, "measurements": runs * per_run, "build_s": built}


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def time_command(args: list[str], repeat: int = 5) -> tuple[float, int, float]:
    """Best wall time of ``repeat`` calls in this process, the number of output lines, and the CPU time of
    that call (on a shared machine the wall time includes waiting for a core)."""
    from click.testing import CliRunner

    from rig.cli import main

    best, lines, cpu = float("inf"), 0, float("nan")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
        assert result.exit_code == 0, result.output[-500:]
        lines = result.output.count("\n")
    return best, lines, cpu


def subprocess_wall(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of the command in a new process (Python's start and the imports included)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rig", *args], capture_output=True, check=True, timeout=120,
                   env={**os.environ, "RIG_DATABASE_URL": "off"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def query_figures(urls: dict[str, Any], quick: bool) -> list[Figure]:
    runs, repeat = (500, 2) if quick else (10_000, 5)
    figures = []
    for name in ("sqlite", "postgresql"):
        url = urls[name][1] if urls.get(name) else None
        if url is None:
            note = f"no PostgreSQL server: {urls.get('postgresql_error')}"
            figures += [Figure(f"{cmd}_wall_s_{name}", float("nan"), "s", QUERY_GOAL_S, "<=", note)
                        for cmd in ("history", "trend")]
            continue
        size = build(url, runs)
        for cmd, args in (("history", ["history", f"SN{runs // 20:05d}", "--csv"]),
                          ("trend", ["trend", "bench.limit_17", "--csv"])):
            wall, lines, cpu = time_command([*args, "--db", url], repeat)
            table, _, _ = time_command([*args[:-1], "--db", url], repeat)
            fresh, fresh_cpu = (float("nan"), float("nan")) if quick else subprocess_wall([*args, "--db", url])
            note = (f"{size['runs']:,} runs x {LIMIT_KEYS} measurements ({name}, built in {size['build_s']:.0f} s); "
                    f"{lines - 1} rows as CSV in process, best of {repeat} (CPU {cpu:.3f} s); table {table:.3f} s; "
                    f"new process {fresh:.2f} s (CPU {fresh_cpu:.2f} s)")
            figures.append(Figure(f"{cmd}_wall_s_{name}", wall, "s", QUERY_GOAL_S, "<=", note,
                                  {**size, "rows": lines - 1, "cpu_s": cpu, "table_s": table,
                                   "new_process_s": fresh, "new_process_cpu_s": fresh_cpu}))
    return figures


def run(quick: bool) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="rig-bench-db-") as tmp, backends(Path(tmp)) as urls:
        figures = sampler_figures(urls, quick, Path(tmp))
        figures += query_figures(urls, quick)
    return figures


if __name__ == "__main__":  # python -m bench.db [--quick]: this module alone
    for figure in run("--quick" in sys.argv):
        print(figure.name, figure.value, figure.note)
