"""What the guest's clock sees a PMI handler take: the ledger priced as it grows.

Why through :func:`vpmu_core.costs.price`: there is one pricer, so the time the
guest loses in its handler is exactly what the run's report charges for the same
mechanisms (VM transitions' switched MSRs included). A price is linear in the
counts, so the meter asks the pricer once per ledger key for the price of one
and multiplies on the hot path: a handler is timed twice per PMI, and pricing the
whole ledger each time would dominate the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..costs import price
from ..ledger import CATEGORIES, with_transitions

if TYPE_CHECKING:
    from ..machine import Machine


def cost_meter(machine: Machine) -> Callable[[], float]:
    """A function returning the ns the machine's ledger stands for so far."""
    table = machine.config.costs
    led = machine.ledger
    per_exit = machine.strategy.transition_msrs_per_exit
    # Per category: its counts, the price of one of each key seen, and the priced keys
    # in ledger order (a key priced at 0 adds nothing, so it is left out of the sum).
    plans: list[tuple[str, dict[str, int], dict[str, float], list[tuple[str, float]]]] = [
        (c, getattr(led, c), {}, []) for c in CATEGORIES
    ]

    def unit(category: str, key: str) -> float:
        one = with_transitions({category: {key: 1}}, per_exit if category == "exits" else 0)
        return float(price(one, table, 0.0).total_ns)

    def meter() -> float:
        total = 0.0
        for category, counts, seen, priced in plans:
            if len(counts) != len(seen):  # a key appeared: price it, keep ledger order
                for k in counts:
                    if k not in seen:
                        seen[k] = unit(category, k)
                priced[:] = [(k, seen[k]) for k in counts if seen[k]]
            for k, c in priced:
                total += counts[k] * c
        return total

    return meter
