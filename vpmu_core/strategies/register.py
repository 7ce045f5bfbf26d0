"""``register``: the register-oriented Intel vPMU optimisation v1 (costs.md §1a).

Why it is cheap: the vPMU takes hardware counters from host perf once, by masking
them out of perf's scheduler (``x86_perf_mask_perf_counters``), and from then on a
guest write to a control MSR still exits but is applied straight to the hardware
register: no perf event is ever created. GLOBAL_CTRL is switched on VM transitions
(patch 4/8: loaded on entry, host value on exit); the PMU MSRs are saved and
restored when the vCPU is scheduled out and in, and the counters are given back to
host perf when the guest is torn down. Host perf events that wanted the masked
counters lose them (they are rescheduled onto what is left, or not at all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from ..counters import Pmc
from ..hookspecs import hookimpl
from ..port import CounterAllocator
from ..strategy import Strategy
from .common import InjectedPmiPath

if TYPE_CHECKING:
    from ..port import VcpuPort


class RegisterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["register"]


class MaskedCounterAllocator(CounterAllocator):
    """Guest PMCs live in masked hardware counters; a reprogram is one native WRMSR."""

    def __init__(self, vcpu: VcpuPort) -> None:
        self.vcpu = vcpu
        self.ledger = vcpu.machine.ledger
        host = vcpu.machine.host
        self.host = host
        self.gp = sum(1 for p in vcpu.counters.values() if p.kind == "gp")
        self.fixed = sum(1 for p in vcpu.counters.values() if p.kind == "fixed")
        self.pcpu = host.pcpu_of(vcpu)
        self.masked = False
        if host.on_cpu(vcpu):  # a thread waiting for its pCPU takes counters when it runs
            self._mask()

    def _mask(self) -> None:
        self.host.mask_counters(self.pcpu, self.gp, self.fixed)
        self.masked = True

    def _unmask(self) -> None:
        if self.masked:
            self.host.unmask_counters(self.pcpu, self.gp, self.fixed)
            self.masked = False

    hears_overflows: ClassVar[bool] = True  # the counter's NMI exits, in guest mode

    def reprogram(self, pmc: Pmc) -> None:
        self.ledger.events["hw_wrmsr"] += 1

    def emulated_instruction(self, pmcs: list[Pmc]) -> None:
        return None

    def overflowed(self, pmc: Pmc) -> None:
        if self.vcpu.pmi_pending:
            return  # overflowed together with another counter: the same NMI
        self.ledger.exits["host_pmi"] += 1
        self.ledger.pmis["host_nmi"] += 1

    def release(self, pmc: Pmc) -> None:
        return None

    def msrs(self) -> int:
        """Counters + their controls, FIXED_CTR_CTRL and GLOBAL_CTRL."""
        return 2 * self.gp + self.fixed + (2 if self.fixed else 1)

    def sched_out(self) -> None:
        self.ledger.context_switches["sched_out"] += 1
        self.ledger.switch_msrs["rdmsr"] += self.msrs()
        self._unmask()

    def sched_in(self, pcpu: int, migrated: bool) -> None:
        self.ledger.context_switches["sched_in"] += 1
        self.ledger.switch_msrs["wrmsr"] += self.msrs()
        self.pcpu = pcpu
        self._mask()

    def teardown(self) -> None:
        self._unmask()


class Register(Strategy):
    """Counters masked from host perf; control writes go straight to the hardware."""

    name: ClassVar[str] = "register"
    Config: ClassVar[type[BaseModel]] = RegisterConfig
    transition_msrs_per_exit: ClassVar[int] = 2  # GLOBAL_CTRL: guest on entry, host on exit
    shardable: ClassVar[bool] = True

    @hookimpl
    def vpmu_counter_allocator(self, vcpu: VcpuPort) -> Any:
        return MaskedCounterAllocator(vcpu)

    @hookimpl
    def vpmu_pmi_path(self, vcpu: VcpuPort) -> Any:
        return InjectedPmiPath(vcpu)

    def teardown(self) -> None:
        for v in self.machine.vcpus:
            v.allocator.teardown()  # type: ignore[attr-defined]
