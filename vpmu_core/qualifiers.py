"""Event-select qualifiers (CMASK, INV, EDGE) and the spread of retired events over cycles.

Why a spread model at all: with CMASK = c a counter no longer counts events, it
counts *cycles* in which at least c events occurred (with INV, fewer than c; with
EDGE, the cycles where that condition becomes true after a cycle where it was not).
vpmu never steps cycle by cycle, so a ``retire(event, n, cycles=C)`` call has to say
how its ``n`` events fall on its ``C`` cycles. The rule, deterministic and O(1):

    q, r = divmod(n, C): the first r cycles retire q + 1 events, the other C - r
    retire q.

Every cycle gets ``floor(n / C)`` or ``ceil(n / C)`` events (as even as possible), and
putting the fuller cycles first makes the rule *split-invariant*: cutting one call
at any cycle boundary into two calls, each given the events the one call put on
its cycles, counts exactly the same on every qualified counter, EDGE included (the
edge detector's state is the counter's ``edge_state``, carried across calls). A
workload that knows its cycles passes them; without ``cycles`` the events took one
cycle each (``C = n``), the neutral choice that keeps a plain retire meaning what it
always meant.

Architectural rules (same bit positions on Intel PERFEVTSELx and AMD PERF_CTL;
spec/intel.md §2, spec/amd-and-topdown.md §2.1):

* CMASK (bits 31:24) = 0: no threshold, the counter adds every event (plain).
  CMASK = c > 0: +1 per cycle with >= c events.
* INV (bit 23): the comparison becomes < c. The SDM describes INV as inverting the
  counter-mask comparison, which CMASK = 0 disables, so INV alone changes nothing
  (the SDM: "if CMASK is zero, INV is ignored"); the model applies that on AMD too.
* EDGE (bit 18): +1 per deasserted-to-asserted transition of the condition. With
  CMASK = 0 the condition is "the event occurred this cycle" (>= 1 event), INV
  ignored as above -- the model's reading of "any condition the other fields
  express".

What KVM counts in software is not qualified: kvm_pmu_trigger_event() in
arch/x86/kvm/pmu.c (Linux 004a0aa56ede, and still after the eventsel rework that
compares ``(pmc->eventsel ^ eventsel) & AMD64_RAW_EVENT_MASK_NB``) matches event
select and unit mask only -- "Ignore checks for edge detect, pin control, invert
and CMASK bits" -- so an instruction KVM emulates adds exactly 1 to a qualified
instructions counter too (vcpu.py, ``_count_own``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

EDGE = 1 << 18
INV = 1 << 23
CMASK_SHIFT = 24
CMASK = 0xFF << CMASK_SHIFT
QUALIFIER_BITS = CMASK | INV | EDGE


class EdgeState(Protocol):
    """What a qualifier needs of its counter: the edge detector's state (a Pmc has it)."""

    edge_state: bool


class Qualifier:
    """The decoded CMASK/INV/EDGE of one event select; immutable, state lives on the Pmc."""

    __slots__ = ("edge", "invert", "threshold")

    def __init__(self, threshold: int, invert: bool, edge: bool) -> None:
        self.threshold = threshold
        self.invert = invert
        self.edge = edge

    def passes(self, events: int) -> bool:
        """Whether a cycle that retired ``events`` events meets the condition."""
        return events < self.threshold if self.invert else events >= self.threshold

    def count(self, pmc: EdgeState, n: int, cycles: int) -> int:
        """How much ``n`` events over ``cycles`` cycles add; updates ``pmc.edge_state``."""
        if cycles <= 0:
            return 0
        q, r = divmod(n, cycles)
        rest = cycles - r
        full = r > 0 and self.passes(q + 1)  # the first r cycles, q + 1 events each
        thin = rest > 0 and self.passes(q)  # the other cycles, q events each
        if not self.edge:
            return (r if full else 0) + (rest if thin else 0)
        edges = 0
        state = pmc.edge_state
        if r:
            if full and not state:
                edges += 1
            state = full
        if rest:
            if thin and not state:
                edges += 1
            state = thin
        pmc.edge_state = state
        return edges

    def __repr__(self) -> str:
        cmp = "<" if self.invert else ">="
        return f"<Qualifier {cmp} {self.threshold}{' edge' if self.edge else ''}>"


class QualifiedCounter(EdgeState, Protocol):
    """A counter as the qualified path sees it (a Pmc)."""

    qual: Qualifier | None

    def advance(self, n: int) -> None: ...


def advance_spread(pmcs: Iterable[QualifiedCounter], n: int, cycles: int) -> None:
    """``n`` events over ``cycles`` on counters some of which are qualified: the vCPU's
    separate path (a plain counter adds ``n``, a qualified one what its condition says)."""
    for pmc in pmcs:
        qual = pmc.qual
        if qual is None:
            pmc.advance(n)
        else:
            k = qual.count(pmc, n, cycles)
            if k:
                pmc.advance(k)


def qualifier_of(eventsel: int) -> Qualifier | None:
    """The qualifier an event select programs, or None for plain counting."""
    cmask = (eventsel & CMASK) >> CMASK_SHIFT
    edge = bool(eventsel & EDGE)
    if cmask == 0:
        # INV is ignored without a counter mask; EDGE alone detects ">= 1 event".
        return Qualifier(1, False, True) if edge else None
    return Qualifier(cmask, bool(eventsel & INV), edge)


def impossible_spread(n: int, cycles: int) -> ValueError:
    """The error for a spread no CPU can retire (negative cycles, or events in no
    cycle); ``Vcpu.retire`` tests the condition inline, on its hot path."""
    return ValueError(f"retire: cycles = {cycles} for n = {n}: need cycles >= 1 when n > 0")
