"""Rows for the results database, from a run folder (``rig sync``) or from a live session (``rig.db.feed``).

Both paths go through the same parsers, applied to the same text: a live sample or measurement is first
formatted exactly as ``rig.recorder`` writes it to CSV, then parsed like a CSV row. So a run fed live and
the same run synced from its folder hold the same values, and the CSV stays the record.

Old folders (recorded before the database existed, or by older versions) are read as they are: a missing
``run_id`` is the folder's name, ``dut`` may be a serial string, a CSV line cut short by ``kill -9`` is
skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The files whose bytes make a run's content hash: the database holds a run when it holds all of them.
HASHED_FILES = ("run.json", "samples.csv", "measurements.csv", "junit.xml")


def utc(value: Any) -> dt.datetime | None:
    """An ISO 8601 text (any zone) as a naive UTC datetime; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def number(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def cell(text: str) -> float | str:
    """A samples.csv cell: a number when it reads as a finite one (1, 0.5, 1.2e+09), else the text ("nan"
    stays text: JSON, and PostgreSQL's jsonb, have no NaN)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in HASHED_FILES:
        path = folder / name
        digest.update(f"\0{name}\0".encode())
        if path.exists():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


# --- samples and measurements ----------------------------------------------------------------------


def sample_row(header: Sequence[str], cells: Sequence[str]) -> dict[str, Any]:
    """One samples.csv row (``time_s, wall_time, test, <columns>..., errors``) as a ``samples`` row."""
    values = dict(zip(header, cells, strict=True))
    data = {k: cell(v) for k, v in values.items() if k not in ("time_s", "wall_time", "test", "errors") and v != ""}
    return {"time_s": number(values.get("time_s")), "wall_time": utc(values.get("wall_time")),
            "test": values.get("test", ""), "data": data, "errors": values.get("errors") or None}


def measurement_row(values: Mapping[str, str]) -> dict[str, Any]:
    """One measurements.csv row as a ``measurements`` row."""
    return {
        "test": values.get("test", ""), "name": values.get("name", ""), "value": number(values.get("value")),
        "unit": values.get("unit", ""), "low": number(values.get("low")), "high": number(values.get("high")),
        "verdict": values.get("verdict", ""), "limit_key": values.get("limit") or None,
        "source": values.get("source", ""), "confidence": values.get("confidence", ""),
        "time_s": number(values.get("time_s")), "wall_time": utc(values.get("wall_time")),
    }


def csv_rows(path: Path) -> Iterator[list[str]]:
    """The header, then every complete row. A last line without its newline (kill -9 mid-write) and rows
    of the wrong length are skipped: the database indexes what the record holds whole."""
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        lines = (line for line in f if line.endswith(("\n", "\r")))
        header: list[str] | None = None
        try:
            for record in csv.reader(lines):
                if header is None:
                    header = record
                    yield record
                elif len(record) == len(header):
                    yield record
        except csv.Error:
            return


# --- run.json ----------------------------------------------------------------------------------------


def read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _table(meta: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = meta.get(key)
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def run_row(meta: Mapping[str, Any], folder: Path | None, bench_key: str | None = None) -> dict[str, Any]:
    """The ``runs`` row of a run.json (tolerant of older layouts); ``meta`` keeps the whole file."""
    dut = meta.get("dut")
    dut_table = dut if isinstance(dut, Mapping) else {}
    serial = dut_table.get("serial") if dut_table else dut
    rig, profile = _table(meta, "rig"), _table(meta, "profile")
    tier = dut_table.get("tier_v", meta.get("tier"))
    rated = dut_table.get("rated_current_a", meta.get("rated_current"))
    started = utc(meta.get("started"))
    return {
        "run_id": str(meta.get("run_id") or (folder.name if folder else "")),
        "dut_serial": _text(serial), "tier_v": int(tier) if isinstance(tier, int | float) else None,
        "rated_current_a": float(rated) if isinstance(rated, int | float) else None,
        "operator": _text(meta.get("operator")), "rig_name": _text(rig.get("name")),
        "bench_key": bench_key or _text(rig.get("bench_key")), "rig_file": _text(rig.get("file")),
        "rig_sha256": _text(rig.get("sha256")), "profile_name": _text(profile.get("name")),
        "profile_version": _text(profile.get("version")), "profile_sha256": _text(profile.get("sha256")),
        "simulated": rig.get("simulated") if isinstance(rig.get("simulated"), bool) else None,
        "host": _text(meta.get("host")), "started": started, "ended": utc(meta.get("ended")),
        "finished": meta.get("finished") is True, "outcome": _text(meta.get("outcome")),
        "counts": meta.get("counts") if isinstance(meta.get("counts"), Mapping) else None,
        "meta": json.loads(json.dumps(meta, default=str)), "folder": str(folder.resolve()) if folder else None,
        "calibration_expired": calibration_expired(meta, started),
    }


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def calibration_expired(meta: Mapping[str, Any], started: dt.datetime | None) -> bool | None:
    dues = [_date(i.get("calibration_due")) for i in _table(meta, "instruments").values() if isinstance(i, Mapping)]
    dues = [d for d in dues if d is not None]
    if started is None or not dues:
        return None if meta.get("calibration_override") is None else bool(meta.get("calibration_override"))
    return min(dues) < started.date()


def meta_children(meta: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Safety trips, prompts, overrides and instruments of a run.json, as rows of their tables."""
    def items(key: str) -> list[Mapping[str, Any]]:
        value = meta.get(key)
        return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []

    overrides = [{"kind": _text(o.get("kind") or o.get("name") or "override"), "detail": json.dumps(o, default=str)}
                 for o in items("overrides")]
    if meta.get("calibration_override"):
        overrides.append({"kind": "calibration", "detail": "--allow-expired-calibration"})
    return {
        "safety_trips": [{"test": _text(t.get("test")), "reason": _text(t.get("reason")),
                          "time_s": number(_text(t.get("time_s")))} for t in items("safety_trips")],
        "prompts": [{"test": _text(p.get("test")), "text": _text(p.get("text")),
                     "answer": p.get("answer") if isinstance(p.get("answer"), bool) else None,
                     "answered_by": _text(p.get("answered_by")), "time": _text(p.get("time"))}
                    for p in items("prompts")],
        "overrides": overrides,
        "instruments": [{"name": name, "driver": _text(i.get("driver")), "role": _text(i.get("role")),
                         "resource": _text(i.get("resource")), "identity": _text(i.get("identity")),
                         "watchdog": _text(i.get("watchdog")), "calibration_due": _date(i.get("calibration_due"))}
                        for name, i in _table(meta, "instruments").items() if isinstance(i, Mapping)],
    }


# --- tests -------------------------------------------------------------------------------------------


def junit_tests(path: Path) -> list[dict[str, Any]]:
    """Each test of pytest's junit.xml with its outcome, duration and the first line of its message."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    out = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        # pytest writes the module path with dots ("test_plans.test_pilot"), then any class: rebuild the node id.
        parts = classname.split(".") if classname else []
        module = [p for p in parts if not p[:1].isupper()]
        classes = [p for p in parts if p[:1].isupper()]
        nodeid = "::".join([f"{'/'.join(module)}.py", *classes, name]) if module else name
        outcome, message = "passed", None
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                lines = (child.get("message") or child.text or "").strip().splitlines()
                message = lines[0][:500] if lines else None
                break
        out.append({"nodeid": nodeid, "outcome": outcome, "duration_s": number(case.get("time")),
                    "message": message})
    return out


def tests_of(folder: Path, measured_tests: Iterable[str], finished: bool) -> list[dict[str, Any]]:
    """junit.xml's tests, plus any test that recorded a measurement but is not in it (a killed run)."""
    tests = junit_tests(folder / "junit.xml")
    known = {t["nodeid"].rsplit("::", 1)[-1] for t in tests}
    for nodeid in dict.fromkeys(measured_tests):
        if nodeid and nodeid.rsplit("::", 1)[-1] not in known:
            tests.append({"nodeid": nodeid, "outcome": None if finished else "unfinished", "duration_s": None,
                          "message": None})
    return tests


@dataclass
class FolderRun:
    """Everything of one run folder the database keeps (samples are streamed by ``samples()``)."""

    folder: Path
    meta: dict[str, Any]
    run: dict[str, Any]
    measurements: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def samples(self) -> Iterator[dict[str, Any]]:
        rows = csv_rows(self.folder / "samples.csv")
        header = next(rows, None)
        if header is None:
            return
        for record in rows:
            yield sample_row(header, record)


def is_run_folder(folder: Path) -> bool:
    return folder.is_dir() and any((folder / n).is_file() for n in ("run.json", "samples.csv", "measurements.csv"))


def read_folder(folder: Path) -> FolderRun:
    meta = read_meta(folder)
    rows = csv_rows(folder / "measurements.csv")
    header = next(rows, None) or []
    measurements = [measurement_row(dict(zip(header, r, strict=True))) for r in rows]
    run = run_row(meta, folder)
    tests = tests_of(folder, (m["test"] for m in measurements), run["finished"])
    return FolderRun(folder, meta, run, measurements, tests, meta_children(meta))
