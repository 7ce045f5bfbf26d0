"""The Intel backend component: builds each vCPU's IntelPmu and answers the machine hooks."""

from __future__ import annotations

from typing import Any, ClassVar

from vpmu_core.allinone import AllInOneRoom
from vpmu_core.backend import Backend, Caps
from vpmu_core.counters import EventKey
from vpmu_core.port import VcpuPort

from . import allinone
from .caps import caps_of, event_table
from .config import IntelConfig
from .cpuid import Leaves, intel_leaves
from .pmu import IntelPmu


class IntelBackend(Backend):
    """Intel architectural PMU, versions 0-5 with KVM's rules, and v6 as the architecture."""

    name: ClassVar[str] = "intel"
    Config: ClassVar[type[IntelConfig]] = IntelConfig
    config: IntelConfig
    Pmu: ClassVar[type[IntelPmu]] = IntelPmu

    @classmethod
    def event_table(cls, config: Any) -> dict[str, tuple[EventKey, ...]]:
        # From the table itself, not IntelPmu.events: compiled (mypyc), a class's
        # attribute default is an instance-slot descriptor on the class, not the dict.
        return event_table()

    @classmethod
    def allinone_room(cls, config: Any) -> AllInOneRoom:
        return allinone.room(config)

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        base = {"backend": "intel"}
        return {
            "kvm-v2": {**base, "version": 2, "gp_counters": 8, "fixed_counters": 3},
            "v1-legacy": {
                **base,
                "version": 1,
                "gp_counters": 4,
                "fixed_counters": 0,
                "gp_width": 40,
                "full_width_writes": False,
            },
            "spr-v5": {**base, "version": 5, "gp_counters": 8, "fixed_counters": 4},
            # configs/intel-spr-topdown.toml's PMU: PERF_METRICS with 8 metrics over fixed counter 3
            "spr-topdown": {
                **base,
                "version": 5,
                "gp_counters": 8,
                "fixed_counters": 4,
                "topdown_metrics": 8,
            },
            # configs/intel-v6.toml's PMU: v6 counter bitmaps with holes (CPUID leaf 0x23)
            "sparse-v6": {**base, "version": 6, "gp_bitmap": 0b10110101, "fixed_bitmap": 0b1011},
            "narrow-v4": {
                **base,
                "version": 4,
                "gp_counters": 2,
                "fixed_counters": 1,
                "gp_width": 32,
                "fixed_width": 36,
            },
        }

    @classmethod
    def capabilities(cls, config: Any) -> Caps:
        return caps_of(config)

    def event_select_mask(self) -> int:
        return 0xFF

    def create_pmu(self, vcpu: VcpuPort) -> IntelPmu:
        return IntelPmu(vcpu, self.config, self.name)

    def cpuid_leaves(self) -> Leaves:
        return intel_leaves(self.config)
