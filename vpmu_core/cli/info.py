"""The commands about vpmu itself: validate, plugins, new-plugin, schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import VpmuError
from .common import ConfigArg, _fail, app, out


@app.command()
def validate(config: ConfigArg) -> None:
    """Check a config without running it."""
    from ..api import load_config

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
    from ..plugins import default_manager

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
    from ..plugins import SINGULAR

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
    from ..scaffold import new_plugin as scaffold

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
    from ..config import root_model
    from ..plugins import default_manager
    from ..reference import builtin_manager, config_reference

    pm = builtin_manager() if builtin else default_manager()
    if markdown:
        sys.stdout.write(config_reference(pm))
        return
    model = root_model(pm)
    out.print_json(json.dumps(model.model_json_schema(by_alias=True)))
