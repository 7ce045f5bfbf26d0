"""``vpmu run``: one config, its counters against the ground truth, and what it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import VpmuError
from .common import ConfigArg, OutFile, Sets, Verbose, _fail, app, err, out, output
from .progress import Progress
from .readout import overhead_lines
from .tables import print_whole


@app.command()
def run(
    config: ConfigArg,
    json_out: Annotated[OutFile, output("--json", "also write the result as JSON here")] = None,
    sets: Sets = None,
    verbose: Verbose = 0,
) -> None:
    """Run a config's workload and print counters, PMIs, exits and their cost.

    The output path is checked before the run; if writing still fails after it, the
    report is printed first. Exit status 1 when a trace's `expect` failed.
    """
    from ..api import run as run_config
    from ..config import load_dict
    from ..output import check_output
    from ..overrides import configured
    from ..plugins import default_manager

    try:
        data, source = configured(config, sets or ())
        cfg = load_dict(data, default_manager(), source=source)
        result_json = cfg.report.json_path
        path = json_out or (Path(result_json) if result_json else None)
        option = "--json" if json_out is not None else "report.json"
        if path is not None:
            check_output(path, option, inputs=(config, getattr(cfg.workload, "path", None)))
        with Progress(err, "run") as bar:
            task = bar.add_task(str(config))
            result = run_config(data, progress=lambda f: bar.update(task, f), name=source)
    except (VpmuError, ValueError) as exc:
        raise _fail(exc) from None
    _print_result(result)
    if path is not None:
        write_after_report(path, result.model_dump_json(indent=2) + "\n", option)
        out.print(f"result written to {path}")
    if result.extra.get("mismatches"):
        raise typer.Exit(1)


def write_after_report(path: Path, text: str, option: str) -> None:
    """Write an output after the report was printed: a failure is one line, exit 2."""
    from ..output import write_output

    try:
        write_output(path, text, option)
    except VpmuError as exc:
        raise _fail(exc) from None


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
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
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
    print_whole(out, table)
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
    print_whole(out, mech)
    pmis = ", ".join(count(n) for n in result.pmis)
    dropped = sum(result.pmis_dropped)
    out.print(f"PMIs delivered per vCPU: {pmis}; dropped at a masked LVTPC: {count(dropped)}")
    for line in overhead_lines(result.cost, result.operations, default_manager()):
        out.print(line, highlight=False, soft_wrap=True)
    if result.count_error_pct is not None:
        out.print(f"largest counting error: {percent(result.count_error_pct)}")
    if result.host_blind_s:
        out.print(f"host perf blind to the PMU for {duration(result.host_blind_s * 1e9)}")
    _print_checks(result.extra)


def _print_checks(extra: dict[str, Any]) -> None:
    """A trace's guest faults and failed ``expect`` lines, one line each, by trace line."""
    for f in extra.get("faults", []):
        note = " (expected)" if f.get("expected") else ""
        out.print(f"trace line {f['line']}: {f['what']}{note}", highlight=False, soft_wrap=True)
    for m in extra.get("mismatches", []):
        out.print(
            f"[bold red]expect failed[/] at trace line {m['line']}: {m['what']}",
            highlight=False,
            soft_wrap=True,
        )


def _price_key(category: str, name: str) -> str:
    prefix = {"exits": "exit", "perf_ops": "perf", "pmis": "pmi"}.get(category, category)
    return f"{prefix}:{name}"
