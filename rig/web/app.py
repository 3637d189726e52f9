"""The lab dashboard (``rig serve``): a read-only Starlette app over the results database.

    app = create_app("sqlite:///results/rig.sqlite", token=None)
    uvicorn.run(app, host="127.0.0.1", port=8400)

Pages: ``/`` Lab (every bench, live by server-sent events from ``/lab/events``), ``/runs`` (filterable
list), ``/runs/<run id>`` (the run's report, ``rig.report``), ``/dut?serial=`` (one DUT's history),
``/trend?key=`` (one measurement across runs with its limits, inline SVG).

Read-only by construction: every route is GET, the database is opened without migrating, and nothing
here imports a driver or a session. Every value reaches the page through Jinja with autoescape on (DUT
serials and test names are typed by people). Every asset (CSS, the few lines of script) is served by the
app itself: lab networks are often isolated. With a token, every request must carry it (see ``TokenGate``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import jinja2
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rig import si
from rig.db import queries as db_queries
from rig.db.store import HEAD_REVISION, Database, current_revision, display_url
from rig.web import queries
from rig.web.svg import trend_svg

HERE = Path(__file__).parent
COOKIE = "rig_token"
OUTCOMES = ("passed", "failed", "tripped", "interrupted", "error", "running")
RUNS_LIMIT = 100
REPORTS_KEPT = 16
TREND_ROWS = 50  # the newest values listed under the plot


class DashboardError(Exception):
    """A one-line reason the dashboard cannot serve this database."""


def open_database(url: str) -> Database:
    """The results database as it is: the dashboard never migrates (that writes); an older schema is
    upgraded by any rig command that writes (``rig sync``)."""
    db = Database(url, upgrade=False)
    try:
        with db.engine.connect() as connection:
            revision = current_revision(connection)
    except Exception as exc:
        db.close()
        raise DashboardError(f"results database {display_url(url)}: {first_line(exc)}") from None
    if revision != HEAD_REVISION:
        db.close()
        raise DashboardError(f"results database {display_url(url)} is at schema revision {revision or 'none'}, this "
                             f"rig reads {HEAD_REVISION}: `rig sync` upgrades it in place (rig serve only reads)")
    return db


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- formatting for the templates ----------------------------------------------------------------------


def local(when: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return when.astimezone().strftime(fmt) if when is not None else ""


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def short_test(nodeid: str | None) -> str:
    return (nodeid or "").rsplit("/", 1)[-1].replace(".py::", "::")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(quantity=si.quantity, window=si.window, local=local, duration=duration, age=age,
                       short_test=short_test, plain=si.plain)
    env.globals.update(now_zone=lambda: dt.datetime.now().astimezone().strftime("UTC%z %Z"),
                       query=lambda **kw: urlencode({k: v for k, v in kw.items() if v not in (None, "")}))
    return env


# --- access token --------------------------------------------------------------------------------------


class TokenGate:
    """Every request must carry the token: ``Authorization: Bearer TOKEN``, or the cookie set when the
    browser first opened any page with ``?token=TOKEN`` (then redirected to the same page without it, so
    the token does not stay in the address bar or the history)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token")
        if given is not None and self._ok(given):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = quote(scope["path"]) + (f"?{urlencode(rest)}" if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        bearer = request.headers.get("authorization", "")
        header = bearer[7:] if bearer.lower().startswith("bearer ") else None
        if self._ok(header) or self._ok(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse("This lab dashboard needs its access token: open any page once with "
                                     "?token=TOKEN (a cookie keeps it), or send 'Authorization: Bearer TOKEN'.\n",
                                     status_code=401)
        await response(scope, receive, send)


class ServerTiming:
    """``Server-Timing: app;dur=MS`` on every response: the time from the request's arrival to the start of
    the response (queries and templates; the page body follows at once), shown by a browser's developer
    tools and read by ``python -m bench``'s ``web`` module."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={took:.1f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)


# --- the app --------------------------------------------------------------------------------------------


def _date(text: str | None, end_of_day: bool = False) -> tuple[dt.datetime | None, str | None]:
    """A YYYY-MM-DD filter in the server's local time; (None, message) when unreadable."""
    if not text:
        return None, None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None, f"not a date: {text!r} (expected e.g. 2026-03-01)"
    if end_of_day and len(text) <= 10:
        when += dt.timedelta(days=1)
    return (when if when.tzinfo else when.astimezone()), None


def create_app(url: str, *, token: str | None = None, stale_after_s: float = db_queries.STALE_AFTER_S,
               poll_s: float = 1.0, stopping: threading.Event | None = None) -> ASGIApp:
    """``stopping``: set by the server on Ctrl-C, so that open live streams end and the server stops at
    once rather than waiting for every browser tab to close."""
    db = open_database(url)
    stopping = stopping or threading.Event()
    env = environment()
    keys = queries.LimitKeys(db)
    render_lock = threading.Lock()  # the report's matplotlib figures: one at a time
    reports: OrderedDict[tuple[str, Any], str] = OrderedDict()  # finished runs' pages: plots take seconds

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("nav", name.removesuffix(".html"))
        body = env.get_template(name).render(database=db.name, **context)
        return HTMLResponse(body, status_code=status)

    def benches_html() -> str:
        try:
            benches = queries.lab(db, stale_after_s)
        except sa.exc.SQLAlchemyError as exc:  # the live page says so and keeps trying; the server goes on
            return env.get_template("_unreachable.html").render(database=db.name, reason=first_line(exc))
        return env.get_template("_benches.html").render(benches=benches)

    def lab(request: Request) -> HTMLResponse:
        return page("lab.html", benches_html=benches_html())

    def lab_fragment(request: Request) -> HTMLResponse:
        return HTMLResponse(benches_html())

    async def lab_events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            last, quiet = None, 0
            yield "retry: 2000\n\n"
            while not stopping.is_set() and not await request.is_disconnected():
                html = await anyio.to_thread.run_sync(benches_html)
                if html != last:
                    yield f"data: {json.dumps({'html': html})}\n\n"
                    last, quiet = html, 0
                else:
                    quiet += 1
                    if quiet * poll_s >= 15:  # a comment now and then keeps proxies from closing the stream
                        yield ": keep-alive\n\n"
                        quiet = 0
                await asyncio.sleep(poll_s)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def runs(request: Request) -> HTMLResponse:
        q = request.query_params
        since, bad_since = _date(q.get("since"))
        until, bad_until = _date(q.get("until"), end_of_day=True)
        outcome = q.get("outcome") if q.get("outcome") in OUTCOMES else None
        try:
            limit = max(1, min(int(q.get("limit", RUNS_LIMIT)), 5000))
        except ValueError:
            limit = RUNS_LIMIT
        rows = db_queries.list_runs(db, dut=q.get("dut") or None, rig=q.get("rig") or None, since=since, until=until,
                                    outcome=outcome, limit=limit)
        return page("runs.html", rows=rows, filters=dict(q), outcomes=OUTCOMES, limit=limit,
                    problems=[p for p in (bad_since, bad_until) if p])

    def run_page(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        record = queries.run_record(db, run_id)
        if record is None:
            return page("missing.html", status=404, what=f"No run {run_id} in this database.")
        key = (run_id, record["updated_at"])
        if key in reports:
            return HTMLResponse(reports[key])
        from rig.report import render_html

        run = queries.load_report_run(db, record)
        with render_lock:
            html, _ = render_html(run)
        bar = env.get_template("_runbar.html").render(run=run)
        head = '<meta http-equiv="refresh" content="10">' if not run.finished else ""
        html = html.replace("<head>", f"<head>{head}", 1).replace("<body>", f"<body>{bar}", 1)
        if run.finished and record["finished"]:  # a finished run's report changes only if it is stored again
            reports[key] = html
            while len(reports) > REPORTS_KEPT:
                reports.popitem(last=False)
        return HTMLResponse(html)

    def dut(request: Request) -> HTMLResponse:
        serial = request.query_params.get("serial", "").strip()
        if not serial:
            return page("dut.html", serial="", runs=[], groups=[])
        rows = db_queries.history(db, serial)
        groups: dict[str, dict[str, Any]] = {}
        for r in rows:
            group = groups.setdefault(r["run_id"], {"run": r, "measurements": []})
            if r["name"] is not None:
                group["measurements"].append(r)
        return page("dut.html", serial=serial, groups=list(groups.values())[::-1])

    def trend(request: Request) -> HTMLResponse:
        q = request.query_params
        key = q.get("key", "").strip()
        since, bad_since = _date(q.get("since"))
        until, bad_until = _date(q.get("until"), end_of_day=True)
        where = {"dut": q.get("dut") or None, "rig": q.get("rig") or None, "since": since, "until": until}
        points = queries.trend_points(db, key, **where) if key else None
        svg, legend = trend_svg(points, f"{key} across runs") if points else ("", [])
        values = [v for v in points.value if v is not None and math.isfinite(v)] if points else []
        stats, rows = None, []
        if points and values:
            stats = {"count": len(points), "runs": len(set(points.run_pk)), "min": min(values), "max": max(values),
                     "mean": sum(values) / len(values), "unit": points.unit, "fails": points.verdict.count("FAIL"),
                     "low": points.low[-1], "high": points.high[-1]}
            rows = queries.trend_newest(db, key, TREND_ROWS, **where)
        return page("trend.html", key=key, keys=keys.get(), filters=dict(q), rows=rows, stats=stats,
                    svg=svg, legend=legend, problems=[p for p in (bad_since, bad_until) if p])

    routes = [
        Route("/", lab, methods=["GET"]),
        Route("/lab/fragment", lab_fragment, methods=["GET"]),
        Route("/lab/events", lab_events, methods=["GET"]),
        Route("/runs", runs, methods=["GET"]),
        Route("/runs/{run_id:path}", run_page, methods=["GET"]),
        Route("/dut", dut, methods=["GET"]),
        Route("/trend", trend, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        db.close()

    async def unreachable(request: Request, exc: Exception) -> HTMLResponse:
        body = env.get_template("_unreachable.html").render(database=db.name, reason=first_line(exc))
        return page("missing.html", status=503, what=None, body=body)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={sa.exc.SQLAlchemyError: unreachable})
    app.state.db = db
    return ServerTiming(TokenGate(app, token) if token else app)
