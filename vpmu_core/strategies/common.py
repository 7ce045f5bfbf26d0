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
from ..msr import COUNTER, MsrHandler
from ..strategy import Strategy
from .perf_events import InjectedPmiPath, PerfAllocatorBase, constraints_of

__all__ = [
    "InjectedPmiPath",
    "PerfAllocatorBase",
    "PerfBackedConfig",
    "PerfBackedStrategy",
    "constraints_of",
    "wrap_counter_writes",
]

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
