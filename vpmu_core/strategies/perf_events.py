"""Host perf events behind a vCPU's guest counters: the perf-backed strategies' hot part.

Why its own module: a reprogram (KVM_REQ_PMU), an emulated increment and a host
overflow callback run thousands of times per vCPU-second under ``emulated``, so
this module is compiled with the engine (setup.py); the strategies' config models
and hooks (:mod:`.common`, :mod:`.emulated`, ...) stay interpreted beside pydantic
and pluggy. ``emulated-legacy`` and ``fastpath`` subclass :class:`PerfAllocatorBase`
from interpreted code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mypy_extensions import mypyc_attr

from ..counters import Pmc
from ..host_events import HostEvent
from ..host_pmu import INTEL
from ..port import CounterAllocator

if TYPE_CHECKING:
    from ..port import VcpuPort

__all__ = ["InjectedPmiPath", "PerfAllocatorBase", "PerfEventAllocator", "constraints_of"]


def constraints_of(pmc: Pmc) -> list[str]:
    """Which host counters can back each of ``pmc``'s slots: its own fixed counter, or GP."""
    declared = pmc.host_constraints()
    if declared is not None:
        return declared
    one = f"fixed:{pmc.idx - 32}" if pmc.kind == "fixed" else "gp"
    return [one] * pmc.max_nr_events


@mypyc_attr(allow_interpreted_subclasses=True)
class PerfAllocatorBase(CounterAllocator):
    """Host perf events behind a vCPU's PMCs; subclasses say what a reprogram does.

    ``config`` is the strategy's :class:`~vpmu_core.strategies.common.PerfBackedConfig`.
    """

    lazy_release: ClassVar[bool] = False
    hears_overflows: ClassVar[bool] = True  # a host NMI per overflow (perf's callback)

    def __init__(self, vcpu: VcpuPort, config: Any) -> None:
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


class PerfEventAllocator(PerfAllocatorBase):
    """KVM's ``reprogram_counter``: pause, then reuse or re-create one host event per slot.

    A grouped PMC's slots are one perf group: paused, reused, re-created and
    released together, so each of those is N perf operations in the ledger.
    """

    lazy_release: ClassVar[bool] = True

    def reprogram(self, pmc: Pmc) -> None:
        # One pass over the slots: this runs at every entry after a counter write or
        # an emulated instruction, so it avoids building lists.
        ops = self.ops
        self.in_use.add(pmc.idx)
        config = pmc.control
        live: list[HostEvent] = []
        same = True
        running = 0
        for e in pmc.host_events:
            if e is None:
                same = False
                continue
            live.append(e)
            if e.config != config:
                same = False
            if not e.paused:
                running += 1
        if running:
            ops["pause"] += running
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
