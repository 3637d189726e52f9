"""The verdict of every test of a run, with the reason for each one that did not pass.

A test's verdict comes from pytest's junit.xml; its figures from measurements.csv; its safety trips from
run.json. A test that tripped or errored before measuring anything is still a row; so is a test the run
never reached (run.json ``planned_tests``) and the test a Ctrl-C cut short (it has samples, no verdict).

    for v in verdicts(run):
        print(v.number, v.nodeid, v.verdict, v.reason)

A trip inside the test's ``rig.expect_trip`` block (run.json ``safety_trips[].expected``; for runs
recorded before that flag, a trip in a test that then passed) is the test's expected outcome, not a fault.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rig import si
from rig.report.run import Case, Result, Run, junit_key

PASS, FAIL, ERROR, SKIPPED = "PASS", "FAIL", "ERROR", "SKIPPED"
INTERRUPTED, NOT_RUN, NO_VERDICT = "INTERRUPTED", "NOT RUN", "NO VERDICT"
FROM_JUNIT = {"passed": PASS, "failed": FAIL, "error": ERROR, "skipped": SKIPPED}
NOT_PASSED = (FAIL, ERROR, INTERRUPTED, NOT_RUN, NO_VERDICT)  # what the failures summary lists


@dataclass(frozen=True)
class Trip:
    test: str
    reason: str
    time_s: float | None
    expected: bool
    basis: str  # why it counts as expected or not, for the reader


@dataclass
class VerdictRow:
    number: int  # 1-based, also the phase label on the plots
    nodeid: str
    verdict: str
    reason: str  # why it did not pass ("" for PASS)
    results: list[Result] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    duration_s: float | None = None

    @property
    def module(self) -> str:
        return self.nodeid.partition("::")[0]

    @property
    def name(self) -> str:
        return self.nodeid.partition("::")[2] or self.nodeid


def trips(run: Run, cases: dict[str, Case] | None = None) -> list[Trip]:
    """run.json ``safety_trips``, each marked expected or not."""
    raw = run.meta.get("safety_trips", run.meta.get("trips")) or []
    out = []
    for item in raw if isinstance(raw, list) else [raw]:
        entry = item if isinstance(item, dict) else {"reason": str(item)}
        test = str(entry.get("test") or "")
        time_s = entry.get("time_s")
        flag = entry.get("expected")
        case = (cases or {}).get(junit_key(test)) if test else None
        if isinstance(flag, bool):
            expected = flag
            basis = "inside the test's expect_trip block" if flag else "not expected by the test"
        elif case is not None and case.outcome == "passed":
            expected, basis = True, "the test passed with it (run recorded before trips were flagged)"
        else:
            expected, basis = False, "not marked as expected"
        out.append(Trip(test, str(entry.get("reason", "")), float(time_s) if isinstance(time_s, int | float)
                        else None, expected, basis))
    return out


def verdicts(run: Run) -> list[VerdictRow]:
    """One row per test: the planned order when run.json has it, else junit's order then the rig time at
    which any other test first shows in the data."""
    cases = {junit_key(c.nodeid): c for c in run.cases or []}
    all_trips = trips(run, cases)
    planned = [n for n in run.meta.get("planned_tests") or [] if isinstance(n, str)]
    seen = [r.test for r in run.results] + [t.test for t in all_trips] + list(run.samples.text.get("test", []))
    first = _first_time(run)
    names: dict[str, str] = {}  # junit key -> node id as the plan / the data spell it
    for node in [*planned, *(c.nodeid for c in run.cases or []),
                 *sorted(dict.fromkeys(n for n in seen if n), key=lambda n: first.get(n, math.inf))]:
        names.setdefault(junit_key(node), node)
    last_active = _last_active(run)
    rows = []
    for number, (key, node) in enumerate(names.items(), start=1):
        results = [r for r in run.results if junit_key(r.test) == key]
        test_trips = [t for t in all_trips if junit_key(t.test) == key]
        case = cases.get(key)
        verdict, reason = _verdict(run, case, node, results, test_trips, last_active)
        rows.append(VerdictRow(number, node, verdict, reason, results, test_trips, case.duration_s if case else None))
    return rows


def overall(run: Run, rows: Sequence[VerdictRow]) -> tuple[str, str]:
    """("PASS" | "FAIL" | "INCOMPLETE", one line saying why)."""
    counts: dict[str, int] = {}
    for v in rows:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    parts = [f"{n} {word.lower()}" for word, n in counts.items()]
    tally = f"{len(rows)} test{'s' if len(rows) != 1 else ''}: " + ", ".join(parts) if rows else "no tests recorded"
    failed_measurements = run.count("FAIL")
    if counts.get("FAIL") or counts.get("ERROR") or failed_measurements:
        word = "FAIL"
    elif not run.finished or run.outcome != "passed" or any(v.verdict in NOT_PASSED for v in rows) or not rows:
        word = "INCOMPLETE"
    else:
        word = "PASS"
    return word, tally


def _first_time(run: Run) -> dict[str, float]:
    """The rig time of each test's first sample or measurement."""
    first: dict[str, float] = {}
    pairs = [*zip(run.samples.numbers("time_s"), run.samples.text.get("test", []), strict=False),
             *((r.time_s, r.test) for r in run.results)]
    for t, node in pairs:
        if node and math.isfinite(t):
            first[node] = min(first.get(node, t), t)
    return first


def _last_active(run: Run) -> str:
    """The test the run was in when it stopped (from the last sample or measurement naming one)."""
    latest: tuple[float, str] = (-math.inf, "")
    for t, node in zip(run.samples.numbers("time_s"), run.samples.text.get("test", []), strict=False):
        if node and math.isfinite(t) and t >= latest[0]:
            latest = (t, node)
    for r in run.results:
        if r.test and math.isfinite(r.time_s) and r.time_s >= latest[0]:
            latest = (r.time_s, r.test)
    return junit_key(latest[1]) if latest[1] else ""


def _verdict(run: Run, case: Case | None, node: str, results: list[Result], test_trips: list[Trip],
             last_active: str) -> tuple[str, str]:
    failed = [r for r in results if r.verdict != PASS]
    unexpected = [t for t in test_trips if not t.expected]
    if case is not None:
        verdict = FROM_JUNIT[case.outcome]
        if verdict == PASS:
            return PASS, ""
        return verdict, _reason(case.message, failed, unexpected, verdict)
    stopped = run.outcome in ("interrupted", "running", "unknown", "error") or not run.finished
    if junit_key(node) == last_active and stopped and (results or last_active):
        why = f"the run stopped during this test (outcome: {run.outcome}); no verdict was recorded"
        done = f"{len(results)} measurement(s) taken before it stopped, all within limits" \
            if results and not failed else ""
        return INTERRUPTED, _join([why, done, _measured(failed), *(_trip_text(t) for t in unexpected)])
    if not results and not _has_samples(run, node):
        return NOT_RUN, f"not reached: the run ended before this test (outcome: {run.outcome})"
    if failed:
        return FAIL, _join([_measured(failed), "no junit.xml verdict (the run was cut short)"])
    return NO_VERDICT, "no verdict recorded for this test (junit.xml missing: the run was cut short)"


def _has_samples(run: Run, node: str) -> bool:
    key = junit_key(node)
    return any(junit_key(t) == key for t in set(run.samples.text.get("test", [])) if t)


def _reason(message: str, failed: list[Result], unexpected: list[Trip], verdict: str) -> str:
    """Measurements out of limits in SI (from measurements.csv), then pytest's message unless it only
    repeats them, then any unexpected trip not already named."""
    parts = [_measured(failed)] if failed else []
    first = message.splitlines()[0] if message else ""
    if not (failed and "out of limits" in first):
        parts.append(clean_message(message, verdict))
    text = " ".join(parts)
    for t in unexpected:
        if t.reason not in text:
            parts.append(_trip_text(t))
    return _join(parts) or f"{verdict.lower()} (pytest gave no message)"


def _measured(failed: list[Result]) -> str:
    if not failed:
        return ""
    return "out of limits: " + "; ".join(
        f"{r.name} = {si.quantity(r.value, r.unit)} (limit {si.window(r.low, r.high, r.unit) or 'none'})"
        for r in failed)


def _trip_text(t: Trip) -> str:
    return f"unexpected safety trip: {t.reason}"


def clean_message(message: str, verdict: str = FAIL) -> str:
    """pytest's message as a sentence: "rig.errors.SafetyTrip: safety trip: x" -> "safety trip: x",
    "Failed: x" -> "x", assertion rewrites ("assert ...", "where ...") dropped; numbers SI-scaled."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    if not lines:
        return ""
    first, stage = lines[0], ""
    for when in ("setup", "teardown"):  # pytest: failed on setup with "pkg.Error: text"
        prefix = f'failed on {when} with "'
        if first.startswith(prefix):
            first, stage = first[len(prefix):].removesuffix('"'), f"error in {when}: "
    head, sep, rest = first.partition(": ")
    if sep and "." in head and " " not in head:  # "package.module.ExceptionName: text"
        kind = head.rsplit(".", 1)[1]
        first = rest if kind in ("SafetyTrip", "Failed", "AssertionError") else f"{kind}: {rest}"
    elif head in ("Failed", "AssertionError") and sep:
        first = rest
    if first.lower().startswith("safety trip: "):
        first = "unexpected safety trip: " + first[len("safety trip: "):]
    if first.startswith("Skipped: "):
        first = first[len("Skipped: "):]
    extra = [ln for ln in lines[1:] if not ln.startswith(("assert ", "where ", "+", "-", "E ", "and "))][:3]
    return si.in_text(stage + " ".join([first, *extra]))


def _join(parts: list[str]) -> str:
    return "; ".join(p for p in parts if p)
