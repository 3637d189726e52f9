"""The lab dashboard (``rig serve``) on a big results database: server time of the Runs and Trend pages.

``web_runs_ms_*``: ``GET /runs`` (the newest 100 runs with their test counts and measurement/FAIL counts),
and in the detail the same filtered by one DUT and by outcome. ``web_trend_ms_*``: ``GET /trend?key=...``
(one limit key across every run: 10 000 values drawn as inline SVG, the stats, the newest 50 in a table),
and in the detail the same for one DUT lot. The database is ``bench.db.build``'s: 10 000 runs x 60
measurements (1 000 DUTs x 10 runs, 60 limit keys), SQLite and, when the machine has one, PostgreSQL.

Server time is the app's own ``Server-Timing`` header (``rig.web.app.ServerTiming``: from the request's
arrival to the response's start, i.e. routing, queries and templates), requests made in this process
through Starlette's test client; best of 7 after one warm-up call that also fills the Trend page's cached
list of limit keys (its first call is in the detail, as are the median, the process CPU time and the
client's wall time of the best call). Goal <= 300 ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Figure

GOAL_MS = 300.0
REPEAT = 7


def server_ms(response: Any) -> float:
    """The app's own ``Server-Timing: app;dur=MS`` (rig.web.app.ServerTiming)."""
    return float(response.headers["server-timing"].split("dur=")[1])


def time_page(client: Any, path: str, repeat: int) -> dict[str, Any]:
    first = client.get(path)
    assert first.status_code == 200, (path, first.status_code)
    times, walls, cpu = [], [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(path)
        walls.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        times.append(server_ms(response))
        assert response.status_code == 200
    best = min(range(repeat), key=times.__getitem__)
    return {"best_ms": times[best], "median_ms": statistics.median(times), "cpu_ms": cpu[best],
            "client_wall_ms": walls[best], "first_ms": server_ms(first), "bytes": len(response.content)}


def page_figures(url: str, name: str, runs: int, repeat: int, size: dict[str, Any]) -> list[Figure]:
    from starlette.testclient import TestClient

    from rig.web.app import create_app

    lot = f"SN{runs // 20:05d}"
    with TestClient(create_app(url)) as client:
        runs_page = time_page(client, "/runs", repeat)
        by_dut = time_page(client, f"/runs?dut={lot}", repeat)
        failed = time_page(client, "/runs?outcome=failed", repeat)
        trend = time_page(client, "/trend?key=bench.limit_17", repeat)
        trend_lot = time_page(client, f"/trend?key=bench.limit_17&dut={lot[:-1]}*", repeat)
    where = f"{size['runs']:,} runs x {size['measurements'] // max(size['runs'], 1)} measurements ({name})"

    def spread(page: dict[str, Any]) -> str:
        return (f"server time, best of {repeat}, median {page['median_ms']:.0f} ms, CPU {page['cpu_ms']:.0f} ms, "
                f"client {page['client_wall_ms']:.0f} ms")

    return [
        Figure(f"web_runs_ms_{name}", runs_page["best_ms"], "ms", GOAL_MS, "<=",
               f"GET /runs (newest 100) on {where}: {spread(runs_page)}; by DUT {by_dut['best_ms']:.0f} ms, "
               f"failed only {failed['best_ms']:.0f} ms",
               {"runs": runs_page, "by_dut": by_dut, "failed": failed, **size}),
        Figure(f"web_trend_ms_{name}", trend["best_ms"], "ms", GOAL_MS, "<=",
               f"GET /trend?key=bench.limit_17 ({size['runs']:,} values as SVG, {trend['bytes'] // 1024} kB) on "
               f"{where}: {spread(trend)}; first call (limit keys read) {trend['first_ms']:.0f} ms; one DUT lot "
               f"{trend_lot['best_ms']:.0f} ms",
               {"trend": trend, "trend_lot": trend_lot, **size}),
    ]


def run(quick: bool) -> list[Figure]:
    from bench.db import backends, build

    runs, repeat = (500, 2) if quick else (10_000, REPEAT)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="rig-bench-web-") as tmp, backends(Path(tmp)) as urls:
        for name in ("sqlite", "postgresql"):
            url = urls[name][1] if urls.get(name) else None
            if url is None:
                note = f"no PostgreSQL server: {urls.get('postgresql_error')}"
                figures += [Figure(f"web_{page}_ms_{name}", float("nan"), "ms", GOAL_MS, "<=", note)
                            for page in ("runs", "trend")]
                continue
            size = build(url, runs)
            figures += page_figures(url, name, runs, repeat, size)
    return figures


if __name__ == "__main__":  # python -m bench.web [--quick]: this module alone
    for figure in run("--quick" in sys.argv):
        print(figure.name, f"{figure.value:.1f}", figure.note)
