"""The benchmark runs end to end (``python -m bench --quick --json``) and reports every figure as a finite
number. No timing is asserted: the figures are measurements (docs/performance.md), not tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import FIGURES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent



def finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text(encoding="utf-8"))

    assert set(data) == {*FIGURES, "machine"}
    for name in FIGURES:
        figure = data[name]
        assert finite(figure["value"]), f"{name}: {figure}"
        assert isinstance(figure["unit"], str) and figure["unit"], name
        if figure["goal"] is not None:
            assert finite(figure["goal"]) and finite(figure["ratio"]), f"{name}: {figure}"
            assert figure["op"] in ("<=", ">=") and isinstance(figure["pass"], bool), name
        assert name in proc.stdout  # printed too
    machine = data["machine"]
    assert machine["quick"] is True
    assert machine["cpu"] and machine["cores_logical"] >= 1 and machine["python"].count(".") == 2
