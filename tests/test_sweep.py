"""``vpmu sweep``: the grid, its validation, its runners and its outputs.

Why these: a sweep is only useful if a typo fails before hours of runs (and says
which point), if the rows are the same whoever ran them (local pool, dask), and if a
resumed sweep skips exactly the points it already has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vpmu_core import launchers
from vpmu_core import sweep as sw
from vpmu_core.cli import app
from vpmu_core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "configs" / "seed-mediated-table.toml"
REGISTER = ROOT / "tests" / "configs" / "one-write.toml"
SMALL = ["machine.vcpus=2", "workload.duration_ms=20"]


def test_grid_is_every_combination_first_key_slowest() -> None:
    assert sw.grid({"a": ["1", "2"], "b": ["x", "y"]}) == [
        {"a": "1", "b": "x"},
        {"a": "1", "b": "y"},
        {"a": "2", "b": "x"},
        {"a": "2", "b": "y"},
    ]


def test_a_bad_key_or_value_names_the_point_before_anything_runs() -> None:
    with pytest.raises(ConfigError) as info:
        sw.plan(TABLE, ["workload.freq=250,fast"], sets=SMALL)
    assert "sweep point 2 (workload.freq=fast)" in str(info.value)
    assert str(info.value).startswith(f"{TABLE}, sweep point 2")
    with pytest.raises(ConfigError) as info:
        sw.plan(TABLE, ["workload.freqq=250"], sets=SMALL)
    assert "sweep point 1 (workload.freqq=250)" in str(info.value)
    assert "workload.freqq = 250: unknown key" in str(info.value)


def test_a_key_swept_twice_or_nothing_swept_is_refused() -> None:
    with pytest.raises(ConfigError, match="swept twice"):
        sw.plan(TABLE, ["workload.freq=1", "workload.freq=2"])
    with pytest.raises(ConfigError, match="sweep at least one key"):
        sw.plan(TABLE, [])


def test_a_refusing_strategy_is_an_na_row_at_that_point_only() -> None:
    # the mediated PMU's requirement is on the host PMU ([host], its own since the
    # host PMU split): a v2 host refuses it, a v5 host runs it under the same v2 guest
    grid = sw.plan(REGISTER, ["host.version=2,5"], [("register", {}), ("mediated", {})])
    rows = sw.run(grid, launchers.local(1))
    assert [(r["point"], r["host.version"], r["strategy"], "n/a" in r) for r in rows] == [
        (1, "2", "register", False),
        (1, "2", "mediated", True),
        (2, "5", "register", False),
        (2, "5", "mediated", False),
    ]
    assert rows[1]["n/a"].startswith("host.version = 2: the mediated PMU needs an Intel host")
    # a handful of operations: time per operation, not a share of nominal guest time
    assert rows[0]["ns_per_operation"] == rows[0]["steady_ns"] == 2496.0
    # the steady state by compare's names; the total (one-time included) is total_ns
    assert "overhead_ns" not in rows[0]
    assert rows[0]["total_ns"] == rows[0]["steady_ns"] + rows[0]["one_time_ns"]


def _four_points() -> sw.Plan:
    return sw.plan(
        TABLE,
        ["workload.freq=250,4000", "machine.vcpus=1,2"],
        [("emulated", {})],
        sets=["workload.duration_ms=20"],
    )


def test_local_pool_and_dask_give_the_same_rows_point_by_point() -> None:
    pytest.importorskip("dask.distributed")
    grid = _four_points()
    assert len(grid.tasks) == 4
    here = sw.run(grid, launchers.local(2))
    there = sw.run(grid, launchers.dask("local", 2))
    assert [r["point"] for r in here] == [1, 2, 3, 4]
    for a, b in zip(here, there, strict=True):
        assert a == b
    assert sw.to_csv(grid, here) == sw.to_csv(grid, there)
    assert here == sw.run(grid, sw.serial)


def test_resume_skips_the_points_it_has(tmp_path: Path) -> None:
    grid = sw.plan(REGISTER, ["workload.writes=1,2,3"])
    first = sw.run(grid, sw.serial)
    path = tmp_path / "s.json"
    path.write_text(sw.to_json(grid, first[:2]))
    ran: list[int] = []

    def runner(tasks: list[sw.Task], finished: Any) -> None:
        ran.extend(t.point for t in tasks)
        sw.serial(tasks, finished)

    again = sw.run(grid, runner, sw.read_resume(path, grid))
    assert ran == [3]
    assert again == first
    other = sw.plan(REGISTER, ["workload.writes=1,2,3"], sets=["workload.gap_us=5"])
    with pytest.raises(ConfigError, match="resume the same sweep"):
        sw.read_resume(path, other)
    # rows of vpmu-sweep/1 named the steady state overhead_ns: not mixed with today's
    path.write_text(sw.to_json(grid, first[:2]).replace(sw.FORMAT, "vpmu-sweep/1"))
    with pytest.raises(ConfigError, match=r"not a vpmu sweep JSON \(vpmu-sweep/2\)"):
        sw.read_resume(path, grid)


def test_csv_has_one_line_per_point_and_strategy(tmp_path: Path) -> None:
    grid = sw.plan(REGISTER, ["workload.writes=1,2"], [("emulated-legacy", {}), ("register", {})])
    rows = sw.run(grid, sw.serial)
    lines = sw.to_csv(grid, rows).splitlines()
    head = lines[0].split(",")
    assert head[:3] == ["point", "workload.writes", "strategy"]
    assert {"steady_ns", "steady_pct", "exits.wrmsr:eventsel", "perf_ops.create"} <= set(head)
    assert "overhead_ns" not in head and "overhead_pct" not in head
    assert {"pmis", "count_error_pct", "samples_lost", "one_time_ns"} & set(head)
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["1", "1", "emulated-legacy"],
        ["1", "1", "register"],
        ["2", "2", "emulated-legacy"],
        ["2", "2", "register"],
    ]
    legacy = dict(zip(head, lines[1].split(","), strict=True))
    assert legacy["one_time_ns"] == "21000000.0"
    assert legacy["perf_ops.create_sched_rcu"] == "1"


def test_cli_sweep_writes_table_csv_json_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    args = ["sweep", str(REGISTER), "--param", "workload.writes=1,2", "--workers", "1"]
    args += ["--strategies", "emulated-legacy,register", "--csv", str(tmp_path / "s.csv")]
    args += ["--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "emulated-legacy" in res.output and "per operation" in res.output
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["params"] == {"workload.writes": ["1", "2"]} and len(data["rows"]) == 4
    svg = [tmp_path / "a.svg", tmp_path / "b.svg"]
    for path in svg:
        res = CliRunner().invoke(app, [*args[:8], "--plot", str(path)])
        assert res.exit_code == 0, res.output
    assert svg[0].read_bytes() == svg[1].read_bytes()  # the same plot is the same file


def test_cli_sweep_refuses_before_running(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["sweep", str(REGISTER), "--param", "workload.writes=1,x", "--csv", str(tmp_path / "c")],
    )
    assert res.exit_code == 2
    assert "sweep point 2 (workload.writes=x)" in res.output
    assert not (tmp_path / "c").exists()
    res = CliRunner().invoke(app, ["sweep", str(REGISTER), "--param", "a=1", "--plot", "x.gif"])
    assert res.exit_code == 2 and "--plot = 'x.gif': a .png or .svg file" in res.output


def test_without_strategies_each_point_runs_its_own_strategy() -> None:
    grid = sw.plan(REGISTER, ["strategy.name=emulated-legacy,register"])
    assert grid.strategies == ["emulated-legacy", "register"]
    rows = sw.run(grid, sw.serial)
    assert [(r["strategy"], r["ns_per_operation"]) for r in rows] == [
        ("emulated-legacy", 96600.0),
        ("register", 2496.0),
    ]


def test_python_m_sweep_in_a_process_pool() -> None:
    # the command as a module, its points in spawned worker processes
    import subprocess
    import sys

    args = ["sweep", str(REGISTER), "--param", "workload.writes=1,2", "--workers", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "vpmu_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("emulated-legacy") >= 1
