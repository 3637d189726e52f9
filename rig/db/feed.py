"""A running session's rows into the results database, from a thread of its own.

The session (``rig.plugin.RigRun``) hands over each sample (a rig listener) and each measurement as it
is recorded; that costs the sampler one ``put_nowait`` on a bounded queue and nothing else: formatting
and database writes happen on the writer thread. Measurements are committed at once, samples in
batches (every second, or every ``BATCH`` samples). The bench's status row (owner, DUT, test, state,
hottest contact, since, last update) is refreshed every ``BENCH_PERIOD_S``.

The CSV files stay the record. If the database cannot be reached, or falls behind so far that the
queue is full, the run goes on: the feed says so once (run.log and the terminal), stops writing, and
``rig sync`` uploads what is missing later. When the run ends the feed stores the final run.json, the
tests from junit.xml, and, only if it holds every row of the folder, the folder's content hash, so
that ``rig sync`` then leaves the run alone.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.bench_identity import bench_key
from rig.db import locate, schema
from rig.db.records import (
    cell,
    content_hash,
    measurement_row,
    meta_children,
    read_meta,
    run_row,
    tests_of,
    utc,
)
from rig.recorder import MEASUREMENT_COLUMNS, _cell, iso
from rig.sampler import row

log = logging.getLogger("rig.db")

QUEUE_SIZE = 20_000  # samples and measurements waiting for the writer (minutes of samples)
BATCH = 500
FLUSH_S = 1.0
BENCH_PERIOD_S = 2.0
FINISH_TIMEOUT_S = 30.0  # real seconds the end of a run waits for the writer before leaving it behind

SYNC_HINT = "the run goes on (the CSV files are the record); `rig sync` uploads what is missing later"


def say_to_operator(config: Any) -> Callable[[str], None]:
    """A one-line message to run.log and to the terminal the operator watches (rig run's live display,
    or pytest's terminal), from any thread."""

    def say(text: str) -> None:
        log.warning(text)
        manager = config.pluginmanager
        display = next((p for p in manager.get_plugins() if hasattr(p, "pause_display") and hasattr(p, "console")),
                       None)
        if display is not None:
            display.console.print(text, markup=False, highlight=False)
            return
        terminal = manager.getplugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(text)

    return say


class RunFeed:
    """One session's writer thread. Built by ``RunFeed.start_for(rig_run, rig_config)``."""

    def __init__(self, url: str, run: Any, bench_key: str, say: Callable[[str], None]) -> None:
        self.url = url
        self.run = run  # rig.plugin.RigRun: its recorder, operator, dut and rig
        self.recorder = run.recorder
        self.bench_key = bench_key
        self.say = say
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(QUEUE_SIZE)
        self.failed: str | None = None
        self.dropped = 0
        self.samples_written = 0
        self.measurements_written = 0
        self.started = time.time()
        self._thread = threading.Thread(target=self._work, name="results-db", daemon=True)

    @classmethod
    def start_for(cls, run: Any, rig_config: Any) -> RunFeed | None:
        """The caller attaches ``on_rig_event`` to the rig together with the recorder's listener; the
        database is opened on the writer thread, so a slow or unreachable one never delays the session."""
        say = say_to_operator(run.config)
        where = locate(run.config.getoption("results"), run.rig_config)
        if where.url is None:
            if not where.origin.startswith("disabled"):
                say(f"results database: {where.origin}; {SYNC_HINT}")
            return None
        return cls(where.url, run, bench_key(rig_config), say).begin()

    def begin(self) -> RunFeed:
        """Queue the run's first row and start the writer (the caller attaches ``on_rig_event``)."""
        self._put("begin", None)
        self._thread.start()
        return self

    # -- the session's side: never blocks ---------------------------------------------------------

    def _put(self, kind: str, item: Any) -> None:
        if self.failed is not None:
            return
        try:
            self.queue.put_nowait((kind, item))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                self.say(f"results database: falling behind, rows no longer stored live; {SYNC_HINT}")

    def on_rig_event(self, kind: str, payload: Any) -> None:
        if kind == "sample":
            self._put("sample", (payload, self.recorder.test))
        elif kind == "trip":
            self._put("state", "tripped")

    def measurement(self, m: Any) -> None:
        self._put("measurement", m)

    def finish(self) -> None:
        """At the end of the run (after the recorder finished): store the final state, wait for the writer."""
        self._put("finish", None)
        self._thread.join(FINISH_TIMEOUT_S)
        if self._thread.is_alive() and self.failed is None:
            self.say(f"results database: still writing after {FINISH_TIMEOUT_S:g} s; left behind; {SYNC_HINT}")

    # -- the writer thread ------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        from rig.db.store import display_url

        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        self.failed = f"{display_url(self.url)}: {first_line}"
        self.say(f"results database unreachable ({self.failed}); {SYNC_HINT}")
        log.debug("results database failure", exc_info=exc)

    def _work(self) -> None:
        try:
            from rig.db.store import Database

            self.db = Database(self.url)
        except Exception as exc:
            self._fail(exc)
            return
        try:
            self._loop()
        except Exception as exc:
            self._fail(exc)
        finally:
            self.db.close()

    def _loop(self) -> None:
        samples: list[tuple[Any, str]] = []
        last_flush = last_bench = time.monotonic()
        latest: Any = None
        while True:
            batch: list[tuple[str, Any]] = []
            try:
                batch.append(self.queue.get(timeout=0.2))
                while len(batch) < 5 * BATCH:
                    batch.append(self.queue.get_nowait())
            except queue.Empty:
                pass
            measurements, state, finish = [], None, False
            for kind, item in batch:
                if kind == "sample":
                    samples.append(item)
                    latest = item
                elif kind == "measurement":
                    measurements.append(item)
                elif kind == "state":
                    state = item
                elif kind == "begin":
                    self._begin()
                    state = "running"  # the bench row is written below, with the newest sample of this batch
                elif kind == "finish":
                    finish = True
            now = time.monotonic()
            due_samples = samples and (len(samples) >= BATCH or now - last_flush >= FLUSH_S)
            due_bench = state is not None or now - last_bench >= BENCH_PERIOD_S
            if measurements or due_samples or due_bench or finish:
                with self.db.engine.begin() as connection:
                    self._write(connection, samples, measurements)
                    if due_bench:
                        self._bench(connection, latest, state)
                samples = []
                last_flush = now
                if due_bench:
                    last_bench = now
            if finish:
                self._finish()
                return

    def _begin(self) -> None:
        with self.db.engine.begin() as connection:
            self.pk = self.db.put_run(connection, self._run_row(), replace_children=True)

    def _run_row(self) -> dict[str, Any]:
        # run.json as the recorder last wrote it (atomically): never a dict another thread is changing.
        meta = read_meta(Path(self.recorder.folder))
        return {**run_row(meta, self.recorder.folder, self.bench_key), "content_hash": None, "source": "live"}

    def _write(self, connection: Any, samples: list[tuple[Any, str]], measurements: list[Any]) -> None:
        rows = []
        for sample, test in samples:
            rows.append({**self._sample_row(sample, test), "seq": self.samples_written})
            self.samples_written += 1
        self.db.insert(connection, schema.samples, self.pk, rows)
        rows = []
        for m in measurements:
            rows.append({**measurement_row(self._measurement_cells(m)), "seq": self.measurements_written})
            self.measurements_written += 1
        self.db.insert(connection, schema.measurements, self.pk, rows)

    def _sample_row(self, sample: Any, test: str) -> dict[str, Any]:
        """The ``samples`` row that ``rig sync`` makes of this sample's line in samples.csv (the values
        rounded as the recorder writes them, ``records.cell`` applied), built without the text in between:
        this runs for every sample and its CPU time is taken from the session's threads."""
        values = row(sample)
        data: dict[str, Any] = {}
        for column in self.recorder.columns:
            value = values.get(column)
            if value is None or value == "":
                continue
            if isinstance(value, float):
                data[column] = cell(f"{value:.6g}") if not math.isfinite(value) else float(f"{value:.6g}")
            elif isinstance(value, int):
                data[column] = float(value)
            else:
                data[column] = cell(str(value))
        errors = "; ".join(str(e) for e in sample.errors.values())
        return {"time_s": float(f"{sample.time_s - self.recorder.origin:.3f}"), "wall_time": utc(iso(sample.wall_time)),
                "test": test, "data": data, "errors": errors or None}

    def _sample_cells(self, sample: Any, test: str) -> list[str]:
        """The samples.csv line ``rig.recorder`` writes for this sample (``tests/test_db.py`` checks that
        ``_sample_row`` equals ``sample_row`` of it)."""
        values = row(sample)
        errors = "; ".join(str(e) for e in sample.errors.values())
        return [f"{sample.time_s - self.recorder.origin:.3f}", iso(sample.wall_time), test,
                *(str(_cell(values.get(c, ""))) for c in self.recorder.columns), errors]

    def _measurement_cells(self, m: Any) -> dict[str, str]:
        cells = [f"{m.time_s - self.recorder.origin:.3f}", iso(m.wall_time), m.test, m.name, str(_cell(m.value)),
                 m.unit, "" if m.low is None else str(_cell(m.low)), "" if m.high is None else str(_cell(m.high)),
                 m.verdict, m.limit, m.source, m.confidence]
        return dict(zip(MEASUREMENT_COLUMNS, cells, strict=True))

    def _bench(self, connection: Any, latest: tuple[Any, str] | None, state: str | None) -> None:
        row: dict[str, Any] = {
            "bench_key": self.bench_key, "rig_name": self.run.rig.config.name, "owner": self.run.operator,
            "host": platform.node(), "pid": os.getpid(), "run_id": self.recorder.metadata.get("run_id"),
            "dut_serial": self.run.dut.serial, "test": self.recorder.test or None,
        }
        # Between the start and the end the state is the rig's own: tripped until the next test re-arms it.
        row["state"] = state if state is not None else ("tripped" if self.run.rig.trip else "running")
        if state == "running":
            from rig.db.store import now_utc

            row |= {"since": now_utc(), "outcome": None, "hottest_c": None, "hottest_contact": None}
        if latest is not None and latest[0].fixture is not None:
            fixture = latest[0].fixture
            hottest = max((fixture.contact_temp_dc_plus, "DC+"), (fixture.contact_temp_dc_minus, "DC-"))
            row |= {"hottest_c": hottest[0], "hottest_contact": hottest[1]}
        row["live"] = self._live(latest, row["test"])
        self.db.put_bench(connection, row)

    def _live(self, latest: tuple[Any, str] | None, test: str | None) -> dict[str, Any]:
        """What the lab dashboard shows beside the row (benches.live): bus voltage, inlet current, the trip
        limit of the hottest contact, the current test's elapsed time and the hold in progress, in rig
        seconds. Read from the session's objects on this thread: a glitch costs the readings, not the run."""
        import math

        live: dict[str, Any] = {}
        try:
            rig = self.run.rig
            now = rig.clock.now()
            if test != getattr(self, "_live_test", None):
                self._live_test, self._live_test_since = test, now
            if test:
                live["test_elapsed_s"] = round(now - self._live_test_since, 1)
            live["trip_c"] = rig.limits.max_temperature.value
            fixture = latest[0].fixture if latest is not None else None
            if fixture is not None:
                for key, value in (("bus_v", fixture.inlet_voltage), ("inlet_a", fixture.inlet_current)):
                    if isinstance(value, float | int) and math.isfinite(value):
                        live[key] = round(float(value), 3)
            activity = rig.activity
            if activity is not None:
                live |= {"hold": activity.label, "hold_elapsed_s": round(activity.elapsed(now), 1),
                         "hold_remaining_s": (None if activity.remaining(now) is None
                                              else round(activity.remaining(now), 1))}
        except Exception:
            log.debug("bench live readings", exc_info=True)
        return live

    def _finish(self) -> None:
        folder = Path(self.recorder.folder)
        meta = read_meta(folder)
        measured = [m.test for m in list(self.recorder.measurements)]
        with self.db.engine.begin() as connection:
            pk = self.db.put_run(connection, self._run_row(), replace_children=False)
            self.db.put_meta_children(connection, pk, tests_of(folder, measured, meta.get("finished") is True),
                                      meta_children(meta))
            whole = (self.dropped == 0 and self.measurements_written == len(self.recorder.measurements)
                     and self._reconcile(connection, folder))
            self.db.put_bench(connection, {"bench_key": self.bench_key, "state": "free",
                                           "outcome": meta.get("outcome"), "test": None, "live": None})
        if not whole:
            # Rows went missing on the way (a full queue): the files are complete, so store them whole.
            from rig.db.records import read_folder

            self.db.write_folder(read_folder(folder), content_hash(folder), source="live")
        else:
            with self.db.engine.begin() as connection:
                connection.execute(schema.runs.update().where(schema.runs.c.id == self.pk)
                                   .values(content_hash=content_hash(folder)))

    def _reconcile(self, connection: Any, folder: Path) -> bool:
        """Check the stored samples against samples.csv, one by one. The test name is read a moment after
        the recorder read it, so a sample taken as one test ends may carry the neighbour's name: such
        names are set to the file's. False if anything else differs (count, order, time)."""
        import sqlalchemy as sa

        from rig.db.records import csv_rows, number

        rows = csv_rows(folder / "samples.csv")
        next(rows, None)
        recorded = [(number(r[0]), r[2]) for r in rows]
        s = schema.samples
        stored = connection.execute(sa.select(s.c.seq, s.c.time_s, s.c.test).where(s.c.run_pk == self.pk)
                                    .order_by(s.c.seq)).all()
        if len(stored) != len(recorded) or any(t != r[0] for (_, t, _), r in zip(stored, recorded, strict=True)):
            return False
        fixes = [{"pk": self.pk, "number": seq, "name": r[1]}
                 for (seq, _, test), r in zip(stored, recorded, strict=True) if test != r[1]]
        if fixes:
            connection.execute(s.update().where(s.c.run_pk == sa.bindparam("pk"), s.c.seq == sa.bindparam("number"))
                               .values(test=sa.bindparam("name")), fixes)
            log.info("results database: %d sample(s) at test boundaries renamed as in samples.csv", len(fixes))
        return True
