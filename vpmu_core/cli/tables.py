"""Tables that fit the terminal without cutting a strategy's name.

Why a legend: ``mediated:passthrough_controls=true`` is 35 characters; six such
columns do not fit 80, and rich would fold or cut them into fragments nobody can
match to a strategy. When the full names do not fit, the headers become ``[1]``,
``[2]``, ... and the names are printed in full under the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def headers(
    labels: Sequence[str], first: int, cell: int, width: int
) -> tuple[list[str], list[str]]:
    """Column headers for ``labels`` and the legend lines (empty when the names fit).

    ``first`` is the width of the row-name column, ``cell`` the widest cell.
    """
    need = first + 4 + sum(max(len(label), cell) + 3 for label in labels)
    if need <= width or all(len(label) <= max(cell, 3) for label in labels):
        return list(labels), []  # they fit, or numbered headers would be no narrower
    short = [f"[{i}]" for i in range(1, len(labels) + 1)]
    return short, [f"{s} {label}" for s, label in zip(short, labels, strict=True)]


def print_grid(
    console: Console,
    title: str,
    labels: Sequence[str],
    rows: Sequence[tuple[str, Sequence[str]]],
) -> None:
    """A row-name column and one right-aligned column per label, never wider than
    the terminal; long labels become numbered headers with a legend."""
    first = max((len(name) for name, _ in rows), default=0)
    cell = max((len(c) for _, cells in rows for c in cells), default=0)
    heads, legend = headers(labels, first, cell, console.width)
    table = Table(title=title, title_justify="left")
    narrow = first + 4 + sum(max(len(h), cell) + 3 for h in heads)
    table.add_column("", no_wrap=True)
    for head in heads:
        table.add_column(head, justify="right", no_wrap=True)
    for name, cells in rows:
        table.add_row(name, *cells)
    # wider than the terminal rather than a number folded over two lines
    Console(width=max(console.width, narrow), file=console.file).print(table)
    for line in legend:
        console.print(line, highlight=False, soft_wrap=True)
