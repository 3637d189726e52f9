"""The report as one self-contained HTML page (inline CSS, plots as ``data:`` URIs, no script, no CDN),
laid out for a lab file: verdicts first, then what was tested on what, by whom, with which instruments,
then the evidence (safety events, plots, every measurement), then a sign-off block. Prints on A4.

    page = render(run, verdicts(run), plots(run, rows))

Every value passes through ``rig.si``: SI prefixes, no float noise, no Python literals.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from rig import si
from rig.report.plots import Plot
from rig.report.run import Result, Run, junit_key
from rig.report.verdicts import NOT_PASSED, NOT_RUN, PASS, SKIPPED, Trip, VerdictRow, overall, trips

# Fields of run.json this page shows in their own place; any other field is listed under "Other records".
SHOWN = {"run_id", "dut", "tier", "operator", "started", "ended", "command", "host", "rig", "profile", "limits",
         "effective_limits", "instruments", "calibration_override", "software", "planned_tests", "safety_trips",
         "trips", "prompts", "finished", "outcome", "counts", "faults", "exit_status", "final_safe_state",
         "incomplete_safe_states", "capabilities"}

CSS = """
:root { --red: #b00020; --green: #17692c; --amber: #8a5a00; --grey: #666; --line: #c9c9c9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b;
       margin: 0 auto; max-width: 1180px; padding: 1.2em 1.5em 3em; }
h1 { font-size: 1.6em; margin: 0 0 .1em; } h1 small { font-weight: normal; color: var(--grey); font-size: .6em; }
h2 { font-size: 1.15em; margin: 1.8em 0 .5em; padding-bottom: .15em; border-bottom: 2px solid #333; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
p { margin: .4em 0; }
.sub { color: var(--grey); margin: 0 0 .8em; }
.sim { border: 3px solid var(--red); color: var(--red); background: #fff0f0; padding: .5em .9em; margin: .6em 0;
       font-weight: bold; letter-spacing: .02em; }
.sim b { font-size: 1.25em; letter-spacing: .12em; }
.watermark { position: fixed; top: 45%; left: 0; right: 0; text-align: center; transform: rotate(-28deg);
             font-size: 110px; font-weight: 800; letter-spacing: .1em; color: rgba(176, 0, 32, .06);
             pointer-events: none; z-index: -1; }
.overall { display: flex; gap: 1.2em; align-items: center; border: 2px solid; padding: .6em 1em; margin: .8em 0; }
.overall .word { font-size: 2em; font-weight: 800; letter-spacing: .05em; }
.overall.PASS { border-color: var(--green); background: #eef8f0; } .overall.PASS .word { color: var(--green); }
.overall.FAIL { border-color: var(--red); background: #fdf0f1; } .overall.FAIL .word { color: var(--red); }
.overall.INCOMPLETE { border-color: var(--amber); background: #fff8e6; }
.overall.INCOMPLETE .word { color: var(--amber); }
.facts { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: .2em 1.2em; margin: .4em 0; }
.facts div { min-width: 0; overflow-wrap: anywhere; }
.facts span { display: block; color: var(--grey); font-size: .8em; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; margin: .4em 0 .8em; font-size: .92em; }
th, td { border: 1px solid var(--line); padding: .28em .45em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; word-break: normal; }
thead th { background: #eee; font-weight: 600; }
table.kv th { width: 13em; background: #f6f6f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; overflow-wrap: normal; }
td.n { text-align: right; color: var(--grey); }
.mod { display: block; color: var(--grey); font-size: .82em; }
.small { font-size: .85em; color: #444; }
.mono, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .86em; }
.v { font-weight: 700; white-space: nowrap; }
.v-PASS { color: var(--green); } .v-SKIPPED { color: var(--grey); }
.v-FAIL, .v-ERROR, .v-INTERRUPTED, .v-NOT-RUN, .v-NO-VERDICT { color: var(--red); }
tr.bad td { background: #fdf0f1; }
.tag { display: inline-block; font-size: .78em; font-weight: 600; padding: 0 .45em; border-radius: 3px;
       margin: .1em .3em .1em 0; white-space: nowrap; }
.tag.expected { background: #e8eef8; color: #1f3f7f; border: 1px solid #9fb3d9; }
.tag.unexpected { background: var(--red); color: white; }
.tag.warn { background: #fff3cd; color: var(--amber); border: 1px solid #e0b000; }
.figs { color: #333; }
ul.fails { margin: .3em 0; padding-left: 1.3em; } ul.fails li { margin: .25em 0; }
.ok { color: var(--green); font-weight: 600; }
.cal-expired { color: var(--red); font-weight: 700; } .cal-soon { color: var(--amber); font-weight: 600; }
.banner { padding: .6em 1em; margin: .6em 0; border-left: 6px solid var(--amber); background: #fff8e6; }
figure { margin: .8em 0 1.4em; } figure img { width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #444; margin-top: .2em; }
.sign { display: grid; grid-template-columns: 2fr 2fr 1fr; gap: 1.5em; margin-top: 1em; }
.sign div { border-top: 1px solid #333; padding-top: .2em; font-size: .85em; color: var(--grey); min-height: 3.5em; }
footer { margin-top: 2em; font-size: .78em; color: var(--grey); overflow-wrap: anywhere; }
@page { size: A4; margin: 13mm 12mm 14mm; }
@media print {
  body { font-size: 9.5pt; max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { font-size: 8.5pt; } thead { display: table-header-group; }
  tr, figure, .overall, .sign, .sim { break-inside: avoid; page-break-inside: avoid; }
  figure img { max-height: 120mm; width: auto; max-width: 100%; }
  .facts { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  a { color: inherit; text-decoration: none; }
}
"""


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def verdict_badge(verdict: str) -> str:
    return f'<span class="v v-{e(verdict.replace(" ", "-"))}">{e(verdict)}</span>'


def breakable(text: str) -> str:
    """Escaped, with line-break chances after "_", "." and before "[" (long test names wrap, not overflow)."""
    return e(text).replace("_", "_<wbr>").replace(".", ".<wbr>").replace("[", "<wbr>[")


def when(text: Any) -> str:
    """An ISO time as "2026-12-02 07:03:27 UTC+00:00"; anything else as given."""
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return si.plain(text)
    zone = moment.strftime("%z")
    zone = f" UTC{zone[:3]}:{zone[3:]}" if zone else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{zone}"


def _duration(meta: dict[str, Any], run: Run) -> str:
    """Wall-clock duration, and the rig time it stands for on a time-scaled (simulated) bench."""
    try:
        wall = (dt.datetime.fromisoformat(str(meta["ended"])) - dt.datetime.fromisoformat(str(meta["started"])))
    except (KeyError, ValueError, TypeError):
        return ""
    text = _span(wall.total_seconds())
    scale = _get(meta, "rig", "time_scale")
    times = [t for t in run.samples.numbers("time_s") if math.isfinite(t)]
    if isinstance(scale, int | float) and scale != 1 and times:
        text += f" ({_span(max(times) - min(times))} of rig time at {si.plain(float(scale))}×)"
    return text


def _span(seconds: float) -> str:
    total = round(seconds)
    if total >= 3600:
        return f"{total // 3600} h {total % 3600 // 60:02d} min"
    return f"{total // 60} min {total % 60:02d} s" if total >= 60 else f"{total} s"


def _get(meta: dict[str, Any], *path: str) -> Any:
    value: Any = meta
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# --- sections ---------------------------------------------------------------------------------------


def header(run: Run, rows: Sequence[VerdictRow]) -> str:
    meta = run.meta
    serial = _serial(meta)
    word, tally = overall(run, rows)
    run_trips = trips(run, {junit_key(c.nodeid): c for c in run.cases or []})
    expected = sum(t.expected for t in run_trips)
    unexpected = len(run_trips) - expected
    extra = []
    if unexpected:
        extra.append(f'<span class="tag unexpected">{unexpected} unexpected safety trip{"s" * (unexpected > 1)}</span>')
    expired = expired_calibrations(run)
    if expired:
        extra.append(f'<span class="tag warn">calibration expired: {e(", ".join(expired))}</span>')
    if expected:
        extra.append(f'<span class="tag expected">{expected} expected trip{"s" * (expected > 1)} '
                     f"(caused on purpose by the test)</span>")
    out = [f"<h1>Inlet test report: {e(serial)} <small>run {e(run.name)}</small></h1>"]
    if run.simulated:
        faults = _get(meta, "rig", "sim_faults") or []
        injected = f" Faults injected: {e(', '.join(map(str, faults)))}." if faults else ""
        out.append('<div class="watermark">SIMULATED</div>')
        out.append(f'<div class="sim"><b>SIMULATED BENCH</b> — these results come from the simulated bench, not '
                   f"from hardware; they are no evidence about a real inlet.{injected}</div>")
    out.append(f'<div class="overall {word}"><span class="word">{word}</span><span>{e(tally)}'
               f"<br>{' '.join(extra)} <span class=\"small\">recorded outcome: {e(run.outcome)}"
               f"{_exit(meta)}</span></span></div>")
    if not run.finished:
        out.append('<div class="banner"><b>Unfinished run.</b> run.json says the run did not finish (outcome '
                   f"&ldquo;{e(run.outcome)}&rdquo;): the data end at the last complete sample; results are partial."
                   "</div>")
    facts = [("DUT", serial), ("tier / rated current", _dut_rating(meta)), ("operator", si.plain(meta.get("operator"))),
             ("rig", si.plain(_get(meta, "rig", "name") or meta.get("rig"))),
             ("started", when(meta.get("started")) if meta.get("started") else "—"),
             ("duration", _duration(meta, run) or "—"),
             ("profile", _profile_name(meta)),
             ("host", si.plain(meta.get("host")))]
    out.append('<div class="facts">' + "".join(f"<div><span>{e(k)}</span>{e(v)}</div>" for k, v in facts) + "</div>")
    return "\n".join(out)


def _serial(meta: dict[str, Any]) -> str:
    """The DUT serial: run.json ``dut.serial`` (or a plain ``dut`` string in older runs)."""
    dut = meta.get("dut")
    return str((dut.get("serial") if isinstance(dut, dict) else dut) or "—")


def _profile_name(meta: dict[str, Any]) -> str:
    return " ".join(str(p) for p in (_get(meta, "profile", "name"), _get(meta, "profile", "version")) if p) or "—"


def _exit(meta: dict[str, Any]) -> str:
    status = meta.get("exit_status")
    return f", exit status {e(status)}" if status is not None else ""


def _dut_rating(meta: dict[str, Any]) -> str:
    tier = _get(meta, "dut", "tier_v") or meta.get("tier")
    rated = _get(meta, "dut", "rated_current_a") or meta.get("rated_current")
    parts = [si.quantity(float(v), u) for v, u in ((tier, "V"), (rated, "A")) if isinstance(v, int | float)]
    return " / ".join(parts) or "—"


def verdict_table(rows: Sequence[VerdictRow]) -> str:
    if not rows:
        return "<p>No tests recorded.</p>"
    body = []
    for v in rows:
        tags = "".join('<span class="tag unexpected">SAFETY TRIP</span>' if not t.expected and t.reason in v.reason
                       else _trip_tag(t) for t in v.trips)  # the reason already names the trip: no repeat
        detail = e(v.reason) if v.verdict != PASS else _figures(v.results)
        css = ' class="bad"' if v.verdict in NOT_PASSED else ""
        body.append(f'<tr{css}><td class="n">{v.number}</td>'
                    f'<td><b>{breakable(v.name)}</b><span class="mod">{e(v.module)}'
                    f'</span></td><td>{verdict_badge(v.verdict)}</td>'
                    f"<td>{tags}{detail}</td></tr>")
    return ('<table class="verdicts"><colgroup><col style="width:2.6em"><col style="width:38%">'
            '<col style="width:8.8em"><col></colgroup><thead><tr><th>#</th><th>test</th><th>verdict</th>'
            f"<th>reason (non-pass) / key figures</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def _trip_tag(t: Trip) -> str:
    if t.expected:
        return f'<span class="tag expected" title="{e(t.basis)}">expected trip</span>{e(t.reason)}<br>'
    return f'<span class="tag unexpected">SAFETY TRIP</span>{e(t.reason)}<br>'


def _figures(results: Iterable[Result], limit: int = 4) -> str:
    items = [f"{e(r.name)} = {e(si.quantity(r.value, r.unit))}" for r in results]
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return f'<span class="figs">{", ".join(items[:limit])}{e(more)}</span>' if items else ""


def failures(run: Run, rows: Sequence[VerdictRow]) -> str:
    items = [f"<li><b>#{v.number} {e(v.name)}</b>: {verdict_badge(v.verdict)} — {e(v.reason)}</li>"
             for v in rows if v.verdict in NOT_PASSED and v.verdict != NOT_RUN]
    never = [v for v in rows if v.verdict == NOT_RUN]
    if never:  # one line for all of them: the reason is the same
        items.append(f'<li>{verdict_badge(NOT_RUN)} — {len(never)} test{"s" * (len(never) > 1)} '
                     f"not reached (the run ended first, outcome: {e(run.outcome)}): "
                     + ", ".join(f"#{v.number} {e(v.name)}" for v in never) + "</li>")
    listed = {junit_key(v.nodeid) for v in rows if v.verdict in NOT_PASSED}
    for t in trips(run, {junit_key(c.nodeid): c for c in run.cases or []}):
        if not t.expected and junit_key(t.test) not in listed:
            items.append(f'<li><span class="tag unexpected">SAFETY TRIP</span>{e(t.reason)}'
                         f"{' (in ' + e(t.test) + ')' if t.test else ' (between tests)'}</li>")
    for entry in run.meta.get("incomplete_safe_states") or []:
        reason = entry.get("reason") if isinstance(entry, dict) else entry
        items.append(f'<li><span class="tag unexpected">SAFE STATE INCOMPLETE</span>{e(reason)}</li>')
    for fault in run.meta.get("faults") or []:
        if not any(junit_key(str(fault).split(": ", 1)[0]) == k for k in listed):
            items.append(f"<li>fault: {e(si.in_text(str(fault)))}</li>")
    expired = expired_calibrations(run)
    if run.meta.get("calibration_override") is True or expired:
        names = f": calibration of {', '.join(expired)} had expired" if expired else ""
        items.append('<li><span class="tag warn">CALIBRATION OVERRIDE</span>the run was started with '
                     f"--allow-expired-calibration{e(names)}</li>")
    skipped = [v for v in rows if v.verdict == SKIPPED]
    if not items:
        text = '<p class="ok">None: every test passed, no unexpected safety trip, no calibration override.</p>'
    else:
        text = f'<ul class="fails">{"".join(items)}</ul>'
    if skipped:
        text += "<p class=\"small\">Skipped (not failures): " + "; ".join(
            f"#{v.number} {e(v.name)}: {e(v.reason)}" for v in skipped) + "</p>"
    return text


def identity(run: Run) -> str:
    meta = run.meta
    rig = meta.get("rig") if isinstance(meta.get("rig"), dict) else {}
    profile = meta.get("profile") if isinstance(meta.get("profile"), dict) else {}
    software = meta.get("software") if isinstance(meta.get("software"), dict) else {}
    rig_file = rig.get("file") or "—"
    rig_hash = rig.get("sha256") or ("none: a simulated bench has no rig file" if run.simulated else "not recorded")
    rows = [
        ("DUT serial", _serial(meta)),
        ("DUT rating", _dut_rating(meta)),
        ("operator", si.plain(meta.get("operator"))),
        ("started / ended", f"{when(meta.get('started')) if meta.get('started') else '—'}  →  "
                            f"{when(meta.get('ended')) if meta.get('ended') else 'not ended'}"),
        ("rig", f"{si.plain(rig.get('name') or meta.get('rig'))}"
                f"{'  (SIMULATED, time scale ' + si.plain(rig.get('time_scale')) + '×)' if run.simulated else ''}"),
        ("rig file", rig_file),
        ("rig file SHA-256", rig_hash),
        ("profile", _profile_name(meta)),
        ("profile file", si.plain(profile.get("path"))),
        ("profile SHA-256", si.plain(profile.get("sha256") or "not recorded")),
        ("host", si.plain(meta.get("host"))),
        ("command", si.plain(meta.get("command"))),
        ("software", ", ".join(f"{k} {v}" for k, v in software.items()) or "—"),
        ("samples recorded", str(len(run.samples))),
    ]
    mono = {"rig file SHA-256", "profile SHA-256", "command", "rig file", "profile file"}
    body = "".join(f'<tr><th>{e(k)}</th><td class="{"mono" if k in mono else ""}">{e(v)}</td></tr>' for k, v in rows)
    return f'<table class="kv">{body}</table>'


def calibration(due: Any, started: Any, simulated: bool) -> tuple[str, str]:
    """(text, css class) of an instrument's calibration due date as of the run's start."""
    if not due:
        return ("not applicable (simulated)" if simulated else "not recorded in the rig file"), ""
    try:
        due_date = dt.date.fromisoformat(str(due)[:10])
        day = dt.datetime.fromisoformat(str(started)).date() if started else dt.date.today()
    except ValueError:
        return si.plain(due), ""
    days = (due_date - day).days
    if days < 0:
        return f"{due_date.isoformat()}: EXPIRED {-days} days before the run", "cal-expired"
    if days <= 30:
        return f"{due_date.isoformat()}: due {days} days after the run", "cal-soon"
    return f"{due_date.isoformat()}: valid", ""


def expired_calibrations(run: Run) -> list[str]:
    """Instruments whose calibration had expired when the run started."""
    table = run.meta.get("instruments")
    entries = table.items() if isinstance(table, dict) else []
    return [name for name, entry in entries if isinstance(entry, dict) and calibration(
        entry.get("calibration_due"), run.meta.get("started"), run.simulated)[1] == "cal-expired"]


def instruments(run: Run) -> str:
    table = run.meta.get("instruments")
    if not isinstance(table, dict) or not table:
        return "<p>No instruments recorded.</p>"
    capabilities = run.meta.get("capabilities") if isinstance(run.meta.get("capabilities"), dict) else {}
    body = []
    for name, entry in table.items():
        entry = entry if isinstance(entry, dict) else {"identity": entry}
        cal, css = calibration(entry.get("calibration_due"), run.meta.get("started"), run.simulated)
        body.append(f"<tr><td><b>{e(name)}</b><span class=\"mod\">{e(si.plain(entry.get('role')))}</span></td>"
                    f"<td>{e(si.plain(entry.get('identity') or 'not identified'))}"
                    f"<span class=\"mod\">driver {e(si.plain(entry.get('driver')))}</span></td>"
                    f"<td class=\"mono\">{e(si.plain(entry.get('resource')))}</td>"
                    f'<td class="{css}">{e(cal)}</td>'
                    f"<td class=\"small\">{e(si.plain(entry.get('watchdog')))}</td></tr>")
        caps = entry.get("capabilities", capabilities.get(name))
        if caps:
            body.append(f'<tr><td></td><td colspan="4" class="small">capabilities: {_compact(caps)}</td></tr>')
    return ('<table><colgroup><col style="width:12%"><col style="width:33%"><col style="width:22%">'
            '<col style="width:17%"><col></colgroup><thead><tr><th>name / role</th><th>identity (*IDN?)</th>'
            "<th>resource</th><th>calibration due</th><th>watchdog</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _compact(value: Any) -> str:
    """A nested record (e.g. an instrument's capabilities) as readable inline text, not a dump."""
    if isinstance(value, dict):
        return "; ".join(f"{e(k)}: {_compact(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(_compact(v) for v in value) or "—"
    return e(si.plain(value))


def safety(run: Run, rows: Sequence[VerdictRow]) -> str:
    numbers = {junit_key(v.nodeid): v.number for v in rows}
    run_trips = trips(run, {junit_key(c.nodeid): c for c in run.cases or []})
    out = []
    if run_trips:
        body = "".join(
            f'<tr class="{"" if t.expected else "bad"}"><td class="num">'
            f"{e(si.quantity(t.time_s, 's') if t.time_s is not None else '—')}</td>"
            f'<td>{_test_ref(t.test, numbers)}</td><td>{_trip_tag(t)}</td><td class="small">{e(t.basis)}</td></tr>'
            for t in run_trips)
        out.append('<table><colgroup><col style="width:7em"><col style="width:30%"><col><col style="width:22%">'
                   '</colgroup><thead><tr><th>rig time</th><th>test</th><th>trip</th><th>expected?</th></tr></thead>'
                   f"<tbody>{body}</tbody></table>")
    else:
        out.append("<p>No safety trip.</p>")
    for entry in run.meta.get("incomplete_safe_states") or []:
        steps = entry.get("steps", []) if isinstance(entry, dict) else []
        reason = entry.get("reason") if isinstance(entry, dict) else entry
        out.append(f'<p><span class="tag unexpected">SAFE STATE INCOMPLETE</span>{e(reason)}</p>'
                   + "".join(f'<div class="mono">{e(si.in_text(str(s)))}</div>' for s in steps))
    final = run.meta.get("final_safe_state")
    if isinstance(final, list) and final:
        lines = "".join(f'<div class="mono">{e(si.in_text(str(s)))}</div>' for s in final)
        out.append(f"<h3>Final safe state</h3>{lines}")
    return "\n".join(out)


def _test_ref(test: str, numbers: dict[str, int]) -> str:
    if not test:
        return "between tests"
    number = numbers.get(junit_key(test))
    return f"{'#' + str(number) + ' ' if number else ''}{breakable(test.rsplit('::', 1)[-1])}"


def prompts(run: Run, rows: Sequence[VerdictRow]) -> str:
    items = run.meta.get("prompts") or []
    if not items:
        return "<p>No operator prompts.</p>"
    numbers = {junit_key(v.nodeid): v.number for v in rows}
    body = "".join(
        f"<tr><td>{_test_ref(str(p.get('test', '')), numbers)}</td><td>{e(si.plain(p.get('text')))}</td>"
        f"<td>{e(si.plain(p.get('answer')))}</td><td>{e(si.plain(p.get('answered_by')))}</td></tr>"
        for p in items if isinstance(p, dict))
    return ('<table><colgroup><col style="width:26%"><col><col style="width:5.6em"><col style="width:9em"></colgroup>'
            "<thead><tr><th>test</th><th>question</th><th>answer</th><th>answered by</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def figures(images: Sequence[Plot]) -> str:
    if not images:
        return "<p>No plottable data.</p>"
    return "\n".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(p.png).decode("ascii")}" alt="{e(p.title)}">'
        f"<figcaption>{e(p.caption)}</figcaption></figure>" for p in images)


def measurements(rows: Sequence[VerdictRow]) -> str:
    body = []
    for v in rows:
        for r in v.results:
            css = ' class="bad"' if r.verdict != PASS else ""
            when = si.quantity(r.time_s, "s") if math.isfinite(r.time_s) else "—"
            body.append(f'<tr{css}><td class="n">{v.number}</td>'
                        f'<td>{breakable(r.name)}<span class="mod">at {e(when)}</span>'
                        f'</td><td class="num">{e(si.quantity(r.value, r.unit))}</td>'
                        f"<td>{e(si.window(r.low, r.high, r.unit) or 'none')}</td>"
                        f'<td>{verdict_badge(r.verdict)}</td>'
                        f'<td class="small"><code>{e(r.limit)}</code> — {e(r.source)}</td>'
                        f"<td>{e(r.confidence)}</td></tr>")
    if not body:
        return "<p>No measurements recorded.</p>"
    return ('<table class="measurements"><colgroup><col style="width:2.6em"><col style="width:21%">'
            '<col style="width:8.5%"><col style="width:9.5em"><col style="width:5.6em"><col><col style="width:4.4em">'
            "</colgroup><thead><tr><th>#</th><th>measurement</th><th>value</th><th>limit</th><th>verdict</th>"
            f"<th>limit key and source</th><th>conf.</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def limits_in_force(run: Run) -> str:
    table = run.meta.get("effective_limits")
    if not isinstance(table, dict) or not table:
        return "<p>Not recorded.</p>"
    units = {"voltage": "V", "current": "A", "temperature": "°C"}
    body = []
    for key, entry in table.items():
        entry = entry if isinstance(entry, dict) else {"value": entry}
        unit = next((u for word, u in units.items() if key.endswith(word)), "")
        value = entry.get("value")
        shown = si.quantity(float(value), unit) if isinstance(value, int | float) else si.plain(value)
        body.append(f"<tr><td>{e(key.replace('_', ' '))}</td><td class=\"num\">{e(shown)}</td>"
                    f"<td class=\"small\">{e(si.plain(entry.get('source')))}</td></tr>")
    return ('<table><colgroup><col style="width:12em"><col style="width:7em"><col></colgroup><thead><tr><th>limit'
            f"</th><th>value</th><th>source</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def other_records(run: Run) -> str:
    rest = {k: v for k, v in run.meta.items() if k not in SHOWN}
    if not rest:
        return ""
    body = "".join(f"<tr><th>{e(k)}</th><td>{_compact(v)}</td></tr>" for k, v in rest.items())
    return f'<h2>Other records</h2><table class="kv">{body}</table>'


SIGN = ('<div class="sign"><div>Reviewed by (name)</div><div>Signature</div><div>Date</div></div>')


def render(run: Run, rows: Sequence[VerdictRow], images: Sequence[Plot]) -> str:
    """The whole page."""
    title = f"{'[SIMULATED] ' if run.simulated else ''}Test report {_serial(run.meta)} {run.name}"
    notes = "".join(f"<li>{e(n)}</li>" for n in run.notes)
    generated = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    planned = run.meta.get("planned_tests")
    order_note = ("" if isinstance(planned, list) else
                  '<p class="small">This run did not record its planned tests: tests it never reached cannot be '
                  "listed.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head>
<body>
{header(run, rows)}
<h2>Verdict per test</h2>
{verdict_table(rows)}{order_note}
<h2>Failures and warnings</h2>
{failures(run, rows)}
<h2>Run, DUT, rig and profile</h2>
{identity(run)}
<h2>Instruments and calibration</h2>
{instruments(run)}
<h2>Safety events</h2>
{safety(run, rows)}
<h2>Operator prompts and overrides</h2>
{prompts(run, rows)}
<h2>Plots</h2>
{figures(images)}
<h2>Measurements</h2>
{measurements(rows)}
<h2>Limits in force (setpoint ceilings and trip levels)</h2>
{limits_in_force(run)}
{other_records(run)}
{f'<h2>Reader notes</h2><ul class="small">{notes}</ul>' if notes else ""}
<h2>Sign-off</h2>
{SIGN}
<footer>Generated by rig report at {e(generated)} from {e(run.folder.resolve())}. Raw record: run.json,
samples.csv, measurements.csv and junit.xml in that folder.</footer>
</body></html>
"""
