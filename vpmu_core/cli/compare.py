"""``vpmu compare``: one config under several strategies, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import VpmuError
from .common import ConfigArg, _fail, app, err, out

DEFAULT_STRATEGIES = "emulated-legacy,emulated,register,fastpath,mediated"


@app.command()
def compare(
    config: ConfigArg,
    strategies: Annotated[
        str | None,
        typer.Option(
            "--strategies",
            help="comma-separated strategies; options as name:key=value "
            "(e.g. emulated-legacy:reprogram_on_pmi=cpu-changed). Default: the config's "
            f"[compare] table if it has one, else {DEFAULT_STRATEGIES}",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the per-strategy summary here")
    ] = None,
) -> None:
    """Run one config under several strategies and show them side by side.

    A config with a [compare] table (e.g. configs/seed-mediated-table.toml) runs
    each of its rows under each of its columns and prints the model's overhead
    beside the published figure. Ctrl-C stops it and writes no output file.
    """
    from ..compare import compare as run_compare
    from ..compare import compare_table, has_table, summary, table_runs
    from ..io import atomic_write_text
    from ..overrides import parse_strategies

    try:
        table_mode = strategies is None and has_table(config)
        with _progress() as bar:
            if table_mode:
                tasks = {
                    key: bar.add_task(" | ".join(k for k in key if k), total=1.0)
                    for key in table_runs(config)
                }

                def tell(row: str, col: str, f: float) -> None:
                    bar.update(tasks[(row, col)], completed=f)

                table = compare_table(config, progress=tell)
                payload: Any = table.model_dump()
            else:
                specs = parse_strategies(strategies or DEFAULT_STRATEGIES)
                ids: dict[str, Any] = {}

                def tell_one(label: str, f: float) -> None:
                    if label not in ids:
                        ids[label] = bar.add_task(label, total=1.0)
                    bar.update(ids[label], completed=f)

                results = run_compare(config, specs, progress=tell_one)
                payload = {label: summary(r) for label, r in results.items()}
    except (VpmuError, ValueError) as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err.print("interrupted: nothing written", highlight=False)
        raise typer.Exit(130) from None
    if table_mode:
        _print_compare(str(config), payload["runs"])
        _print_table(table)
    else:
        _print_compare(str(config), payload)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(payload, indent=2, sort_keys=True) + "\n")
        out.print(f"comparison written to {json_out}")


def _progress() -> Any:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _print_table(table: Any) -> None:
    """The model's cells beside the published ones, with each relative error."""
    title = {
        "score": "guest overhead (lost score share O/(T+O))",
        "time": "guest overhead (O/T)",
        "samples": "samples taken (% of the asked rate)",
    }[table.metric]
    t = Table(title=f"{title}: model vs published")
    t.add_column("", no_wrap=True)
    for col in table.columns:
        t.add_column(col, justify="right")
    for row in table.rows:
        cells = []
        for c in (c for c in table.cells if c.row == row):
            model = "-" if c.model_pct is None else f"{c.model_pct:.2f}%"
            if c.published_pct is None:
                cells.append(model)
                continue
            err_s = "" if c.rel_error_pct is None else f" ({c.rel_error_pct:+.0f}%)"
            cells.append(f"{model} vs {c.published_pct:.2f}%{err_s}")
        t.add_row(row or "-", *cells)
    Console(width=max(out.width, 40 + 30 * len(table.columns))).print(t)


def _print_compare(config: str, everything: dict[str, dict[str, Any]]) -> None:
    """The side-by-side table; a column whose strategy refused the config reads
    ``n/a`` and its reason is printed under the table, one line each."""
    table = Table(title=f"{config}: strategies side by side")
    table.add_column("", no_wrap=True)
    for label in everything:
        table.add_column(label, justify="right")
    refused = {label: s["n/a"] for label, s in everything.items() if "n/a" in s}
    sums = {label: s for label, s in everything.items() if "n/a" not in s}
    rows: list[tuple[str, list[str]]] = []

    def num(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    def row(name: str, get: Any) -> None:
        cells = iter([num(get(s)) for s in sums.values()])
        rows.append((name, ["n/a" if lb in refused else next(cells) for lb in everything]))

    row("overhead ns", lambda s: s["overhead_ns"])
    row("overhead %", lambda s: s["overhead_pct"])
    reasons = sorted({r for s in sums.values() for r in s["exits"]})
    row("exits (all)", lambda s: sum(s["exits"].values()))
    for r in reasons:
        row(f"  exit {r}", lambda s, r=r: s["exits"].get(r, 0))
    ops = sorted({k for s in sums.values() for k in s["perf_ops"]})
    for k in ops:
        row(f"perf {k}", lambda s, k=k: s["perf_ops"].get(k, 0))
    for cat in ("pmis", "context_switches", "switch_msrs"):
        keys = sorted({k for s in sums.values() for k in s[cat]})
        for k in keys:
            row(f"{cat} {k}", lambda s, k=k, cat=cat: s[cat].get(k, 0))
    row("count error %", lambda s: s["count_error_pct"])
    row("host blind s", lambda s: s["host_blind_s"])
    wkeys = sorted(
        {
            k
            for s in sums.values()
            for k, v in s["workload"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    )
    for k in wkeys:
        row(f"workload {k}", lambda s, k=k: s["workload"].get(k))
    for name, cells in rows:
        table.add_row(name, *cells)
    wide = Console(width=max(out.width, 52 + 16 * len(everything)))
    wide.print(table)
    for label, reason in refused.items():
        out.print(f"{label}: n/a ({reason})", highlight=False, soft_wrap=True)
