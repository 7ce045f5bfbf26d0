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

from typing import ClassVar, Literal

from pydantic import BaseModel

from .common import InjectedPmiPath, PerfBackedConfig, PerfBackedStrategy
from .perf_events import PerfEventAllocator

__all__ = ["Emulated", "EmulatedConfig", "InjectedPmiPath", "PerfEventAllocator"]


class EmulatedConfig(PerfBackedConfig):
    name: Literal["emulated"]


class Emulated(PerfBackedStrategy):
    """Mainline KVM: every PMU access exits; perf events reused when the config is unchanged."""

    name: ClassVar[str] = "emulated"
    Config: ClassVar[type[BaseModel]] = EmulatedConfig

    Allocator = PerfEventAllocator
