"""``vpmu run``: one config, its counters against the ground truth, and what it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import VpmuError
from .common import ConfigArg, Sets, Verbose, _fail, app, err, out
from .progress import Progress
from .readout import overhead_lines


@app.command()
def run(
    config: ConfigArg,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the result as JSON here")
    ] = None,
    sets: Sets = None,
    verbose: Verbose = 0,
) -> None:
    """Run a config's workload and print counters, PMIs, exits and their cost."""
    from ..api import run as run_config
    from ..overrides import configured

    try:
        data, source = configured(config, sets or ())
        with Progress(err, "run") as bar:
            task = bar.add_task(str(config))
            result = run_config(data, progress=lambda f: bar.update(task, f), name=source)
        result_json = data.get("report", {}).get("json_path")
        path = json_out or (Path(result_json) if result_json else None)
        if path is not None:
            result.write_json(path)
    except (VpmuError, ValueError) as exc:
        raise _fail(exc) from None
    _print_result(result)
    if path is not None:
        out.print(f"result written to {path}")


def _print_result(result: Any) -> None:
    from ..plugins import default_manager
    from ..units import count, duration, percent

    title = (
        f"{result.machine}: {result.backend} backend, {result.strategy} strategy, "
        f"{result.workload} workload"
    )
    table = Table(title=title)
    for col in ("vCPU", "counter", "event", "value", "workload retired", "difference"):
        left = col in ("counter", "event")
        table.add_column(col, justify="left" if left else "right", no_wrap=not left)
    for row in result.counters:
        diff = "" if row.expected is None else f"{row.value - row.expected:+,}"
        table.add_row(
            str(row.vcpu),
            row.counter,
            row.event,
            count(row.value),
            count(row.expected) if row.expected is not None else "",
            diff,
        )
    out.print(table)
    mech = Table(title="mechanism events (ledger)")
    mech.add_column("category")
    mech.add_column("event")
    mech.add_column("count", justify="right")
    mech.add_column("each", justify="right")
    mech.add_column("total", justify="right")
    for cat, items in result.ledger.items():
        for name, n in items.items():
            key = _price_key(cat, name)
            each = result.cost.ns_per_op.get(key)
            total = result.cost.by_mechanism.get(key)
            mech.add_row(
                cat,
                name,
                count(n),
                "" if each is None else duration(each),
                "" if total is None else duration(total),
            )
    out.print(mech)
    pmis = ", ".join(count(n) for n in result.pmis)
    dropped = sum(result.pmis_dropped)
    out.print(f"PMIs delivered per vCPU: {pmis}; dropped at a masked LVTPC: {count(dropped)}")
    for line in overhead_lines(result.cost, result.operations, default_manager()):
        out.print(line, highlight=False, soft_wrap=True)
    if result.count_error_pct is not None:
        out.print(f"largest counting error: {percent(result.count_error_pct)}")
    if result.host_blind_s:
        out.print(f"host perf blind to the PMU for {duration(result.host_blind_s * 1e9)}")


def _price_key(category: str, name: str) -> str:
    prefix = {"exits": "exit", "perf_ops": "perf", "pmis": "pmi"}.get(category, category)
    return f"{prefix}:{name}"
