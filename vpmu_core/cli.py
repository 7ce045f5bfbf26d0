"""The ``vpmu`` command line (typer + rich).

Errors a user can fix (a config key, a plugin name, a snapshot) are printed as one
line on stderr with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from loguru import logger
from rich.console import Console
from rich.table import Table

from .errors import VpmuError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="vpmu: model x86 virtual PMUs and what each KVM virtualization design costs.",
)
out = Console()
err = Console(stderr=True)


@app.callback()
def _main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="log what vpmu does (-vv: debug)")
    ] = 0,
) -> None:
    if verbose:
        logger.remove()
        logger.add(sys.stderr, level="DEBUG" if verbose > 1 else "INFO")
        logger.enable("vpmu_core")


def _fail(exc: BaseException) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


ConfigArg = Annotated[Path, typer.Argument(help="a TOML config, e.g. configs/intel-kvm.toml")]


@app.command()
def run(
    config: ConfigArg,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the result as JSON here")
    ] = None,
) -> None:
    """Run a config's workload and print counters, PMIs, exits and their cost."""
    from .api import run as run_config

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
    from .api import load_config

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
    from .compare import compare as run_compare
    from .compare import compare_table, has_table, summary, table_runs
    from .io import atomic_write_text
    from .overrides import parse_strategies

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


def _figure(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.2f}%"
    text = f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}".rstrip()


def _print_table(table: Any) -> None:
    """The model's figures beside the published ones, with each relative error; a
    row names its metric and unit, and its source is printed under the table."""
    t = Table(title="model vs published (relative error)")
    t.add_column("", no_wrap=True)
    for col in table.columns:
        t.add_column(col, justify="right")
    sources: dict[str, str] = {}
    for row in table.rows:
        cells = []
        mine = [c for c in table.cells if c.row == row]
        for c in mine:
            model = "-" if c.model is None else _figure(c.model, c.unit)
            if c.published is None:
                cells.append(model)
                continue
            err_s = "" if c.rel_error_pct is None else f" ({c.rel_error_pct:+.0f}%)"
            cells.append(f"{model} vs {_figure(c.published, c.unit)}{err_s}")
        head = f"{row or '-'}\n\\[{mine[0].metric}, {mine[0].unit}]" if mine else row or "-"
        if mine and mine[0].source:
            sources[row or "-"] = mine[0].source
        t.add_row(head, *cells)
    Console(width=max(out.width, 40 + 30 * len(table.columns))).print(t)
    for row, source in sources.items():
        out.print(f"{row}: {source}", highlight=False, soft_wrap=True)


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


@app.command()
def validate(config: ConfigArg) -> None:
    """Check a config without running it."""
    from .api import load_config

    try:
        cfg = load_config(config)
    except (VpmuError, ValueError) as exc:
        raise _fail(exc) from None
    out.print(
        f"{config}: ok ({cfg.pmu.backend} backend, {cfg.strategy.name} strategy, "
        f"{cfg.workload.kind if cfg.workload else 'no'} workload)"
    )


@app.command()
def plugins(
    hooks: Annotated[
        bool, typer.Option("--hooks", help="list the hooks each plugin implements")
    ] = False,
) -> None:
    """List every plugin: name, version, what it provides, and any load failure."""
    from .plugins import default_manager

    pm = default_manager()
    table = Table(title="vpmu plugins")
    for col in ("plugin", "version", "module", "provides", "status"):
        table.add_column(col, overflow="fold")
    for info in pm.plugins():
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(info.provides.items()))
        status = f"[red]failed: {info.error}[/]" if info.error else "ok"
        table.add_row(info.name, info.version, info.module, provides, status)
    out.print(table)
    if hooks:
        for info in pm.plugins():
            out.print(f"[bold]{info.name}[/]", highlight=False)
            out.print(f"  module hooks: {', '.join(info.hooks) or '-'}", soft_wrap=True)
            for line in _component_hooks(pm, info.provides):
                out.print(f"  {line}", soft_wrap=True, highlight=False)


def _component_hooks(pm: Any, provides: dict[str, list[str]]) -> list[str]:
    """The machine hooks each component a plugin registered implements."""
    from .plugins import SINGULAR

    lines = []
    for kind, items in sorted(provides.items()):
        for item in items:
            cls = pm.registry[kind][item]
            names = sorted(a for a in dir(cls) if a.startswith("vpmu_"))
            lines.append(f"{SINGULAR[kind]} {item}: {', '.join(names) or '-'}")
    return lines


@app.command("new-plugin")
def new_plugin(
    name: Annotated[str, typer.Argument(help="the plugin's name, e.g. my-pmu")],
    kind: Annotated[str, typer.Option("--kind", help="backend, strategy or extension")] = "backend",
    directory: Annotated[
        Path | None, typer.Option("--dir", help="where to write it (default: ./vpmu-NAME)")
    ] = None,
) -> None:
    """Generate a plugin package: pyproject with the entry point, hooks, config, suite test."""
    from .scaffold import new_plugin as scaffold

    try:
        files = scaffold(name, kind, directory)
    except VpmuError as exc:
        raise _fail(exc) from None
    root = files[0].parent
    for path in files:
        out.print(f"wrote {path}", highlight=False)
    out.print(
        f"next: pip install -e {root} && (cd {root} && python -m pytest) "
        f"&& vpmu run {root / 'example.toml'}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def schema(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="the config reference (docs/config.md) instead")
    ] = False,
    builtin: Annotated[
        bool, typer.Option("--builtin", help="vpmu's own plugins only, as docs/config.md has")
    ] = False,
) -> None:
    """Print the JSON Schema of a whole config file for the installed plugins."""
    from .config import root_model
    from .plugins import default_manager
    from .reference import builtin_manager, config_reference

    pm = builtin_manager() if builtin else default_manager()
    if markdown:
        sys.stdout.write(config_reference(pm))
        return
    model = root_model(pm)
    out.print_json(json.dumps(model.model_json_schema(by_alias=True)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
