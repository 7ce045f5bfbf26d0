"""``vpmu compare``: one config under several strategies, side by side."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..errors import VpmuError
from .common import ConfigArg, OutFile, Sets, Verbose, _fail, app, check_outputs, err, out, output
from .progress import Progress
from .tables import print_grid


@app.command()
def compare(
    config: ConfigArg,
    strategies: Annotated[
        str | None,
        typer.Option(
            "--strategies",
            help="comma-separated strategies, each once; options as name:key=value "
            "(e.g. emulated-legacy:reprogram_on_pmi=cpu-changed). Default: the config's "
            "[compare] table if it has one, else every installed strategy",
        ),
    ] = None,
    json_out: Annotated[OutFile, output("--json", "write the per-strategy summary here")] = None,
    plot: Annotated[
        OutFile, output("--plot", "draw the comparison as grouped bars (.png or .svg)")
    ] = None,
    sets: Sets = None,
    verbose: Verbose = 0,
) -> None:
    """Run one config under several strategies and show them side by side.

    A strategy that refuses the config is an n/a column with its reason. A config
    with a [compare] table (e.g. configs/seed-mediated-table.toml) runs each of its
    rows under each of its columns and prints the model's overhead beside the
    published figure. Ctrl-C stops it and writes no output file.
    """
    from ..compare import all_strategies, compare_table, has_table, summary, table_runs
    from ..compare import compare as run_compare
    from ..overrides import configured, parse_strategies
    from .run import write_after_report

    try:
        check_outputs(config, {"--json": json_out, "--plot": plot})
        data, source = configured(config, sets or ())
        specs = parse_strategies(strategies) if strategies is not None else None
        table_mode = specs is None and has_table(data)
        with Progress(err, "compare") as bar:
            if table_mode:
                tasks = {
                    key: bar.add_task(" | ".join(k for k in key if k)) for key in table_runs(data)
                }

                def tell(row: str, col: str, f: float) -> None:
                    bar.update(tasks[(row, col)], f)

                table = compare_table(data, progress=tell, source=source)
                payload: Any = table.model_dump()
            else:
                ids: dict[str, int] = {}

                def tell_one(label: str, f: float) -> None:
                    if label not in ids:
                        ids[label] = bar.add_task(label)
                    bar.update(ids[label], f)

                results = run_compare(
                    data, specs or all_strategies(), progress=tell_one, source=source
                )
                payload = {label: summary(r) for label, r in results.items()}
        if plot is not None:
            from ..plots import plot_compare, plot_table, title

            if table_mode:
                plot_table(table, plot, title(config, sets or ()))
            else:
                plot_compare(payload, plot, title(config, sets or ()))
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
        text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
        write_after_report(json_out, text, "--json")
        out.print(f"comparison written to {json_out}", highlight=False)
    if plot is not None:
        out.print(f"plot written to {plot}", highlight=False)


def _print_table(table: Any) -> None:
    """The model's figures beside the published ones, with each relative error; a
    row names its metric and unit, and its source is printed under the table."""
    from ..units import figure, signed_percent

    rows = []
    sources: dict[str, str] = {}
    for row in table.rows:
        mine = [c for c in table.cells if c.row == row]
        cells = []
        for c in mine:
            model = figure(c.model, c.unit)
            if c.published is None:
                cells.append(model)
                continue
            err_s = "" if c.rel_error_pct is None else f" ({signed_percent(c.rel_error_pct)})"
            cells.append(f"{model} vs {figure(c.published, c.unit)}{err_s}")
        head = f"{row or '-'} [{mine[0].metric}, {mine[0].unit}]" if mine else row or "-"
        if mine and mine[0].source:
            sources[row or "-"] = mine[0].source
        rows.append((head, cells))
    print_grid(out, "model vs published (relative error)", table.columns, rows)
    for row, source in sources.items():
        out.print(f"{row}: {source}", highlight=False, soft_wrap=True, markup=False)


def _print_compare(config: str, everything: dict[str, dict[str, Any]]) -> None:
    """The side-by-side table; a column whose strategy refused the config reads
    ``n/a`` and its reason is printed under the table, one line each."""
    from ..units import count, duration, percent

    refused = {label: s["n/a"] for label, s in everything.items() if "n/a" in s}
    sums = {label: s for label, s in everything.items() if "n/a" not in s}
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, get: Any, fmt: Any = count) -> None:
        cells = iter([fmt(get(s)) for s in sums.values()])
        rows.append((name, ["n/a" if lb in refused else next(cells) for lb in everything]))

    per_op = any(s.get("operations") for s in sums.values())
    if per_op:
        row(
            "overhead per operation",
            lambda s: s["steady_ns"] / s["operations"] if s.get("operations") else None,
            duration,
        )
    else:
        row("overhead (steady)", lambda s: s["steady_ns"], duration)
        row("overhead % of guest time", lambda s: s["steady_pct"], percent)
    row("  mostly", lambda s: s["dominant"] or "-", str)
    if any(s["one_time_ns"] for s in sums.values()):
        row("one-time costs", lambda s: s["one_time_ns"] or None, duration)
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
    row("count error", lambda s: s["count_error_pct"], percent)
    row("host blind", lambda s: s["host_blind_s"] * 1e9 or None, duration)
    wkeys = sorted(
        {
            k
            for s in sums.values()
            for k, v in s["workload"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    )
    for k in wkeys:
        fmt = duration if "_ns" in k else count  # a time in ns keeps its unit
        row(f"workload {k}", lambda s, k=k: s["workload"].get(k), fmt)
    print_grid(out, f"{config}: strategies side by side", list(everything), rows)
    once = {k for s in sums.values() for k in s["one_time"]}
    if once:
        from ..plugins import default_manager
        from .readout import meaning

        for name in sorted(once):
            out.print(
                f"one-time: {name}, {meaning(default_manager(), name)}; not in the steady state",
                highlight=False,
                soft_wrap=True,
            )
    for label, reason in refused.items():
        out.print(f"{label}: n/a ({reason})", highlight=False, soft_wrap=True)
