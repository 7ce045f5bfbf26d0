"""``emulated``: today's mainline KVM vPMU, perf-event backed (spec/intel.md §9).

Every PMU MSR access and every RDPMC exits. A counter whose control changed is
reprogrammed before the next entry: paused, then its host perf event reused when
the config is unchanged, or released and re-created when it changed. An
instruction KVM completes for an intercepted access is an emulated increment,
which also requests a reprogram (pause + resume) of the counters it counted on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from ..counters import Pmc
from ..hookspecs import hookimpl
from ..host import HostEvent
from ..strategy import Strategy

if TYPE_CHECKING:
    from ..vcpu import Vcpu


class EmulatedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["emulated"]


class PerfEventAllocator:
    """KVM's ``reprogram_counter``: pause, then reuse or re-create one host event per slot.

    A grouped PMC's slots are one perf group: paused, reused, re-created and
    released together, so each of those is N perf operations in the ledger.
    """

    def __init__(self, vcpu: Vcpu) -> None:
        self.vcpu = vcpu
        self.ops = vcpu.machine.ledger.perf_ops

    def host_config(self, pmc: Pmc) -> int:
        return pmc.control

    def reprogram(self, pmc: Pmc) -> None:
        ops = self.ops
        events = pmc.host_events
        live = [e for e in events if e is not None]
        for e in live:
            if not e.paused:
                e.paused = True
                ops["pause"] += 1
        if not pmc.counting:
            return
        config = self.host_config(pmc)
        if live and all(e.config == config for e in live) and len(live) == len(events):
            for e in live:
                e.paused = False
            ops["reuse"] += len(live)
            ops["period"] += len(live)
            return
        group = len(events) > 1
        for i, e in enumerate(events):
            if e is not None:
                ops["release"] += 1
            # A group's members are created disabled, leader first (slot 0)...
            events[i] = HostEvent(config, paused=group)
            ops["create"] += 1
        if group:  # ...and enabled in order once all exist, so none counts alone.
            for e in events:
                e.paused = False
                ops["enable"] += 1

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

    def overflowed(self, pmc: Pmc) -> None:
        # kvm_perf_overflow also requests KVM_REQ_PMU to re-arm the period.
        self.vcpu.machine.ledger.pmis["host_nmi"] += 1
        self.vcpu.mark_reprogram(pmc)

    def release(self, pmc: Pmc) -> None:
        for i, e in enumerate(pmc.host_events):
            if e is not None:
                self.ops["release"] += 1
                pmc.host_events[i] = None


class InjectedPmiPath:
    """KVM_REQ_PMI -> LVTPC injection at the next entry."""

    def __init__(self, vcpu: Vcpu) -> None:
        self.vcpu = vcpu
        self.pmis = vcpu.machine.ledger.pmis

    def deliver(self) -> None:
        if self.vcpu.deliver_pmi():
            self.pmis["injected"] += 1


class Emulated(Strategy):
    """Mainline KVM: every PMU access exits; perf events reused when the config is unchanged."""

    name: ClassVar[str] = "emulated"
    Config: ClassVar[type[BaseModel]] = EmulatedConfig

    @hookimpl
    def vpmu_counter_allocator(self, vcpu: Vcpu) -> Any:
        return PerfEventAllocator(vcpu)

    @hookimpl
    def vpmu_pmi_path(self, vcpu: Vcpu) -> Any:
        return InjectedPmiPath(vcpu)
