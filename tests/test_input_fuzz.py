"""Malformed and hostile rig configs and profiles: only ever a one-line ConfigError, never a traceback
from deeper down, never anything executed; usage errors exit 2 at the command line."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.cli import main
from rig.config import ConfigError, load_config, parse_config
from rig.profile import DEFAULT_PROFILE, load_profile, parse_profile

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "rigs" / "example-lab.toml").read_text())
PROFILE = tomllib.loads(DEFAULT_PROFILE.read_text())

junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.dates(), st.just(dt.datetime(2027, 1, 1, 12, 0)), st.just("__import__('os').system('echo pwned')"),
)


def paths_of(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += paths_of(value, (*prefix, key))
    return out


def mutate(tree: dict, draw: Any) -> dict:
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, 4))):
        candidates = paths_of(tree)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        action = draw(st.sampled_from(["delete", "replace", "add", "rename"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "add":
            parent[draw(st.text(min_size=1, max_size=8))] = draw(junk)
        else:
            parent[path[-1] + draw(st.text(min_size=1, max_size=3))] = parent.pop(path[-1])
    return tree


def assert_clean(call: Any) -> None:
    try:
        call()
    except ConfigError as exc:
        text = str(exc)
        assert text and "\n" not in text and "Traceback" not in text


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_rig_configs_fail_only_with_one_line_config_errors(data: st.DataObject) -> None:
    tree = mutate(CONFIG, data.draw)
    assert_clean(lambda: parse_config(tree, "fuzz.toml"))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_profiles_fail_only_with_one_line_config_errors(data: st.DataObject) -> None:
    tree = mutate(PROFILE, data.draw)
    assert_clean(lambda: parse_profile(tree, "fuzz-profile.toml"))


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_as_a_config_or_profile(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.toml"
    path.write_bytes(blob)
    assert_clean(lambda: load_config(path))
    assert_clean(lambda: load_profile(path))


@pytest.mark.parametrize("args", [
    ["run", "--sim", "--dut", "X", "--tier", "800"],
    ["run", "--sim", "--dut", "X", "--rated-current", "-5"],
    ["run", "--sim"],
    ["run", "--rig", "a.toml", "--sim", "--dut", "X"],
    ["run", "--rig", "rigs/example-lab.toml", "--dut", "X", "--sim-fault", "estop"],
    ["sim", "--fault", "no_such_fault"],
    # Issue 11 items 7 and 9: argument errors are usage errors, before anything starts.
    ["run", "--sim", "--dut", "X", "--sim-fault", "degraded_contact=abc"],
    ["run", "--sim", "--dut", "X", "--sim-fault", "slow_contactor=inf"],
    ["run", "--sim", "--dut", "X", "--sim-fault", "estop=1"],
    ["run", "--sim", "--dut", "X", "--sim-fault", "open_thermocouple=DC*"],
    ["run", "--sim", "--dut", ""],
    ["run", "--sim", "--dut", "   "],
    ["sim", "--fault", "ambient=abc"],
    ["sim", "--time-scale", "0"],
    ["monitor", "--sim", "--rate", "-1"],
    ["report", "/nonexistent/run"],
    ["check", "--rig", "/nonexistent.toml"],
])
def test_usage_errors_exit_2_with_one_line(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip(), "the error is explained"


def test_a_bad_profile_is_refused_before_the_bench_is_touched(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text((DEFAULT_PROFILE.read_text()).replace('confidence = "M-H"', 'confidence = "sure"', 1))
    result = CliRunner().invoke(main, ["run", "--sim", "--dut", "X", "--profile", str(profile), "-k", "pilot"])
    assert result.exit_code == 2
