"""``vpmu run``: one config, its counters against the ground truth, and what it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import VpmuError
from .common import ConfigArg, _fail, app, out


@app.command()
def run(
    config: ConfigArg,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the result as JSON here")
    ] = None,
) -> None:
    """Run a config's workload and print counters, PMIs, exits and their cost."""
    from ..api import run as run_config

    try:
        result = run_config(config)
        path = json_out or (Path(result_json) if (result_json := _report_json(config)) else None)
        if path is not None:
            result.write_json(path)
    except (VpmuError, ValueError) as exc:
        raise _fail(exc) from None
    _print_result(result)
    if path is not None:
        out.print(f"result written to {path}")


def _report_json(config: Path) -> str | None:
    from ..api import load_config

    cfg = load_config(config)
    json_path: str | None = cfg.report.json_path
    return json_path


def _print_result(result: Any) -> None:
    title = (
        f"{result.machine}: {result.backend} backend, {result.strategy} strategy, "
        f"{result.workload} workload"
    )
    table = Table(title=title)
    for col in ("vCPU", "counter", "event", "value", "workload retired", "difference"):
        left = col in ("counter", "event")
        table.add_column(col, justify="left" if left else "right", overflow="fold")
    for row in result.counters:
        diff = "" if row.expected is None else f"{row.value - row.expected:+,}"
        expected = "" if row.expected is None else f"{row.expected:,}"
        table.add_row(str(row.vcpu), row.counter, row.event, f"{row.value:,}", expected, diff)
    out.print(table)
    mech = Table(title="mechanism events (ledger)")
    mech.add_column("category")
    mech.add_column("event")
    mech.add_column("count", justify="right")
    mech.add_column("ns each", justify="right")
    mech.add_column("total ns", justify="right")
    for cat, items in result.ledger.items():
        for name, n in items.items():
            key = _price_key(cat, name)
            each = result.cost.ns_per_op.get(key)
            total = result.cost.by_mechanism.get(key)
            mech.add_row(
                cat,
                name,
                f"{n:,}",
                "" if each is None else f"{each:,.0f}",
                "" if total is None else f"{total:,.0f}",
            )
    out.print(mech)
    pmis = ", ".join(f"{n}" for n in result.pmis)
    dropped = sum(result.pmis_dropped)
    out.print(f"PMIs delivered per vCPU: {pmis}; dropped at a masked LVTPC: {dropped}")
    overhead = result.cost.overhead_pct
    share = (
        ""
        if overhead is None
        else f" = {overhead:.2f}% of {result.cost.guest_ns:,.0f} ns guest time"
    )
    out.print(f"overhead: {result.cost.total_ns:,.0f} ns{share}")
    if result.count_error_pct is not None:
        out.print(f"largest counting error: {result.count_error_pct:.3f}%")
    if result.host_blind_s:
        out.print(f"host perf blind to the PMU for {result.host_blind_s:.3f} s")


def _price_key(category: str, name: str) -> str:
    prefix = {"exits": "exit", "perf_ops": "perf", "pmis": "pmi"}.get(category, category)
    return f"{prefix}:{name}"
