"""``vpmu reproduce``: every published figure of the shipped configs, and how sure each is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigError, VpmuError
from .common import OutFile, Sets, Verbose, _fail, app, err, out, output
from .progress import Progress


@app.command()
def reproduce(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="SEED",
            help="run this config only (repeatable), by file stem: seed-register or register",
        ),
    ] = None,
    sets: Sets = None,
    json_out: Annotated[
        OutFile, output("--json", "write every figure (or the sensitivity) here")
    ] = None,
    sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity",
            help="set every cost the spec gives as a range, and every estimate, to its low "
            "and its high end in turn, and draw a tornado chart per published figure",
        ),
    ] = False,
    costs: Annotated[
        list[str] | None,
        typer.Option(
            "--cost", metavar="NAME", help="with --sensitivity: vary only this cost (repeatable)"
        ),
    ] = None,
    plot_dir: Annotated[
        Path, typer.Option("--plot-dir", help="with --sensitivity: where the charts go")
    ] = Path("out/sensitivity"),
    configs: Annotated[
        Path | None,
        typer.Option("--configs", help="the directory of configs to look in [default: vpmu's own]"),
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """Run every config with published figures (its [compare] table) and print one
    table: seed, figure, published, model, relative error and the mechanism the
    model's run spends most on.

    --set KEY=VALUE goes to every config that has KEY (a workload.* key only where
    the workload kind has it); --set SEED:KEY=VALUE to that config only, e.g.
    --set seed-mediated-table:machine.vcpus=4. Ctrl-C stops it and writes nothing.
    """
    from ..output import write_output
    from ..reproduce import CONFIGS, discover, prepare, reproduce, runs, select

    try:
        if json_out is not None:
            from ..output import check_output

            check_output(json_out, "--json")
        if costs and not sensitivity:
            raise ConfigError("--cost", costs[0], "only with --sensitivity")
        if sensitivity:
            _check_plot_dir(plot_dir)
        seeds = prepare(select(discover(configs or CONFIGS), only or ()), sets or ())
        if sensitivity:
            result: Any = _sensitivity(seeds, sets or (), costs or ())
            from ..tornado import plot_tornado

            for fs in result.figures:
                ran_with = ", ".join(result.applied.get(fs.figure.seed, []))
                fs.charts = [str(p) for p in plot_tornado(fs, plot_dir, ran_with)]
        else:
            with Progress(err, "reproduce") as bar:
                tasks = {key: bar.add_task(" | ".join(k for k in key if k)) for key in runs(seeds)}

                def tell(seed: str, row: str, col: str, f: float) -> None:
                    bar.update(tasks[(seed, row, col)], f)

                result = reproduce(seeds, sets or (), progress=tell)
        if json_out is not None:
            write_output(json_out, json.dumps(result.model_dump(), indent=2) + "\n", "--json")
    except (VpmuError, ValueError) as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err.print("interrupted: nothing written", highlight=False)
        raise typer.Exit(130) from None
    for seed in seeds:
        if seed.applied:
            out.print(
                f"{seed.name} ran with {', '.join(seed.applied)}", highlight=False, soft_wrap=True
            )
    if sensitivity:
        _print_sensitivity(result)
        out.print(f"tornado charts written to {plot_dir}/", highlight=False)
    else:
        _print_figures(result.published())
    if json_out is not None:
        out.print(f"written to {json_out}", highlight=False)


def _sensitivity(seeds: Any, sets: Any, costs: Any) -> Any:
    from ..reproduce import runs
    from ..sensitivity import sensitivity, unknowns, variants

    known = unknowns(names=costs)
    with Progress(err, "sensitivity") as bar:
        ids = {}
        for s in seeds:
            n = (1 + len(variants(s, known))) * len({(r, c) for _, r, c in runs([s])})
            ids[s.name] = bar.add_task(f"{s.name}: {n} runs", total=1.0)

        def tell(seed: str, done: int, total: int) -> None:
            bar.update(ids[seed], done / total)

        return sensitivity(seeds, known, sets, progress=tell)


def _check_plot_dir(path: Path) -> None:
    from ..plots import check_plot_path

    if path.exists() and not path.is_dir():
        raise ConfigError("--plot-dir", str(path), "is a file; give a directory")
    check_plot_path(path / "chart.png")


def _print_rows(title: str, heads: tuple[str, ...], rows: list[list[str]]) -> None:
    """A table as wide as its longest cells, wider than the terminal rather than a
    figure folded over three lines (as vpmu compare's grid)."""
    from .tables import print_whole

    table = Table(title=title, title_justify="left")
    for col in heads:
        right = col in ("published", "model", "error")
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    print_whole(out, table)


def _mostly(f: Any) -> str:
    """The run's dominant mechanism, marked where the figure is not the run's overhead."""
    from ..compare import dominant_is_the_figure_s

    if f.dominant is None:
        return "-"
    return f.dominant if dominant_is_the_figure_s(f) else f"{f.dominant} (run)"


def _print_figures(figs: list[Any]) -> None:
    from ..compare import starved
    from ..units import STARVED_PCT, figure, signed_percent

    rows = [
        [
            f.seed.removeprefix("seed-"),
            f"{f.row}: {f.column}",
            figure(f.published, f.unit),
            figure(f.model, f.unit) + (" (starved)" if starved(f) else ""),
            signed_percent(f.rel_error_pct),
            _mostly(f),
        ]
        for f in figs
    ]
    heads = ("seed", "figure", "published", "model", "error", "mostly")
    _print_rows("published figures, modelled", heads, rows)
    if any(r[3].endswith(" (starved)") for r in rows):
        out.print(
            f"(starved): the run's overhead is {STARVED_PCT / 100:.0f}× the guest's own "
            "time or more; the vPMU left the guest almost no time to do its work",
            highlight=False,
            soft_wrap=True,
        )
    if any(r[-1].endswith(" (run)") for r in rows):
        out.print(
            "mostly: the mechanism the run's priced overhead spends most on; (run): the "
            "figure is not that overhead (a sample rate or the workload's own figure)",
            highlight=False,
            soft_wrap=True,
        )


def _print_sensitivity(result: Any) -> None:
    from ..units import figure

    rows = []
    for fs in result.figures:
        f = fs.figure
        top = [s for s in fs.swings if s.swing > 0][:2]
        moves = "; ".join(
            f"{s.cost}: {figure(s.at_low, f.unit)} -> {figure(s.at_high, f.unit)}" for s in top
        )
        rows.append(
            [
                f.seed.removeprefix("seed-"),
                f"{f.row}: {f.column}",
                figure(f.published, f.unit),
                figure(f.model, f.unit),
                moves or "nothing moves it",
            ]
        )
    heads = ("seed", "figure", "published", "model", "largest swings (cost low -> high)")
    _print_rows("what moves each published figure", heads, rows)
