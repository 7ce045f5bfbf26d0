"""``emulated``: today's mainline KVM vPMU, perf-event backed (spec/intel.md §9).

Every PMU MSR access and every RDPMC exits. A counter whose control changed is
reprogrammed before the next entry (``KVM_REQ_PMU``, commit 68fb4757e867): paused,
then its host perf event reused with a period update when the config is unchanged
(commit a6da0d77e98e), or released and re-created when it changed. Events unused
for a whole vCPU time slice are released lazily (commit b35e5548b411). An
instruction KVM completes for an intercepted access is an emulated increment, which
also requests a reprogram of the counters it counted on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel

from ..counters import Pmc
from ..host_events import HostEvent
from .common import InjectedPmiPath, PerfAllocatorBase, PerfBackedConfig, PerfBackedStrategy

if TYPE_CHECKING:
    pass

__all__ = ["Emulated", "EmulatedConfig", "InjectedPmiPath", "PerfEventAllocator"]


class EmulatedConfig(PerfBackedConfig):
    name: Literal["emulated"]


class PerfEventAllocator(PerfAllocatorBase):
    """KVM's ``reprogram_counter``: pause, then reuse or re-create one host event per slot.

    A grouped PMC's slots are one perf group: paused, reused, re-created and
    released together, so each of those is N perf operations in the ledger.
    """

    lazy_release = True

    def reprogram(self, pmc: Pmc) -> None:
        # One pass over the slots: this runs at every entry after a counter write or
        # an emulated instruction, so it avoids building lists.
        ops = self.ops
        self.in_use.add(pmc.idx)
        config = pmc.control
        live: list[HostEvent] = []
        same = True
        for e in pmc.host_events:
            if e is None:
                same = False
                continue
            live.append(e)
            if e.config != config:
                same = False
        paused = sum(1 for e in live if not e.paused)
        if paused:
            ops["pause"] += paused
            self.host.pause(live)  # pmc_pause_counter: the counters go back to host perf
        if not (pmc.local_en and pmc.global_en and pmc.allowed):
            return
        if same and live:
            self.host.resume(live, self.host.pcpu_of(self.vcpu))  # pmc_resume_counter
            ops["reuse"] += len(live)
            ops["period"] += len(live)
            return
        self.create(pmc, config)

    def emulated_instruction(self, pmcs: list[Pmc]) -> None:
        """KVM counts an instruction it completed as an emulated increment, which requests
        a reprogram: for a counter whose live event already has its config that is one
        pause and one resume with a period update, counted here without the detour."""
        ops = self.ops
        pending = self.vcpu.pending_reprogram
        for pmc in pmcs:
            events = pmc.host_events
            first = events[0]
            if (
                pmc.idx not in pending
                and first is not None
                and not first.paused
                and len(events) == 1
                and first.config == pmc.control
            ):
                ops["pause"] += 1
                ops["reuse"] += 1
                ops["period"] += 1
            else:
                self.vcpu.mark_reprogram(pmc)

    def counter_written(self, pmc: Pmc) -> None:
        """§2c (Like Xu, Mar 2020): the period update is deferred to KVM_REQ_PMU."""
        self.in_use.add(pmc.idx)
        if pmc.host_events[0] is not None:
            self.vcpu.mark_reprogram(pmc)


class Emulated(PerfBackedStrategy):
    """Mainline KVM: every PMU access exits; perf events reused when the config is unchanged."""

    name: ClassVar[str] = "emulated"
    Config: ClassVar[type[BaseModel]] = EmulatedConfig

    Allocator = PerfEventAllocator
