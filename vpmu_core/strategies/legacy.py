"""``emulated-legacy``: the perf-event-oriented KVM vPMU before 2019.

Why it is its own strategy: the seed optimisations (costs.md §1, §2a) were
measured against it. Every change of an event select, of FIXED_CTR_CTRL or of
GLOBAL_CTRL releases the backing host event and creates a new one before the next
entry (``reprogram_gp_counter`` → ``pmc_stop_counter`` + ``pmc_reprogram_counter``);
a counter write updates the period at once (``perf_event_period``, before the
deferral of costs.md §2c); every guest PMI reprograms its counter in
``kvm_pmu_handle_event`` unless ``reprogram_on_pmi = "cpu-changed"`` (Kan Liang's
RFC, costs.md §2a). KVM of that time did not count emulated instructions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel

from ..counters import Pmc
from .common import PerfAllocatorBase, PerfBackedConfig, PerfBackedStrategy

if TYPE_CHECKING:
    pass


class EmulatedLegacyConfig(PerfBackedConfig):
    name: Literal["emulated-legacy"]


class ReleaseCreateAllocator(PerfAllocatorBase):
    """Release and re-create on every reprogram; no pause, no reuse."""

    def reprogram(self, pmc: Pmc) -> None:
        if self.live(pmc):
            self.release(pmc)
        if pmc.counting:
            self.create(pmc, pmc.control)

    def counter_written(self, pmc: Pmc) -> None:
        if self.live(pmc):
            self.ops["period"] += 1


class EmulatedLegacy(PerfBackedStrategy):
    """KVM before the 2019 reuse work: release + create on every control change and PMI."""

    name: ClassVar[str] = "emulated-legacy"
    Config: ClassVar[type[BaseModel]] = EmulatedLegacyConfig

    Allocator = ReleaseCreateAllocator
