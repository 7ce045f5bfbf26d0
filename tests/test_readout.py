"""What a person reads: one-time costs apart, events by name, progress off a terminal,
tables that name every strategy.

Why: a report that prints ``210566.00%`` or ``(192, 0)``, or stays silent for
minutes in CI, is read wrong or not at all.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

import vpmu_core as vpmu
from vpmu_core.cli.progress import Progress
from vpmu_core.cli.tables import headers
from vpmu_core.overrides import configured

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_perf_event_is_a_one_time_cost_apart_from_the_steady_state() -> None:
    result = vpmu.run(ROOT / "tests" / "configs" / "one-write.toml")
    cost = result.cost
    assert cost.one_time == {"perf:create_sched_rcu": 21_000_000.0}
    assert cost.steady_ns == cost.total_ns - 21_000_000.0 == 96_600.0
    # the host's only event reserves and releases the DS buffers of its one CPU
    assert cost.dominant == "events:ds_buffers_cpu"
    assert result.operations == 1
    data, _ = configured(ROOT / "tests" / "configs" / "one-write.toml", ["strategy.name=register"])
    register = vpmu.run(data)
    assert register.cost.one_time == {}
    assert register.cost.steady_ns == register.cost.total_ns == 2496.0
    assert register.cost.dominant == "exit:wrmsr:eventsel"


def test_a_trace_names_its_events() -> None:
    result = vpmu.run(ROOT / "configs" / "trace-example.toml")
    assert [row.event for row in result.counters] == ["instructions"]


def test_progress_off_a_terminal_is_a_line_every_few_seconds() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=80)
    with Progress(console, "sweep", every_s=0.0) as bar:
        task = bar.add_task("6 runs", total=6)
        bar.update(task, 2)
    assert buf.getvalue().startswith("sweep: 6 runs 2/6 (")
    quiet = io.StringIO()
    with Progress(Console(file=quiet, force_terminal=False), "run") as bar:
        bar.update(bar.add_task("x"), 0.5)
    assert quiet.getvalue() == ""  # done before the first line is due


def test_long_strategy_names_become_numbered_headers_with_a_legend() -> None:
    labels = ["emulated", "mediated:passthrough_controls=true"]
    assert headers(labels, 20, 10, 200) == (labels, [])
    assert headers(labels, 20, 10, 60) == (
        ["[1]", "[2]"],
        ["[1] emulated", "[2] mediated:passthrough_controls=true"],
    )
    assert headers(["a", "b"], 50, 10, 60) == (["a", "b"], [])  # no narrower with numbers


def test_compare_tables_fit_80_columns_and_name_every_strategy() -> None:
    from typer.testing import CliRunner

    from vpmu_core.cli import app

    res = CliRunner().invoke(
        app, ["compare", str(ROOT / "tests" / "configs" / "one-write.toml")], env={"COLUMNS": "80"}
    )
    assert res.exit_code == 0, res.output
    table_lines = [line for line in res.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert table_lines and max(len(line) for line in table_lines) <= 80
    heads = " ".join(line for line in table_lines if line.startswith("┃"))
    for name in ("emulated-legacy", "emulated", "register", "fastpath", "mediated"):
        assert f" {name} " in heads


@given(
    st.dictionaries(
        st.sampled_from(["create", "create_sched_rcu", "release", "period", "reuse"]),
        st.integers(0, 10**6),
    ),
    st.dictionaries(
        st.sampled_from(["wrmsr:eventsel", "rdpmc", "host_pmi"]), st.integers(0, 10**6)
    ),
)
def test_steady_and_one_time_costs_split_the_total(
    perf: dict[str, int], exits: dict[str, int]
) -> None:
    from vpmu_core.costs import CostTable, price

    priced = price({"perf_ops": perf, "exits": exits}, CostTable(), 1e9)
    rcu = perf.get("create_sched_rcu", 0)
    assert priced.one_time == ({"perf:create_sched_rcu": rcu * 21_000_000.0} if rcu else {})
    assert math.isclose(
        priced.steady_ns + sum(priced.one_time.values()), priced.total_ns, rel_tol=1e-12
    )
    steady = {k: v for k, v in priced.by_mechanism.items() if k not in priced.one_time}
    if any(steady.values()):
        assert priced.dominant is not None
        assert steady[priced.dominant] == max(steady.values())
    assert priced.steady_pct == 100.0 * priced.steady_ns / 1e9
