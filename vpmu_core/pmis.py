"""The PMIs a vCPU took: every one counted, the most recent kept.

Why bounded: a guest ``perf record`` at 1000 Hz with ten events takes tens of
thousands of PMIs per vCPU-second; a list of every one (about 136 bytes each)
grew a 56-vCPU, 10 s run to about 600 MB. What the engine and the reports need
is how many were taken (``len``); what a test or a user inspecting a vCPU needs
is what the last ones looked like. So :class:`PmiLog` counts all of them and
keeps the last ``keep`` (``[machine] pmi_log`` in the config).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pmi:
    """One PMI the guest received: when (guest cycles), how, and why."""

    clock: int
    vector: int
    mode: str
    status: int  # the vendor's overflow status at delivery (0 where it has none)


class PmiLog:
    """``len()`` is every PMI taken; iterating and indexing see the last ``keep`` of
    them, oldest first (all of them while no more than ``keep`` were taken)."""

    __slots__ = ("_recent", "total")

    def __init__(self, keep: int = 64) -> None:
        # kept as plain tuples: a PMI is recorded thousands of times a vCPU-second and
        # read rarely, so the Pmi objects are made when someone reads them
        self._recent: deque[tuple[int, int, str, int]] = deque(maxlen=keep)
        self.total = 0

    @property
    def keep(self) -> int:
        """How many of the most recent PMIs are kept."""
        return self._recent.maxlen or 0

    def append(self, pmi: Pmi) -> None:
        self.record(pmi.clock, pmi.vector, pmi.mode, pmi.status)

    def record(self, clock: int, vector: int, mode: str, status: int) -> None:
        """Take one PMI (what :meth:`append` does, without building its :class:`Pmi`)."""
        self._recent.append((clock, vector, mode, status))
        self.total += 1

    def settle(self, total: int, recent: Iterable[Pmi]) -> None:
        """Take over a count and the last PMIs from a run simulated elsewhere."""
        self._recent.clear()
        self._recent.extend((p.clock, p.vector, p.mode, p.status) for p in recent)
        self.total = total

    def clear(self) -> None:
        self._recent.clear()
        self.total = 0

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def __iter__(self) -> Iterator[Pmi]:
        return iter([Pmi(*t) for t in self._recent])

    def __getitem__(self, i: int) -> Pmi:
        return Pmi(*self._recent[i])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, PmiLog)):
            return self.total == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<PmiLog {self.total} taken, last {len(self._recent)}: {list(self)!r}>"
