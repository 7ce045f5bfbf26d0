"""Progress of a long command: bars on a terminal, a line every few seconds elsewhere.

Why both: a run under CI, ``nohup`` or a pipe used to be silent for minutes, because
rich hides its bars when stderr is not a terminal. Off a terminal the same tasks are
summarised on one stderr line every :data:`EVERY_S` seconds (and nothing at all for a
command done before then).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console

EVERY_S = 5.0


class Progress:
    """``add_task(description, total)`` and ``update(task, completed=...)``, as rich's."""

    def __init__(self, console: Console, what: str, every_s: float = EVERY_S) -> None:
        self.console = console
        self.what = what
        self.every_s = every_s
        self.bars: Any = None
        self.tasks: dict[int, list[Any]] = {}  # id -> [description, completed, total]
        self.start = time.monotonic()
        self.last = self.start
        if console.is_terminal:
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bars

            self.bars = Bars(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> Progress:
        if self.bars is not None:
            self.bars.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bars is not None:
            self.bars.__exit__(kind, exc, tb)

    def add_task(self, description: str, total: float = 1.0) -> int:
        if self.bars is not None:
            task: int = self.bars.add_task(description, total=total)
        else:
            task = len(self.tasks)
        self.tasks[task] = [description, 0.0, total]
        return task

    def update(self, task: int, completed: float) -> None:
        if self.bars is not None:
            self.bars.update(task, completed=completed)
            return
        self.tasks[task][1] = completed
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.console.print(self.line(now), highlight=False, soft_wrap=True)

    def line(self, now: float) -> str:
        """``sweep: 3/12 done, 40% (15 s)``: the tasks finished and the share of the work."""
        if len(self.tasks) == 1:  # one counter (a sweep's runs): say how far it is
            desc, c, t = next(iter(self.tasks.values()))
            return f"{self.what}: {desc} {c:.0f}/{t:.0f} ({now - self.start:.0f} s)"
        done = sum(1 for _, c, t in self.tasks.values() if c >= t)
        share = sum(c / t for _, c, t in self.tasks.values() if t) / max(len(self.tasks), 1)
        return (
            f"{self.what}: {done}/{len(self.tasks)} done, {100 * share:.0f}% "
            f"({now - self.start:.0f} s)"
        )
