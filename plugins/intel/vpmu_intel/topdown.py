"""Intel topdown: IA32_PERF_METRICS as an all-in-one PMC over fixed counter 3.

Facts from spec/amd-and-topdown.md §7. The model of the hardware, chosen so every
stated fact holds:

* Hidden per-category slot counts ``C[i]`` and a hidden slots base ``T`` count while
  fixed counter 3 counts SLOTS (FIXED_CTR_CTRL bits 15:12 and GLOBAL_CTRL bit 35) and
  GLOBAL_CTRL bit 48 (EN_PERF_METRICS) is set: the metrics are shares of those slots.
  They increment independently; a wrap of any of them
  sets GLOBAL_STATUS bit 48 ("share the same bit on overflow") and raises a PMI
  when fixed counter 3's PMI bit is set. ``T`` is the group leader (SLOTS).
* A read gives each field as an 8-bit fraction of 0xFF: ``C[i] * 0xFF / T``. The
  four level-1 fields are apportioned by largest remainder, so when the level-1
  categories cover the slots they sum to exactly 0xFF and each is within one unit
  of its exact share. Level-2 fields are rounded and never exceed their parent.
* PERF_METRICS "is derived from fixed counter 3": a write to it re-bases the
  hidden state on fixed counter 3 *as it is at that moment* (``T = FIXED_CTR3``,
  ``C[i] = field[i] * T / 0xFF``). A write to FIXED_CTR3 does not touch ``T``.
  Hence the reset rule: FIXED_CTR3 = 0 first, then PERF_METRICS = 0 starts both
  from zero; the other order re-bases on the old slot count, which stays in ``T``
  with no category, and every later read shows fields that are diluted by it
  (the level-1 fields no longer sum to 0xFF) until the next correct reset. The
  mechanism is this model's reading of the spec's rule, not an SDM quote.
"""

from __future__ import annotations

from typing import Any

from vpmu_core.allinone import AllInOnePmc, View
from vpmu_core.counters import EventKey, Pmc
from vpmu_core.errors import GuestFault
from vpmu_core.host import METRICS, SLOTS

EN_PERF_METRICS = 1 << 48
SLOTS_KEY: EventKey = (0x00, 0x04)  # fixed counter 3's pseudo-encoding
FULL = 0xFF

# (field, event): L1 by the backend's architectural event names; L2 by Linux's
# pseudo-encodings (event 0x00, umask 0x84-0x87), which retire() accepts as codes.
L1_EVENTS = (
    "topdown-retiring",
    "topdown-bad-spec",
    "topdown-frontend-bound",
    "topdown-backend-bound",
)
L2_EVENTS: tuple[EventKey, ...] = ((0x00, 0x84), (0x00, 0x85), (0x00, 0x86), (0x00, 0x87))
L2_NAMES = ("heavy-ops", "br-mispredict", "fetch-lat", "mem-bound")
# Heavy_Ops in Retiring, Br_Mispredict in Bad_Spec, Fetch_Lat in FE, Mem_Bound in BE.
L2_PARENT = (0, 1, 2, 3)


class SlotsPmc(Pmc):
    """Fixed counter 3 (TOPDOWN.SLOTS): its host event takes host fixed counter 3 or nothing.

    Linux never extends the topdown constraints to a generic counter
    (intel_pmu_check_event_constraints, torvalds/linux 4383cfa18c5b), so neither does
    the slots event KVM would create for it.
    """

    __slots__ = ()

    def host_constraints(self) -> list[str]:
        return [SLOTS]


class CountView(View):
    """One hidden counter of the metrics group (``T`` or one ``C[i]``)."""

    __slots__ = ("slot",)

    def __init__(self, owner: TopdownMetrics, name: str, slot: int, width: int) -> None:
        super().__init__(owner, name, width)
        self.slot = slot

    def advance(self, n: int) -> None:
        o = self.owner_pmc
        assert isinstance(o, TopdownMetrics)
        counts = o.counts
        v = counts[self.slot] + n
        if v > self.mask:
            counts[self.slot] = v & self.mask
            o.overflow(o)
        else:
            counts[self.slot] = v

    def read(self) -> int:
        o = self.owner_pmc
        assert isinstance(o, TopdownMetrics)
        return o.counts[self.slot]

    def events_to_overflow(self) -> int:
        return self.mask + 1 - self.read()


class TopdownMetrics(AllInOnePmc):
    """PERF_METRICS (PMC index 48): the slots leader plus one sibling per metric."""

    __slots__ = ("counts", "metrics", "slots_pmc")

    def __init__(self, idx: int, metrics: int, hidden_width: int) -> None:
        super().__init__(idx, 8 * metrics, name="perf_metrics", nr_events=metrics + 1)
        self.metrics = metrics
        self.counts = [0] * (metrics + 1)  # [T, C0, C1, ...]
        self.slots_pmc: Pmc | None = None  # fixed counter 3, bound with the vCPU
        names = ["slots", *L1_EVENTS, *(f"topdown-{n}" for n in L2_NAMES)]
        self.views = [
            CountView(self, f"perf_metrics.{names[i]}", i, hidden_width) for i in range(metrics + 1)
        ]

    # What the guest reads: fractions, not counts.
    def fields(self) -> list[int]:
        t = self.counts[0]
        n = self.metrics
        if t == 0:
            return [0] * n
        c = self.counts[1:]
        exact = [x * FULL for x in c[:4]]
        out = [min(FULL, e // t) for e in exact]
        target = min(FULL, sum(exact) // t)
        spare = target - sum(out)
        if spare > 0:
            order = sorted(range(4), key=lambda i: (-(exact[i] % t), i))
            for i in order[:spare]:
                out[i] += 1
        for j in range(n - 4):
            share = (c[4 + j] * FULL * 2 + t) // (2 * t)  # rounded
            out.append(min(share, out[L2_PARENT[j]]))
        return out

    def host_constraints(self) -> list[str]:
        """One metric event per field; they join the slots event's group (``host_leader``)."""
        return [METRICS] * self.metrics

    def host_leader(self) -> Pmc | None:
        """Linux's topdown group is one group led by the slots event on fixed counter 3:
        the event backing fixed counter 3 is that leader, not a second slots event."""
        return self.slots_pmc

    def parts(self) -> list[tuple[str, int]]:
        """The metric fields the guest reads (fractions of 0xFF), not the hidden counts."""
        return [(v.name, f) for v, f in zip(self.views[1:], self.fields(), strict=True)]

    def read(self) -> int:
        value = 0
        for i, f in enumerate(self.fields()):
            value |= f << (8 * i)
        return value

    def write(self, value: int) -> None:
        if value & ~self.mask:
            raise GuestFault(
                13, f"PERF_METRICS bits {value & ~self.mask:#x} beyond its {self.metrics} fields"
            )
        t = self.slots_pmc.value if self.slots_pmc is not None else 0
        self.counts[0] = t
        for i in range(self.metrics):
            self.counts[1 + i] = ((value >> (8 * i)) & FULL) * t // FULL
        self.value = 0

    def save(self) -> dict[str, Any]:
        return {"value": 0, "counts": list(self.counts)}

    def load(self, state: dict[str, Any]) -> None:
        counts = [int(x) for x in state["counts"]]
        if len(counts) != self.metrics + 1:
            raise ValueError(
                f"{len(counts)} PERF_METRICS counts for {self.metrics} metrics + slots"
            )
        self.counts = [x & v.mask for x, v in zip(counts, self.views, strict=True)]
        self.value = 0

    def reset(self) -> None:
        """RESET zeroes the hidden sub-counts; the enables follow fixed counter 3."""
        self.value = 0
        self.counts = [0] * (self.metrics + 1)

    def follow_fixed3(self, fixed3: Any, global_ctrl: int) -> bool:
        """Take fixed counter 3's enables and EN_PERF_METRICS; True if anything changed."""
        before = (self.os, self.usr, self.local_en, self.global_en, self.intr)
        self.os = fixed3.os
        self.usr = fixed3.usr
        self.local_en = fixed3.local_en
        self.intr = fixed3.intr
        # SLOTS counted by fixed counter 3 is what the metrics are shares of: with its
        # GLOBAL_CTRL bit (35) clear nothing is counted, whatever bit 48 says.
        self.global_en = bool(global_ctrl & EN_PERF_METRICS) and bool(global_ctrl >> fixed3.idx & 1)
        return before != (self.os, self.usr, self.local_en, self.global_en, self.intr)
