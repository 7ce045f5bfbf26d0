"""Pieces the perf-backed strategies share: host events per PMC, PMI paths, options.

Why shared: ``emulated-legacy``, ``emulated`` and ``fastpath`` differ only in what
a reprogram does (release+create, pause+reuse, direct enable-bit write) and when
events are released; creating, releasing and scheduling host events, the
skip-reprogram decision on a PMI and the lazy-release bookkeeping are the same.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..counters import Pmc
from ..hookspecs import hookimpl
from ..host import HostEvent
from ..host_pmu import INTEL
from ..msr import COUNTER, MsrHandler
from ..port import CounterAllocator
from ..strategy import Strategy

if TYPE_CHECKING:
    from ..port import VcpuPort

ReprogramOnPmi = Literal["always", "cpu-changed"]


class PerfBackedConfig(BaseModel):
    """Options every perf-backed strategy has."""

    model_config = ConfigDict(extra="forbid")
    reprogram_on_pmi: ReprogramOnPmi = Field(
        "always",
        description="'always': every guest PMI reprograms its counter (KVM_REQ_PMU); "
        "'cpu-changed': only if the vCPU left the pCPU the event ran on (Kan Liang's "
        "RFC, costs.md §2a)",
    )


def constraints_of(pmc: Pmc) -> list[str]:
    """Which host counters can back each of ``pmc``'s slots: its own fixed counter, or GP."""
    declared = pmc.host_constraints()
    if declared is not None:
        return declared
    one = f"fixed:{pmc.idx - 32}" if pmc.kind == "fixed" else "gp"
    return [one] * pmc.max_nr_events


class PerfAllocatorBase(CounterAllocator):
    """Host perf events behind a vCPU's PMCs; subclasses say what a reprogram does."""

    lazy_release = False
    hears_overflows: ClassVar[bool] = True  # a host NMI per overflow (perf's callback)

    def __init__(self, vcpu: VcpuPort, config: PerfBackedConfig) -> None:
        self.vcpu = vcpu
        self.config = config
        self.machine = vcpu.machine
        self.host = vcpu.machine.host
        self.ledger = vcpu.machine.ledger
        self.ops = self.ledger.perf_ops
        self.events = self.ledger.events
        self.skip_same_cpu = config.reprogram_on_pmi == "cpu-changed"
        self.in_use: set[int] = set()  # pmc_in_use: PMCs touched this slice
        self._led: dict[int, list[Pmc]] | None = None  # leader idx -> followers, built once

    # -------------------------------------------------------------- helpers
    def live(self, pmc: Pmc) -> list[HostEvent]:
        return [e for e in pmc.host_events if e is not None]

    def create(self, pmc: Pmc, config: int) -> None:
        """Release whatever backs ``pmc`` and create its host events: one, or one group.

        A PMC with a ``host_leader`` joins the group of that PMC's live event (none
        live: it cannot be created and does not count); the PMCs that follow ``pmc``
        re-join the new event, as one kvm_pmc's group would be re-created whole.
        """
        for e in pmc.host_events:
            if e is not None:
                self.host.release(e)
        leader_pmc = pmc.host_leader()
        leader = None
        if leader_pmc is not None:
            live = self.live(leader_pmc)
            if not live:
                pmc.host_events[:] = [None] * len(pmc.host_events)
                self.vcpu.set_backing_running(pmc, False)
                return
            leader = live[0]
        pmc.host_events[:] = self.host.create(
            self.vcpu, pmc, config, constraints_of(pmc), leader=leader
        )
        self._sync_running(pmc)
        for follower in self._followers(pmc):
            if follower.counting:
                self.create(follower, follower.control)

    def release(self, pmc: Pmc) -> None:
        for i, e in enumerate(pmc.host_events):
            if e is not None:
                self.host.release(e)
                pmc.host_events[i] = None
        self.vcpu.set_backing_running(pmc, True)
        for follower in self._followers(pmc):  # a group goes with its leader
            if self.live(follower):
                self.release(follower)

    def _followers(self, pmc: Pmc) -> list[Pmc]:
        """The PMCs whose host group ``pmc``'s event leads (the topdown metrics)."""
        if self._led is None:
            led: dict[int, list[Pmc]] = {}
            for p in self.vcpu.counters.values():
                leader = p.host_leader()
                if leader is not None:
                    led.setdefault(leader.idx, []).append(p)
            self._led = led
        return self._led.get(pmc.idx, [])

    def _sync_running(self, pmc: Pmc) -> None:
        live = self.live(pmc)
        self.vcpu.set_backing_running(pmc, all(e.running or e.paused for e in live))

    def emulated_instruction(self, pmcs: list[Pmc]) -> None:
        return None

    def counter_written(self, pmc: Pmc) -> None:
        """A guest wrote ``pmc``'s counter MSR; what that costs is the subclass's design."""
        return None

    # ----------------------------------------------------------------- PMI
    def overflowed(self, pmc: Pmc) -> None:
        """Host perf overflow callback (NMI): the NMI exits, KVM_REQ_PMU is raised.

        KVM processes the request in kvm_pmu_handle_event at the next entry; with
        ``cpu-changed`` it reprograms only if the event last ran on another pCPU.
        """
        if not self.vcpu.pmi_pending:  # counters overflowing together share one NMI
            self.vcpu.count_exit("host_pmi")
            self.ledger.pmis["host_nmi"] += 1
        self.events["pmu_handle_event"] += 1
        live = self.live(pmc)
        here = self.host.pcpu_of(self.vcpu)
        if self.skip_same_cpu and live and all(e.cpu == here for e in live):
            self.events["pmi_reprogram_skipped"] += 1
            return
        self.events["pmi_reprogram"] += 1
        self.vcpu.mark_reprogram(pmc)

    # ------------------------------------------------------ sched in / out
    def sched_in(self, pcpu: int, migrated: bool) -> None:
        """The task events came in with the vCPU thread (the host scheduled them on
        ``pcpu``; the pCPU KVM last programmed them for, ``e.cpu``, stays until the
        next reprogram); then :meth:`resumed`."""
        for pmc in self.vcpu.counters.values():
            self._sync_running(pmc)
        self.resumed()
        if self.lazy_release:
            self._lazy_release()

    def resumed(self) -> None:
        """Hook for strategies that restore state when the vCPU comes back."""

    def _lazy_release(self) -> None:
        """kvm_pmu_cleanup (commit b35e5548b411): release events unused for a whole slice."""
        for pmc in self.vcpu.counters.values():
            if pmc.idx not in self.in_use and not pmc.counting and self.live(pmc):
                self.release(pmc)
                self.events["lazy_release"] += 1
        self.in_use.clear()


class InjectedPmiPath:
    """KVM_REQ_PMI -> LVTPC injection at the next entry.

    Intel injects the NMI with no further exit (virtual NMIs are architectural and the
    LVTPC mask keeps a second PMI from queueing). AMD without vNMI opens an NMI window
    by intercepting IRET and single-stepping past it: two more exits per injected NMI
    (costs.md §3e); Zen 4's vNMI (``[host] vnmi``) removes them.
    """

    def __init__(self, vcpu: VcpuPort) -> None:
        self.vcpu = vcpu
        ledger = vcpu.machine.ledger
        self.pmis = ledger.pmis
        host = vcpu.machine.host
        self.nmi_window = host.pmu.vendor != INTEL and not host.cfg.vnmi

    def deliver(self) -> None:
        if self.vcpu.deliver_pmi():
            self.pmis["injected"] += 1
            if self.nmi_window:
                self.vcpu.count_exit("nmi_window:iret")
                self.vcpu.count_exit("nmi_window:db")


def wrap_counter_writes(vcpu: VcpuPort, on_write: Any) -> None:
    """Bind, once, a strategy's reaction to a guest write of a counter MSR.

    Why: KVM updates the backing event's period when the guest writes a counter
    (spec/intel.md §9); the backend's handler knows nothing of host events.
    """
    for msr, h in list(vcpu.msr_table.items()):
        if h.klass != COUNTER or h.counter is None:
            continue
        pmc = vcpu.counters[h.counter]

        def wrap(row: MsrHandler, pmc: Pmc = pmc) -> MsrHandler:
            inner = row.write

            def write(value: int) -> None:
                inner(value)
                on_write(pmc)

            return replace(row, write=write)

        vcpu.wrap_msr(msr, wrap)


class PerfBackedStrategy(Strategy):
    """The strategies whose guest counters are host perf events (every KVM design but
    ``register`` and ``mediated``): they differ only in their ``Allocator``."""

    Allocator: ClassVar[type[PerfAllocatorBase]]
    shardable: ClassVar[bool] = True
    creates_host_events: ClassVar[bool] = True

    @hookimpl
    def vpmu_counter_allocator(self, vcpu: VcpuPort) -> Any:
        return self.Allocator(vcpu, self.config)

    @hookimpl
    def vpmu_pmi_path(self, vcpu: VcpuPort) -> Any:
        return InjectedPmiPath(vcpu)

    @hookimpl
    def vpmu_vcpu_ready(self, vcpu: VcpuPort) -> None:
        allocator = vcpu.allocator
        assert isinstance(allocator, PerfAllocatorBase)
        wrap_counter_writes(vcpu, allocator.counter_written)

    def teardown(self) -> None:
        for v in self.machine.vcpus:
            for pmc in v.counters.values():
                v.allocator.release(pmc)
