"""What every ``vpmu`` command shares: the app, the consoles, the one-line error,
the options every command that runs a config takes (``--set``, ``-v``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from loguru import logger
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    # help text is plain text: "[compare]" is a TOML table, not rich markup
    rich_markup_mode=None,
    help="vpmu: model x86 virtual PMUs and what each KVM virtualization design costs.",
)
out = Console()
err = Console(stderr=True)


def _log(ctx: typer.Context, verbose: int) -> int:
    """``-v``: a stderr sink for the command, removed when the command's context closes.

    Why removed: a sink outlives the command otherwise, and the next command in the
    same process (a test's CliRunner, a notebook) logs into the first one's stderr,
    closed by then ("I/O operation on closed file").
    """
    if verbose:
        logger.remove()
        sink = logger.add(sys.stderr, level="DEBUG" if verbose > 1 else "INFO")
        logger.enable("vpmu_core")
        ctx.call_on_close(lambda: _unlog(sink))
    return verbose


def _unlog(sink: int) -> None:
    try:
        logger.remove(sink)
    except ValueError:  # a later -v of the same command line removed it already
        return
    logger.disable("vpmu_core")


Verbose = Annotated[
    int,
    typer.Option(
        "--verbose", "-v", count=True, callback=_log, help="log what vpmu does (-vv: debug)"
    ),
]


@app.callback()
def _main(verbose: Verbose = 0) -> None:
    """vpmu: model x86 virtual PMUs and what each KVM virtualization design costs."""


def _fail(exc: BaseException) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


ConfigArg = Annotated[Path, typer.Argument(help="a TOML config, e.g. configs/intel-kvm.toml")]

Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="change one config key for this run, dotted as in docs/config.md "
        "(repeatable), e.g. --set machine.vcpus=4 --set workload.events=6*instructions",
    ),
]


#: a file a command writes only when asked (``--json``, ``--csv``, ``--plot``)
OutFile = Path | None


def output(flag: str, help: str) -> Any:
    """The option of an :data:`OutFile`: ``Annotated[OutFile, output("--json", "...")]``.

    One declaration for every command's output files; each keeps its own help, which
    says what that command writes there. :func:`check_outputs` checks them all.
    """
    return typer.Option(flag, help=help)


def check_outputs(config: Path, outputs: dict[str, Path | None]) -> None:
    """Every file a command will write, checked before it runs (``vpmu_core.output``):
    a long run must not end in an unwritable path or over its own config, nor a plot
    in a format, or without the matplotlib, it cannot be drawn in."""
    from ..output import check_output

    for option, path in outputs.items():
        if path is not None:
            check_output(path, option, inputs=(config,))
            if option == "--plot":
                from ..plots import check_plot_path

                check_plot_path(path)
