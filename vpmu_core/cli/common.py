"""What every ``vpmu`` command shares: the app, the consoles, the one-line error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from loguru import logger
from rich.console import Console

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
