"""Loading one run folder into a plain data object (``Run``) that every part of the report reads.

    run = load_run(Path("results/20261128-101500-INLET-42"))
    run.meta, run.samples, run.results, run.cases, run.notes

Formats are those of ``rig.recorder`` (run.json, samples.csv, measurements.csv) and pytest's junit.xml.
Unfinished runs are normal input: run.json says ``"finished": false``, a ``kill -9`` may have cut the
last CSV line short (that line is skipped and said so), junit.xml may be missing (pytest writes it at the
end). ``Run`` holds no file handles and nothing specific to a folder but its path: a results database can
build one from its rows and render the same report.
"""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _is_text(column: str) -> bool:
    return column in ("wall_time", "test", "errors") or column.endswith(".protection")


@dataclass(frozen=True)
class Samples:
    """samples.csv by column, complete rows only: numbers as compact float arrays (a day at 1 Hz stays
    small), the few text columns (``test``, ``wall_time``, ``errors``, ``<unit>.protection``) as strings."""

    header: tuple[str, ...]
    values: dict[str, array[float]]
    text: dict[str, list[str]]

    @classmethod
    def from_rows(cls, header: Sequence[str], rows: Iterable[list[str]]) -> Samples:
        values = {c: array("d") for c in header if not _is_text(c)}
        text: dict[str, list[str]] = {c: [] for c in header if _is_text(c)}
        cells = [(values.get(c), text.get(c)) for c in header]
        for row in rows:
            for cell, (numbers, strings) in zip(row, cells, strict=True):
                if numbers is not None:
                    numbers.append(_float(cell))
                elif strings is not None:
                    strings.append(cell)
        return cls(tuple(header), values, text)

    def __len__(self) -> int:
        return len(self.values.get("time_s", ()))

    def numbers(self, column: str) -> Sequence[float]:
        """A numeric column; empty or non-numeric cells (an instrument that did not answer) are NaN."""
        return self.values.get(column, array("d"))

    def has(self, column: str) -> bool:
        return column in self.header


@dataclass(frozen=True)
class Result:
    """One row of measurements.csv."""

    time_s: float
    test: str
    name: str
    value: float
    unit: str
    low: float | None
    high: float | None
    verdict: str
    limit: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Case:
    """One pytest test case of junit.xml: its outcome and, for a non-pass, pytest's message."""

    nodeid: str  # rebuilt from classname and name: "test_plans/test_x.py::test_y[p]"
    outcome: str  # passed | failed | error | skipped
    message: str
    duration_s: float | None


@dataclass
class Run:
    folder: Path
    meta: dict[str, Any]
    samples: Samples
    results: list[Result]
    cases: list[Case] | None = None  # None: no junit.xml (the run was killed, or pytest ran without it)
    notes: list[str] = field(default_factory=list)  # what the reader had to skip or guess

    @property
    def name(self) -> str:
        return str(self.meta.get("run_id") or self.folder.name)

    @property
    def finished(self) -> bool:
        return self.meta.get("finished") is True

    @property
    def outcome(self) -> str:
        return str(self.meta.get("outcome", "unknown"))

    @property
    def simulated(self) -> bool:
        rig = self.meta.get("rig")
        return isinstance(rig, dict) and rig.get("simulated") is True

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.results)


def load_run(folder: str | Path) -> Run:
    """Read run.json, samples.csv, measurements.csv and junit.xml; tolerant of an interrupted run."""
    folder = Path(folder)
    if not folder.is_dir() or not any((folder / n).exists() for n in ("run.json", "samples.csv", "measurements.csv")):
        from rig.config import ConfigError

        raise ConfigError(f"{folder}: not a run folder (expected run.json, samples.csv and measurements.csv)")
    notes: list[str] = []
    meta = _read_meta(folder / "run.json", notes)
    rows = _rows(folder / "samples.csv", notes)
    samples = Samples.from_rows(next(rows, []), rows)
    rows = _rows(folder / "measurements.csv", notes)
    header = next(rows, [])
    results = [_result(dict(zip(header, row, strict=True))) for row in rows]
    cases = read_junit(folder / "junit.xml", notes)
    return Run(folder, meta, samples, results, cases, notes)


def _read_meta(path: Path, notes: list[str]) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(f"{path.name}: missing; run metadata unknown")
        return {}
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name}: unreadable ({exc}); run metadata unknown")
        return {}
    if not isinstance(meta, dict):
        notes.append(f"{path.name}: not a JSON object; run metadata unknown")
        return {}
    return meta


def _rows(path: Path, notes: list[str]) -> Iterator[list[str]]:
    """The header, then every complete row, streamed. Rows of the wrong length are skipped with a note."""
    try:
        file = path.open(encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        notes.append(f"{path.name}: {exc.strerror or exc}; no rows")
        return
    header: list[str] | None = None
    bad = 0
    with file:
        try:
            for record in csv.reader(_complete_lines(file, path.name, notes)):
                if header is None:
                    header = record
                    yield record
                elif len(record) == len(header):
                    yield record
                elif record:
                    bad += 1
        except csv.Error as exc:
            notes.append(f"{path.name}: unreadable ({exc}); rest skipped")
    if bad:
        notes.append(f"{path.name}: {bad} malformed row(s) skipped")


def _complete_lines(lines: Iterable[str], name: str, notes: list[str]) -> Iterator[str]:
    """Lines up to the last newline: a last line without one was cut short (kill -9 mid-write)."""
    for line in lines:
        if not line.endswith(("\n", "\r")):
            notes.append(f"{name}: last line incomplete (run interrupted while writing it); skipped")
            return
        yield line


def _result(cells: dict[str, str]) -> Result:
    def optional(key: str) -> float | None:
        return None if cells.get(key, "") == "" else _float(cells[key])

    return Result(_float(cells.get("time_s", "")), cells.get("test", ""), cells.get("name", ""),
                  _float(cells.get("value", "")), cells.get("unit", ""), optional("low"), optional("high"),
                  cells.get("verdict", "").upper(), cells.get("limit", ""), cells.get("source", ""),
                  cells.get("confidence", ""))


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


# --- junit.xml --------------------------------------------------------------------------------------


def read_junit(path: Path, notes: list[str]) -> list[Case] | None:
    """Every named test case of pytest's junit.xml, in the order run; None without the file."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        return None
    except (OSError, ET.ParseError) as exc:
        notes.append(f"{path.name}: unreadable ({exc}); test verdicts taken from the measurements")
        return None
    cases = []
    for element in root.iter("testcase"):
        name = element.get("name")
        if not name:  # pytest writes a nameless case for the test a Ctrl-C cut short
            continue
        kinds, messages = set(), []
        for child in element:
            if child.tag in ("failure", "error", "skipped"):
                kinds.add(child.tag)
                messages.append(child.get("message") or (child.text or "").strip())
        outcome = next((o for tag, o in (("failure", "failed"), ("error", "error"), ("skipped", "skipped"))
                        if tag in kinds), "passed")
        message = "\n".join(m for m in messages if m)
        cases.append(Case(nodeid(element.get("classname", ""), name), outcome, message, _seconds(element.get("time"))))
    return cases


def nodeid(classname: str, name: str) -> str:
    """pytest's node id from junit's classname (``test_plans.test_x.TestY``) and name: modules are
    lower-case by pytest's convention and classes are not, which splits path from class."""
    parts = classname.split(".") if classname else []
    split = next((i for i, p in enumerate(parts) if p[:1].isupper()), len(parts))
    module = "/".join(parts[:split])
    return "::".join(p for p in (f"{module}.py" if module else "", *parts[split:], name) if p)


def junit_key(node: str) -> str:
    """A node id as junit spells it, to match both ways ("a/b.py::C::t" and "a.b.C", "t")."""
    path, _, rest = node.partition("::")
    *classes, name = rest.split("::") if rest else [""]
    module = path.removesuffix(".py").replace("/", ".").replace("\\", ".")
    return ".".join(p for p in (module, *classes) if p) + "::" + name


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
