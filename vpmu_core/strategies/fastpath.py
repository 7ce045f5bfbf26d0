"""``fastpath``: the RFC v2 "Intel Virtual PMU Optimization" design (costs.md §1b).

Why: host perf hands a counter to KVM once, and KVM then drives that counter
itself. A host event is created only when the guest writes a new configuration;
a change of the enable bit alone (in the event select, FIXED_CTR_CTRL or
GLOBAL_CTRL) is written straight to the hardware counter the event occupies; if
host perf has scheduled the event out (contention, rotation, migration) the
counter is reprogrammed through perf instead. Events are released lazily after a
time slice without use, and the PMU state is saved and restored on vCPU sched.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel

from ..counters import Pmc
from .common import PerfAllocatorBase, PerfBackedConfig, PerfBackedStrategy

EVTSEL_EN = 1 << 22  # architectural x86 event-select enable bit (Intel and AMD alike)


class FastpathConfig(PerfBackedConfig):
    name: Literal["fastpath"]


class DirectEnableAllocator(PerfAllocatorBase):
    """Create on a new config; enable-bit changes go straight to the HW counter."""

    lazy_release: ClassVar[bool] = True

    def config_of(self, pmc: Pmc) -> int:
        return pmc.control & ~EVTSEL_EN if pmc.kind == "gp" else pmc.control

    def reprogram(self, pmc: Pmc) -> None:
        self.in_use.add(pmc.idx)
        live = self.live(pmc)
        here = self.host.pcpu_of(self.vcpu)
        if not pmc.counting:
            if live:  # disable: clear the enable bit in the counter's own register;
                # host perf is not told, so the event keeps its counter (no pause)
                self.events["hw_wrmsr"] += 1
            return
        config = self.config_of(pmc)
        if live and all(e.config == config for e in live) and len(live) == len(pmc.host_events):
            if all(e.running and e.home == here and e.cpu == here for e in live):
                self.events["hw_wrmsr"] += 1
                self.events["direct_enable"] += 1
            else:  # scheduled out by host perf: go through perf again
                self.ops["reuse"] += len(live)
                self.ops["period"] += len(live)
                self.events["reprogram_scheduled_out"] += 1
            for e in live:
                e.cpu = here
            return
        self.create(pmc, config)

    def counter_written(self, pmc: Pmc) -> None:
        self.in_use.add(pmc.idx)
        if self.live(pmc):
            self.events["hw_wrmsr"] += 1  # the value goes to the assigned counter

    def sched_out(self) -> None:
        n = sum(1 for p in self.vcpu.counters.values() if self.live(p))
        if n:
            self.ledger.context_switches["sched_out"] += 1
            self.ledger.switch_msrs["rdpmc"] += n
            self.ledger.switch_msrs["rdmsr"] += n

    def resumed(self) -> None:
        n = sum(1 for p in self.vcpu.counters.values() if self.live(p))
        if n:
            self.ledger.context_switches["sched_in"] += 1
            self.ledger.switch_msrs["wrmsr"] += 2 * n


class Fastpath(PerfBackedStrategy):
    """RFC v2: perf allocates, KVM writes enable bits to the hardware counter directly."""

    name: ClassVar[str] = "fastpath"
    Config: ClassVar[type[BaseModel]] = FastpathConfig

    Allocator = DirectEnableAllocator
