"""The terminal summary of ``rig report``: the same verdicts as the HTML page, in a rich table
(ASCII off a terminal, for logs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rig import si
from rig.report.html import when
from rig.report.run import Run, junit_key
from rig.report.verdicts import PASS, VerdictRow, overall, trips


def summary(run: Run, rows: Sequence[VerdictRow], plain: bool = False) -> Any:
    """A rich renderable: who/what, the overall verdict, one row per test, trips, reader notes."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from rig.display import status_style

    meta = run.meta
    dut = meta.get("dut")
    serial = dut.get("serial") if isinstance(dut, dict) else dut
    rig = meta.get("rig")
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for key, value in (("run", run.name), ("DUT", serial), ("operator", meta.get("operator")),
                       ("rig", rig.get("name") if isinstance(rig, dict) else rig),
                       ("started", when(meta["started"]) if meta.get("started") else None),
                       ("outcome", run.outcome)):
        if value:
            head.add_row(key, si.plain(value))
    parts: list[Any] = [head]
    if run.simulated:
        parts.append(Text("SIMULATED BENCH: not a measurement of hardware", style="bold red"))
    word, tally = overall(run, rows)
    parts.append(Text(f"{word}: {tally}", style=status_style("PASS" if word == "PASS" else "FAIL")))
    if not run.finished:
        parts.append(Text(f"RUN DID NOT FINISH (outcome: {run.outcome}): results are partial", style="bold yellow"))
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAVY, title="verdict per test", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("test", overflow="fold")
    table.add_column("verdict")
    table.add_column("reason / key figures", overflow="fold", max_width=90)
    for v in rows:
        tags = [f"expected trip: {t.reason}" if t.expected else f"SAFETY TRIP: {t.reason}" for t in v.trips
                if t.expected or t.reason not in v.reason]  # a reason that names the trip needs no repeat
        figures = ", ".join(f"{r.name} = {si.quantity(r.value, r.unit)}" for r in v.results)
        detail = "; ".join([*tags, v.reason if v.verdict != PASS else figures])
        table.add_row(str(v.number), Text(v.nodeid.rsplit("::", 1)[-1]), Text(v.verdict, style=status_style(v.verdict)),
                      Text(detail.strip("; ")))
    parts.append(table if rows else Text("no tests recorded"))
    listed = {junit_key(v.nodeid) for v in rows}
    for t in trips(run, {junit_key(c.nodeid): c for c in run.cases or []}):
        if junit_key(t.test) not in listed:
            parts.append(Text(f"{'expected trip' if t.expected else 'SAFETY TRIP'}: {t.reason}",
                              style="" if t.expected else "bold red"))
    parts.append(Text(f"{run.count('PASS')} of {len(run.results)} measurements passed; {len(run.samples)} samples"))
    parts += [Text(f"note: {note}", style="dim") for note in run.notes]
    return Group(*parts)
