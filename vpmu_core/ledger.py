"""The ledger: every mechanism event a run causes, counted by kind.

Counting is separate from pricing (``costs.py``) so one run can be priced with
any cost table. The counters are dicts because the hot path increments them
directly (``ledger.exits[reason] += 1``); there is no method call between a guest
access and its count.

Why a key must be declared before it is counted: a key no plugin declared used to
be priced at 0 without a word. A machine's ledger is given the plugin manager's
price list, and the *first* count of a key (``dict.__missing__``, never run again
for that key, so the hot path pays nothing) checks that a mechanism prices it;
an undeclared key is an :class:`~vpmu_core.mechanisms.UnpricedMechanism` raised
where it is counted, naming the key and the module that counted it.
"""

from __future__ import annotations

import sys
from typing import Any

from .mechanisms import CATEGORIES, PriceList, UnpricedMechanism

__all__ = ["CATEGORIES", "Counts", "Ledger", "ledger_delta", "with_transitions"]


class Counts(dict[str, int]):
    """One ledger category: ``counts[key] += n``; a key's first count checks its declaration."""

    __slots__ = ("category", "prices")

    def __init__(self, category: str, prices: PriceList | None) -> None:
        super().__init__()
        self.category = category
        self.prices = prices

    def __missing__(self, key: str) -> int:
        if self.prices is not None:
            try:
                self.prices.find(self.category, key)
            except UnpricedMechanism as exc:
                frame = sys._getframe(1)
                where = f"{frame.f_globals.get('__name__', '?')}:{frame.f_lineno}"
                raise UnpricedMechanism(f"{exc} (counted at {where})") from None
        return 0


class Ledger:
    """Mechanism counts of one machine, summed over its vCPUs."""

    __slots__ = CATEGORIES

    def __init__(self, prices: PriceList | None = None) -> None:
        """``prices``: check each key's declaration at its first count (None: count anything)."""
        self.exits = Counts("exits", prices)  # VM exits by reason
        self.perf_ops = Counts("perf_ops", prices)  # host perf API calls
        self.pmis = Counts("pmis", prices)  # host NMIs, injections, drops
        self.context_switches = Counts("context_switches", prices)  # PMU load/put
        self.switch_msrs = Counts("switch_msrs", prices)  # MSRs a switch touched
        self.events = Counts("events", prices)  # anything else worth pricing

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
