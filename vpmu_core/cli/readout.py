"""The lines a person reads under a run: what the overhead is, what caused it.

Why apart from the tables: ``run``, ``compare`` and ``sweep`` (and later
``reproduce``) say the same three things the same way -- the steady-state overhead
as a share of guest time (or per operation, for a workload of a handful of them),
the mechanism that dominates it, and each one-time cost with its cause on a line
of its own, so a 21 ms first perf event does not read as a 4000% overhead.
"""

from __future__ import annotations

from typing import Any

from ..units import STARVED_PCT, duration, percent

#: the line under a starved guest's overhead: its counts and samples are of almost no work
STARVED = "  the vPMU starved the guest: it did almost no work of its own in the run"


def steady(cost: Any, operations: int | None) -> str:
    """``1.23 ms = 4.24% of 29.0 ms guest time`` (``203 ms = 8,892× the 22.8 µs of guest
    time`` for a guest its vPMU starved) or ``13.2 µs per operation (2 operations)``."""
    if operations:
        each = duration(cost.steady_ns / operations)
        return f"{each} per operation ({operations:,} operation{'s' if operations > 1 else ''})"
    if cost.steady_pct is None:
        return duration(cost.steady_ns)
    spent, worked = duration(cost.steady_ns), duration(cost.guest_ns)
    if abs(cost.steady_pct) >= STARVED_PCT:  # a multiple (units.percent): name the time once
        return f"{spent} = {cost.steady_pct / 100:,.0f}× the {worked} of guest time"
    return f"{spent} = {percent(cost.steady_pct)} of {worked} guest time"


def meaning(plugins: Any, name: str) -> str:
    """What one count of a priced mechanism stands for (its declaration's meaning)."""
    if plugins is None:
        return ""
    from ..mechanisms import split_price_key  # pydantic: only once a run has a result

    try:
        return str(plugins.prices.find(*split_price_key(name)).meaning)
    except Exception:  # a mechanism the installed plugins no longer declare: no meaning
        return ""


def overhead_lines(cost: Any, operations: int | None, plugins: Any = None) -> list[str]:
    """The overhead, its dominant mechanism, and each one-time cost with its cause."""
    lines = [f"overhead (steady state): {steady(cost, operations)}"]
    if not operations and cost.steady_pct is not None and cost.steady_pct >= STARVED_PCT:
        lines.append(STARVED)
    if cost.dominant is not None and cost.steady_ns > 0:
        what = meaning(plugins, cost.dominant)
        lines.append(f"  mostly {cost.dominant}: {cost.dominant_pct:.0f}% of it ({what})")
    for name, ns in cost.one_time.items():
        lines.append(f"one-time: {duration(ns)} {name}, {meaning(plugins, name)}")
    if cost.one_time:
        lines.append(f"  (not in the steady state above; total with it {duration(cost.total_ns)})")
    return lines
