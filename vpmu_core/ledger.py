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


def ledger_delta(
    after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """What happened between two ``as_dict()`` snapshots (to price one phase of a run)."""
    out: dict[str, dict[str, int]] = {}
    for c in CATEGORIES:
        a, b = after.get(c, {}), before.get(c, {})
        out[c] = {k: v - b.get(k, 0) for k, v in a.items() if v != b.get(k, 0)}
    return out


def with_transitions(ledger: dict[str, dict[str, int]], per_exit: int) -> dict[str, dict[str, int]]:
    """Add the MSRs VM transitions switched (``per_exit`` per exit) as ``switch_msrs.vmcs``.

    Why here and not on the hot path: the count follows from the exits alone, so
    it is settled once when a run (or a phase of one) is priced.
    """
    if per_exit:
        exits = sum(ledger.get("exits", {}).values())
        sw = dict(ledger.get("switch_msrs", {}))
        sw["vmcs"] = sw.get("vmcs", 0) + per_exit * exits
        ledger = {**ledger, "switch_msrs": dict(sorted(sw.items()))}
    return ledger
