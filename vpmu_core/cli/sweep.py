"""``vpmu sweep``: one config over a grid of overrides, each point under each strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import VpmuError
from .common import ConfigArg, Sets, Verbose, _fail, app, err, out
from .progress import Progress


@app.command()
def sweep(
    config: ConfigArg,
    params: Annotated[
        list[str],
        typer.Option(
            "--param",
            metavar="KEY=V1,V2,...",
            help="a key to sweep and its values (repeatable: the grid is every combination). "
            "Lists: 6*instructions (six items), instructions+cycles (two), or TOML "
            '["a","b"]; a comma inside [] or quotes does not split values',
        ),
    ],
    strategies: Annotated[
        str | None,
        typer.Option(
            "--strategies",
            help="run each point under each of these (name:key=value as in compare); "
            "default: the config's strategy",
        ),
    ] = None,
    sets: Sets = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="processes to run points in (default: CPU count)"),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="ADDRESS",
            help="run the points on the dask.distributed scheduler at ADDRESS "
            '(tcp://host:8786), or "local" for a LocalCluster of --workers processes',
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write every row, with the sweep, as JSON")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="write one line per point and strategy")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="draw overhead vs the first swept key (.png or .svg)"),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="FILE",
            help="skip the points FILE (this sweep's JSON) holds, and save each point "
            "there as it finishes, so an interrupted sweep goes on where it stopped",
        ),
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """Run a config over the grid of --param values, each point a full run, in one table.

    Every point is validated before anything runs. Points run in a local process
    pool, or on a dask cluster with --dask; the rows are the same either way.
    Ctrl-C stops it and writes no output file (a --resume file keeps the points
    already done).
    """
    from .. import launchers
    from .. import sweep as sw
    from ..io import atomic_write_text
    from ..overrides import parse_strategies

    try:
        specs = parse_strategies(strategies) if strategies is not None else None
        if plot is not None:
            from ..plots import check_plot_path

            check_plot_path(plot)
        grid = sw.plan(config, params, specs, sets or ())
        done = sw.read_resume(resume, grid) if resume is not None else []
        runner = launchers.dask(dask, workers) if dask else launchers.local(workers)
        saved = list(done)

        def save(row: dict[str, Any]) -> None:
            if resume is not None:
                saved.append(row)
                atomic_write_text(resume, sw.to_json(grid, saved))

        todo = len(grid.tasks) - len(done)
        with Progress(err, "sweep") as bar:
            task = bar.add_task(f"{todo} runs", total=max(todo, 1))
            count = [0]

            def tell(row: dict[str, Any]) -> None:
                count[0] += 1
                bar.update(task, count[0])
                save(row)

            rows = sw.run(grid, runner, done, tell)
        if json_out is not None:
            atomic_write_text(json_out, sw.to_json(grid, rows))
        if csv_out is not None:
            atomic_write_text(csv_out, sw.to_csv(grid, rows))
        if plot is not None:
            from ..plots import plot_sweep, title

            plot_sweep(rows, grid.params, grid.strategies, plot, title(config, sets or ()))
    except (VpmuError, ValueError) as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        kept = f"; {resume} keeps the points done" if resume is not None else ""
        err.print(f"interrupted: nothing written{kept}", highlight=False)
        raise typer.Exit(130) from None
    _print_sweep(str(config), grid, rows)
    for what, path in (("rows", json_out), ("CSV", csv_out), ("plot", plot)):
        if path is not None:
            out.print(f"{what} written to {path}", highlight=False)


def _print_sweep(config: str, grid: Any, rows: list[dict[str, Any]]) -> None:
    """One line per point and strategy: the parameters, then what a reader compares."""
    from ..units import count, duration, percent

    per_op = any(r.get("ns_per_operation") is not None for r in rows)
    table = Table(title=f"{config}: sweep of {', '.join(grid.params)}", title_justify="left")
    for key in grid.params:
        table.add_column(key, no_wrap=True)
    table.add_column("strategy", no_wrap=True)
    heads = ["per operation" if per_op else "overhead", "one-time", "mostly", "exits"]
    heads += ["perf ops", "PMIs injected", "count error", "samples lost"]
    for head in heads:
        table.add_column(head, justify="right" if head != "mostly" else "left", no_wrap=True)
    refused = []
    for r in rows:
        cells = [str(r[k]) for k in grid.params] + [r["strategy"]]
        if "n/a" in r:
            table.add_row(*cells, "n/a", *[""] * (len(heads) - 1))
            refused.append(f"point {r['point']} {r['strategy']}: n/a ({r['n/a']})")
            continue
        lead = duration(r["ns_per_operation"]) if per_op else percent(r["overhead_pct"])
        table.add_row(
            *cells,
            lead,
            duration(r["one_time_ns"]) if r["one_time_ns"] else "-",
            r["dominant"] or "-",
            count(sum(r["exits"].values())),
            count(sum(r["perf_ops"].values())),
            count(r["pmis"].get("injected", 0)),
            percent(r["count_error_pct"]),
            count(r["samples_lost"]),
        )
    need = sum(
        max([len(str(c.header))] + [len(str(x)) for x in c.cells]) + 3 for c in table.columns
    )
    Console(width=max(out.width, need + 1), file=out.file).print(table)
    what = "steady-state time per operation" if per_op else "steady-state % of guest time"
    out.print(f"overhead: {what}; one-time costs apart", highlight=False)
    for line in refused:
        out.print(line, highlight=False, soft_wrap=True)
