"""The ledger: every mechanism event a run causes, counted by kind.

Counting is separate from pricing (``costs.py``) so one run can be priced with
any cost table. The counters are plain ``defaultdict(int)`` because the hot path
increments them directly (``ledger.exits[reason] += 1``); there is no method
call between a guest access and its count.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

CATEGORIES = ("exits", "perf_ops", "pmis", "context_switches", "switch_msrs", "events")


class Ledger:
    """Mechanism counts of one machine, summed over its vCPUs."""

    __slots__ = CATEGORIES

    def __init__(self) -> None:
        self.exits: defaultdict[str, int] = defaultdict(int)  # VM exits by reason
        self.perf_ops: defaultdict[str, int] = defaultdict(int)  # host perf API calls
        self.pmis: defaultdict[str, int] = defaultdict(int)  # host NMIs, injections, drops
        self.context_switches: defaultdict[str, int] = defaultdict(int)  # PMU load/put
        self.switch_msrs: defaultdict[str, int] = defaultdict(int)  # MSRs a switch touched
        self.events: defaultdict[str, int] = defaultdict(int)  # anything else worth pricing

    def total_exits(self) -> int:
        return sum(self.exits.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {c: dict(sorted(getattr(self, c).items())) for c in CATEGORIES}

    def load(self, data: dict[str, Any]) -> None:
        for c in CATEGORIES:
            target = getattr(self, c)
            target.clear()
            target.update({str(k): int(v) for k, v in data.get(c, {}).items()})

    def merge(self, other: Ledger) -> None:
        for c in CATEGORIES:
            target = getattr(self, c)
            for k, v in getattr(other, c).items():
                target[k] += v
