"""What the guest's clock sees its vCPU's mechanisms take: the ledger delta it caused, priced.

Why through :func:`vpmu_core.costs.price`: there is one pricer, so the time the
guest loses in a handler, a tick's exits or a PMU switch is exactly what the run's
report charges for the same mechanisms (VM transitions' switched MSRs included).
A price is linear in the counts, so the meter asks the pricer once per ledger key
for the price of one and multiplies on the hot path.

Why a delta and not a difference of two totals: the ledger is the machine's, so
its totals hold every other vCPU's counts too. ``total_after - total_before`` in
floating point then depends, in its last bits, on how much the *other* vCPUs did
-- a serial run, a shard and a symmetry class would time the same handler
differently. The meter instead marks the counts before the handler and prices
only what changed since (``math.fsum`` of the per-key products: correctly
rounded, so neither the other vCPUs nor the order keys first appeared in can
change a bit).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..costs import price
from ..ledger import CATEGORIES, with_transitions

if TYPE_CHECKING:
    from ..machine import Machine


class CostMeter:
    """Prices the machine's ledger growth between :meth:`mark` and :meth:`since`."""

    __slots__ = ("_counts", "_per_exit", "_priced", "_seen", "_table")

    def __init__(self, machine: Machine) -> None:
        led = machine.ledger
        self._table = machine.config.costs
        self._per_exit = machine.strategy.transition_msrs_per_exit
        self._counts: list[tuple[str, dict[str, int]]] = [(c, getattr(led, c)) for c in CATEGORIES]
        self._seen: dict[str, set[str]] = {c: set() for c in CATEGORIES}
        # (the category's counts, a key, the price of one): keys priced at 0 are left out;
        # a key appears here once, appended when first seen, so a mark stays a prefix.
        self._priced: list[tuple[dict[str, int], str, float]] = []

    def _unit(self, category: str, key: str) -> float:
        per_exit = self._per_exit if category == "exits" else 0
        one = with_transitions({category: {key: 1}}, per_exit)
        return float(price(one, self._table, 0.0).total_ns)

    def _refresh(self) -> None:
        for category, counts in self._counts:
            seen = self._seen[category]
            if len(counts) != len(seen):
                for k in counts:
                    if k not in seen:
                        seen.add(k)
                        unit = self._unit(category, k)
                        if unit:
                            self._priced.append((counts, k, unit))

    def mark(self) -> list[int]:
        """The counts of every priced key now (what :meth:`since` subtracts)."""
        self._refresh()
        return [counts[k] for counts, k, _ in self._priced]

    def since(self, mark: list[int]) -> float:
        """The ns the ledger's growth since ``mark`` stands for."""
        return self.lap(mark)[0]

    def lap(self, mark: list[int]) -> tuple[float, list[int]]:
        """:meth:`since` and a new :meth:`mark` in one pass over the keys: a vCPU's
        guest clock takes its ledger growth lap by lap (GuestPerf.charge)."""
        self._refresh()
        n = len(mark)
        terms: list[float] = []
        now: list[int] = []
        for i, (counts, k, unit) in enumerate(self._priced):
            c = counts[k]
            now.append(c)
            terms.append(unit * (c - (mark[i] if i < n else 0)))
        return math.fsum(terms), now

    def total(self) -> float:
        """The ns the whole ledger stands for so far (what a report would charge)."""
        return self.since([])


def cost_meter(machine: Machine) -> CostMeter:
    """The guest-clock meter of ``machine`` (PMI handlers and, under ``[guest] clock =
    "wall"``, everything each vCPU's turn caused)."""
    return CostMeter(machine)
