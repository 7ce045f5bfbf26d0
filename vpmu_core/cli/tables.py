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


def print_whole(console: Console, table: Table) -> None:
    """Print ``table`` without folding or cutting a cell: as wide as its widest row
    needs, wider than the terminal only when it must be."""
    from rich.measure import Measurement

    need = Measurement.get(console, console.options.update(width=10_000), table).maximum
    Console(width=max(console.width, need), file=console.file).print(table)


def print_grid(
    console: Console,
    title: str,
    labels: Sequence[str],
    rows: Sequence[tuple[str, Sequence[str]]],
) -> None:
    """A row-name column and one right-aligned column per label, within the terminal:
    long labels become numbered headers with a legend, and columns that still do not
    fit go on to further tables that repeat the row names."""
    first = max((len(name) for name, _ in rows), default=0)
    cell = max((len(c) for _, cells in rows for c in cells), default=0)
    heads, legend = headers(labels, first, cell, console.width)
    per = [max([len(h)] + [len(cells[i]) for _, cells in rows]) + 3 for i, h in enumerate(heads)]
    chunks: list[list[int]] = [[]]
    for i, w in enumerate(per):
        used = first + 4 + sum(per[j] for j in chunks[-1])
        if chunks[-1] and used + w > console.width:
            chunks.append([])
        chunks[-1].append(i)
    for n, chunk in enumerate(chunks):
        table = Table(title=title if n == 0 else None, title_justify="left")
        table.add_column("", no_wrap=True)
        for i in chunk:
            table.add_column(heads[i], justify="right", no_wrap=True)
        for name, cells in rows:
            table.add_row(name, *(cells[i] for i in chunk))
        print_whole(console, table)
    for line in legend:
        console.print(line, highlight=False, soft_wrap=True)
