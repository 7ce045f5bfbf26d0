"""``vpmu sweep``: one config over a grid of overrides, each point under each strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import VpmuError
from .common import ConfigArg, OutFile, Sets, Verbose, _fail, app, check_outputs, err, out, output
from .progress import Progress
from .tables import print_whole


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
        OutFile, output("--json", "write every row, with the sweep, as JSON")
    ] = None,
    csv_out: Annotated[OutFile, output("--csv", "write one line per point and strategy")] = None,
    plot: Annotated[
        OutFile, output("--plot", "draw overhead vs the first swept key (.png or .svg)")
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
    from ..output import write_output
    from ..overrides import parse_strategies

    try:
        outputs = {"--json": json_out, "--csv": csv_out, "--plot": plot, "--resume": resume}
        check_outputs(config, outputs)
        specs = parse_strategies(strategies) if strategies is not None else None
        grid = sw.plan(config, params, specs, sets or ())
        done = sw.read_resume(resume, grid) if resume is not None else []
        runner = launchers.dask(dask, workers) if dask else launchers.local(workers)
        saved = list(done)

        def save(row: dict[str, Any]) -> None:
            if resume is not None:
                saved.append(row)
                write_output(resume, sw.to_json(grid, saved), "--resume")

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
            write_output(json_out, sw.to_json(grid, rows), "--json")
        if csv_out is not None:
            write_output(csv_out, sw.to_csv(grid, rows), "--csv")
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
    """One line per point and strategy: the parameters, then what a reader compares.

    Off a wide terminal the figures are split over as many tables as it takes to fit,
    each repeating the parameters and the strategy, rather than folding a cell.
    """
    from ..units import count, duration, percent

    per_op = any(r.get("ns_per_operation") is not None for r in rows)
    keys: list[tuple[str, list[str]]] = [(k, [str(r[k]) for r in rows]) for k in grid.params]
    names = list(grid.strategies)
    short = {n: n for n in names}
    figures: list[tuple[str, Any]] = [
        (
            "per operation" if per_op else "overhead",
            (lambda r: duration(r["ns_per_operation"]))
            if per_op
            else (lambda r: percent(r["steady_pct"])),
        ),
        ("one-time", lambda r: duration(r["one_time_ns"]) if r["one_time_ns"] else "-"),
        ("mostly", lambda r: r["dominant"] or "-"),
        ("exits", lambda r: count(sum(r["exits"].values()))),
        ("perf ops", lambda r: count(sum(r["perf_ops"].values()))),
        ("PMIs injected", lambda r: count(r["pmis"].get("injected", 0))),
        ("count error", lambda r: percent(r["count_error_pct"])),
        ("samples lost", lambda r: count(r["samples_lost"])),
    ]
    cols = [
        (h, [("n/a" if i == 0 else "") if "n/a" in r else get(r) for r in rows])
        for i, (h, get) in enumerate(figures)
    ]

    def width(col: tuple[str, list[str]]) -> int:
        return max([len(w) for w in col[0].split()] + [len(c) for c in col[1]]) + 3

    whole = sum(width(c) for c in keys) + max(map(len, names)) + 4 + sum(map(width, cols))
    if whole > out.width and max(map(len, names)) > 12:
        short = {n: f"[{i}]" for i, n in enumerate(names, start=1)}  # named under the table
    keys.append(("strategy", [short[r["strategy"]] for r in rows]))
    lead = sum(width(c) for c in keys) + 1
    tables: list[list[tuple[str, list[str]]]] = [[]]
    for col in cols:
        used = lead + sum(width(c) for c in tables[-1])
        if tables[-1] and used + width(col) > out.width:
            tables.append([])
        tables[-1].append(col)
    for n, part in enumerate(tables):
        title = f"{config}: sweep of {', '.join(grid.params)}" if n == 0 else None
        table = Table(title=title, title_justify="left")
        for head, _ in keys:
            table.add_column(head, no_wrap=True)
        for head, _ in part:
            table.add_column(head, justify="left" if head == "mostly" else "right")
        for i in range(len(rows)):
            table.add_row(*(c[1][i] for c in keys), *(c[1][i] for c in part))
        print_whole(out, table)
    for name in names:
        if short[name] != name:
            out.print(f"{short[name]} {name}", highlight=False, soft_wrap=True)
    what = "steady-state time per operation" if per_op else "steady-state % of guest time"
    out.print(f"overhead: {what}; one-time costs apart", highlight=False)
    for r in rows:
        if "n/a" in r:
            out.print(
                f"point {r['point']} {r['strategy']}: n/a ({r['n/a']})",
                highlight=False,
                soft_wrap=True,
            )
