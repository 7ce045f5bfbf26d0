"""The Intel backend component: builds each vCPU's IntelPmu and answers the machine hooks."""

from __future__ import annotations

from typing import Any, ClassVar

from vpmu_core.backend import Backend, Caps
from vpmu_core.counters import Pmc
from vpmu_core.hookspecs import hookimpl
from vpmu_core.msr import MsrHandler
from vpmu_core.vcpu import Vcpu

from .config import IntelConfig
from .cpuid import Leaves, intel_leaves
from .guest import IntelGuestDriver
from .pmu import IntelPmu, caps_of


class IntelBackend(Backend):
    """Intel architectural PMU, versions 0-5, with KVM's rules."""

    name: ClassVar[str] = "intel"
    Config: ClassVar[type[IntelConfig]] = IntelConfig
    config: IntelConfig

    @classmethod
    def event_names(cls) -> list[str]:
        return sorted(IntelPmu.events)

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
            "narrow-v4": {
                **base,
                "version": 4,
                "gp_counters": 2,
                "fixed_counters": 1,
                "gp_width": 32,
                "fixed_width": 36,
            },
        }

    def caps(self) -> Caps:
        return caps_of(self.config)

    def event_select_mask(self) -> int:
        return 0xFF

    def guest_driver(self, vcpu: Vcpu) -> IntelGuestDriver:
        return IntelGuestDriver(vcpu)

    @hookimpl
    def vpmu_vcpu_counters(self, vcpu: Vcpu) -> list[Pmc]:
        pmu = IntelPmu(vcpu, self.config, self.name)
        vcpu.pmu = pmu
        return pmu.counters()

    @hookimpl
    def vpmu_vcpu_msr_handlers(self, vcpu: Vcpu) -> list[MsrHandler]:
        assert isinstance(vcpu.pmu, IntelPmu)
        return vcpu.pmu.msr_handlers()

    @hookimpl
    def vpmu_vcpu_cpuid(self, vcpu: Vcpu) -> Leaves:
        return intel_leaves(self.config)

    @hookimpl
    def vpmu_vcpu_ready(self, vcpu: Vcpu) -> None:
        vcpu.pmu.reset()

    @hookimpl
    def vpmu_save_state(self, vcpu: Vcpu) -> dict[str, Any]:
        return vcpu.pmu.save()

    @hookimpl
    def vpmu_restore_state(self, vcpu: Vcpu, states: dict[str, dict[str, Any]]) -> None:
        vcpu.pmu.load(states[self.name])
