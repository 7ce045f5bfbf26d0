"""Which counters an event may land on: the indexes the vCPU has, and the x86 scheduler.

Why indexes and not positions: a PMU may have holes (Architectural PerfMon v6
enumerates GP and fixed counters as bitmaps, CPUID leaf 0x23), so GP counter
``i`` of ``range(n)`` may not exist. Every guest workload chooses counters from
the indexes in ``vcpu.counters`` (GP 0-31, fixed 32 + j), through these helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..counters import FIXED_BASE
from .event import PEvent

if TYPE_CHECKING:
    from ..vcpu import Vcpu


def gp_indexes(vcpu: Vcpu) -> list[int]:
    """The vCPU's general-purpose counter indexes, lowest first."""
    return sorted(i for i, p in vcpu.counters.items() if p.kind == "gp")


def fixed_counter(vcpu: Vcpu, j: int | None) -> int | None:
    """The PMC index of fixed counter ``j`` if the vCPU has it, else None."""
    if j is None:
        return None
    pmc = vcpu.counters.get(FIXED_BASE + j)
    return FIXED_BASE + j if pmc is not None and pmc.kind == "fixed" else None


def assign(evs: Sequence[PEvent], gp: Sequence[int]) -> dict[int, int] | None:
    """x86_schedule_events: counters (PMC indexes) for ``evs``, by event number.

    Every event keeps its previous counter if all can (the fast path), else greedy
    in order, a fixed counter first where one counts the event, else the lowest
    free GP index in ``gp`` (never for a fixed-only event such as Intel's
    ref-cycles). None if some event finds no counter.
    """
    used: set[int] = set()
    out: dict[int, int] = {}
    fast = True
    for ev in evs:
        i = ev.idx
        if i is None or i in used:
            fast = False
            break
        used.add(i)
        out[ev.n] = i
    if fast:
        return out
    used.clear()
    out.clear()
    for ev in evs:
        if ev.fixed is not None and ev.fixed not in used:
            i = ev.fixed
        elif not ev.gp_ok:  # its fixed counter is taken: it waits for a rotation
            return None
        else:
            free = next((g for g in gp if g not in used), None)
            if free is None:
                return None
            i = free
        used.add(i)
        out[ev.n] = i
    return out
