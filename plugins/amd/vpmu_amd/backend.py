"""The AMD backend component: builds each vCPU's AmdPmu and answers the machine hooks."""

from __future__ import annotations

from typing import Any, ClassVar

from vpmu_core.allinone import AllInOneRoom
from vpmu_core.backend import Backend, Caps
from vpmu_core.counters import EventKey
from vpmu_core.port import VcpuPort

from . import msrs as M
from .allinone import ROOM
from .config import AmdConfig
from .cpuid import Leaves, amd_leaves
from .pmu import AmdPmu, caps_of, event_table


class AmdBackend(Backend):
    """AMD core PMU: legacy K7, core extension, PerfMonV2, with KVM's rules."""

    name: ClassVar[str] = "amd"
    Config: ClassVar[type[AmdConfig]] = AmdConfig
    config: AmdConfig
    Pmu: ClassVar[type[AmdPmu]] = AmdPmu

    @classmethod
    def event_table(cls, config: Any) -> dict[str, tuple[EventKey, ...]]:
        return event_table(config.event_map)

    @classmethod
    def allinone_room(cls, config: Any) -> AllInOneRoom:
        return ROOM

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        return {
            "zen1-legacy": {"backend": "amd", "generation": "legacy"},
            "zen3-core-ext": {"backend": "amd", "generation": "core-ext"},
            "zen4-perfmon-v2": {"backend": "amd", "generation": "perfmon-v2"},
            "perfmon-v2-4ctr": {"backend": "amd", "generation": "perfmon-v2", "gp_counters": 4},
        }

    @classmethod
    def capabilities(cls, config: Any) -> Caps:
        return caps_of(config)

    def event_select_mask(self) -> int:
        # Filter entries carry the 12-bit select: bits 35:32 take part in matching.
        return M.EVENT_SELECT_MASK

    def create_pmu(self, vcpu: VcpuPort) -> AmdPmu:
        return AmdPmu(vcpu, self.config, self.name)

    def cpuid_leaves(self) -> Leaves:
        return amd_leaves(self.config)
