"""What a virtualization strategy is, as the core sees it.

A strategy decides three things, each bound once per vCPU:

* which guest accesses exit (:meth:`Strategy.intercept`, asked once per MSR when
  the dispatch table is built, and :meth:`Strategy.rdpmc_exits`);
* how a PMC is backed on the host (:class:`CounterAllocator`, from the
  ``vpmu_counter_allocator`` hook): perf events created, reused, released;
* how a PMI travels to the guest (:class:`PmiPath`, from ``vpmu_pmi_path``).

The default PMI path (:class:`DirectPmiPath`) is the architectural one: the
vCPU's LVTPC accepts or drops it. Strategies wrap it to count what the trip costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .port import CounterAllocator, PmiPath

if TYPE_CHECKING:
    from .msr import MsrHandler
    from .port import MachinePort, VcpuPort

__all__ = ["CounterAllocator", "DirectPmiPath", "PmiPath", "Strategy"]


class DirectPmiPath:
    """The architectural PMI trip: overflow -> LVTPC -> guest, nothing priced."""

    __slots__ = ("vcpu",)

    def __init__(self, vcpu: VcpuPort) -> None:
        self.vcpu = vcpu

    def deliver(self) -> None:
        self.vcpu.deliver_pmi()


class Strategy:
    """Base class of strategies: one instance per machine, a component of its hooks.

    Subclasses set ``name`` and ``Config`` (a pydantic model with
    ``name: Literal[...]``) and implement :meth:`intercept` and the hooks
    ``vpmu_counter_allocator`` / ``vpmu_pmi_path``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]
    # MSRs a VM transition switches for this strategy (VMCS / auto-load list), per exit.
    transition_msrs_per_exit: ClassVar[int] = 0
    # Sharding (workloads/parallel.py). True promises: this strategy's vCPUs interact only
    # through the host model (pCPUs, migrations, host perf events), so vCPUs the host keeps
    # apart can be simulated in separate processes with an identical ledger. False: serial.
    shardable: ClassVar[bool] = False
    # It backs guest counters with host perf events: the first one created on a host with
    # none flips perf_sched_events once, host-wide, so shards must not each pay for it.
    creates_host_events: ClassVar[bool] = False
    # Symmetry classes (workloads/symmetry.py). True promises: what this strategy does for
    # a vCPU is a function of config and state, never of the vCPU's index, so vCPUs in the
    # same state stay in the same state. A strategy that draws per vCPU (an RNG seeded by
    # machine seed and vCPU index) sets False and every vCPU is simulated.
    symmetric: ClassVar[bool] = True

    def __init__(self, config: Any, machine: MachinePort) -> None:
        self.config = config
        self.machine = machine

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """Refuse (ConfigError) a machine this strategy cannot run on."""

    def intercept(self, vcpu: VcpuPort, handler: MsrHandler, write: bool) -> str | None:
        """Exit reason for a guest access to ``handler``'s MSR, or None if it passes through."""
        return f"{'wrmsr' if write else 'rdmsr'}:{handler.klass}"

    def rdpmc_exits(self, vcpu: VcpuPort) -> bool:
        return True

    def vcpu_sched_out(self, vcpu: VcpuPort) -> None:
        """The vCPU's thread left its pCPU (the host's slice end); the allocator hears it."""
        vcpu.allocator.sched_out()

    def vcpu_sched_in(self, vcpu: VcpuPort, pcpu: int, migrated: bool) -> None:
        """The vCPU's thread runs again on ``pcpu``; ``migrated``: not where it last ran."""
        vcpu.allocator.sched_in(pcpu, migrated)

    def finish(self) -> None:
        """Settle counts kept lazily (called before the ledger is priced)."""

    def teardown(self) -> None:
        """The VM is destroyed: return host resources (counters, events)."""

    def host_blind_ns(self, guest_ns: float) -> float:
        """Guest time during which host perf could not see the PMU (mediated only)."""
        return 0.0
