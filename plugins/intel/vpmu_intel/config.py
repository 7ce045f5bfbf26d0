"""The ``[pmu]`` table of the Intel backend."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpmu_core.errors import ConfigError


class IntelConfig(BaseModel):
    """An Intel architectural PMU as CPUID.0AH and PERF_CAPABILITIES describe it."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["intel"]
    version: int = Field(2, ge=0, le=5, description="architectural PMU version, CPUID.0AH:EAX[7:0]")
    gp_counters: int = Field(8, ge=0, le=32, description="general-purpose counters")
    fixed_counters: int = Field(3, ge=0, le=4, description="fixed counters (version >= 2)")
    gp_width: int = Field(48, ge=8, le=64, description="GP counter width in bits")
    fixed_width: int = Field(48, ge=8, le=64, description="fixed counter width in bits")
    full_width_writes: bool = Field(
        True, description="PERF_CAPABILITIES bit 13: IA32_A_PMCx (0x4C1+) exist"
    )
    pdcm: bool = Field(True, description="CPUID.1:ECX.PDCM: IA32_PERF_CAPABILITIES readable")
    perf_capabilities: int = Field(
        0,
        ge=0,
        lt=1 << 64,
        description="other PERF_CAPABILITIES bits (bit 13 follows full_width_writes)",
    )
    events_unavailable: int = Field(
        0, ge=0, lt=1 << 13, description="CPUID.0AH:EBX: bit i set = architectural event i absent"
    )
    events_mask_len: int = Field(13, ge=0, le=13, description="CPUID.0AH:EAX[31:24]")
    tsx: bool = Field(False, description="HLE/RTM: IN_TX (bit 32) writable, IN_TXCP on PMC2")
    pebs_baseline: bool = Field(
        False, description="PEBS baseline: ADAPTIVE bits writable in eventsel and FIXED_CTR_CTRL"
    )
    lbr: bool = Field(False, description="guest LBRs: DEBUGCTL.LBR and FREEZE_LBRS_ON_PMI writable")
    bus_lock_detect: bool = Field(False, description="DEBUGCTL.BUS_LOCK_DETECT writable")
    quirks: list[Literal["kvm-no-status-set"]] = Field(
        default_factory=list,
        description="kvm-no-status-set: like upstream KVM, #GP on GLOBAL_STATUS_SET even for v4+",
    )

    @model_validator(mode="after")
    def _consistent(self) -> IntelConfig:
        if self.version < 2 and self.fixed_counters:
            raise ConfigError(
                "pmu.fixed_counters",
                self.fixed_counters,
                f"version {self.version} has no fixed counters; use 0 or version >= 2",
            )
        if self.version == 0 and self.gp_counters:
            raise ConfigError(
                "pmu.gp_counters", self.gp_counters, "version 0 has no PMU; use 0 or version >= 1"
            )
        if self.full_width_writes and not self.pdcm:
            raise ConfigError(
                "pmu.full_width_writes", True, "needs pdcm = true (PERF_CAPABILITIES must exist)"
            )
        return self
