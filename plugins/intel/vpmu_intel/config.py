"""The ``[pmu]`` table of the Intel backend."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpmu_core.errors import ConfigError

from .msrs import PERF_CAP_PERF_METRICS

# KVM_MAX_NR_INTEL_GP_COUNTERS (spec/intel.md §6), and all the legacy MSR map has room
# for: a 9th PERFEVTSEL/PMC would be 0x18E/0xC9, and numbering on claims
# PLATFORM_INFO (0xCE = PMC 13), PERF_STATUS/CTL (0x198/0x199 = PERFEVTSEL 18/19)
# and IA32_MISC_ENABLE (0x1A0 = PERFEVTSEL 26).
MAX_GP = 8


class IntelConfig(BaseModel):
    """An Intel architectural PMU as CPUID.0AH and PERF_CAPABILITIES describe it."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["intel"]
    version: int = Field(2, ge=0, le=6, description="architectural PMU version, CPUID.0AH:EAX[7:0]")
    gp_counters: int = Field(
        8, ge=0, description=f"general-purpose counters, at most {MAX_GP} (KVM and the MSR map)"
    )
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
    gp_bitmap: int | None = Field(
        None,
        ge=0,
        lt=1 << 32,
        description="v6: CPUID.23H.1:EAX, the GP counters that exist (bit i = counter i)",
    )
    fixed_bitmap: int | None = Field(
        None,
        ge=0,
        lt=1 << 4,
        description="v6: CPUID.23H.1:EBX, the fixed counters that exist (bit i = counter i)",
    )
    topdown_metrics: Literal[4, 8] | None = Field(
        None,
        description="IA32_PERF_METRICS (0x329) over fixed counter 3: 4 = Ice Lake (level 1), "
        "8 = Sapphire Rapids (level 2); needs fixed counter 3; exists only with pdcm = true "
        "(PERF_CAPABILITIES bit 15 enumerates it)",
    )
    quirks: list[Literal["kvm-no-status-set"]] = Field(
        default_factory=list,
        description="kvm-no-status-set: like upstream KVM, #GP on GLOBAL_STATUS_SET even for v4+",
    )

    @model_validator(mode="before")
    @classmethod
    def _counts_from_bitmaps(cls, data: Any) -> Any:
        """A bitmap gives its counter's count; an explicit count must agree with it."""
        if not isinstance(data, dict):
            return data
        for bitmap, count in (("gp_bitmap", "gp_counters"), ("fixed_bitmap", "fixed_counters")):
            bits = data.get(bitmap)
            if not isinstance(bits, int) or isinstance(bits, bool) or bits < 0:
                continue
            n = bin(bits).count("1")
            if count in data and data[count] != n:
                raise ConfigError(
                    f"pmu.{count}",
                    data[count],
                    f"{bitmap} {bits:#b} has {n} counters; omit {count}",
                )
            data = {**data, count: n}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> IntelConfig:
        if self.gp_bits >> MAX_GP:
            key, value = (
                ("pmu.gp_counters", self.gp_counters)
                if self.gp_bitmap is None
                else ("pmu.gp_bitmap", self.gp_bitmap)
            )
            raise ConfigError(
                key,
                value,
                f"at most {MAX_GP} GP counters, 0-{MAX_GP - 1} (KVM_MAX_NR_INTEL_GP_COUNTERS; "
                "PERFEVTSEL 0x186+i and PMC 0xC1+i have no room for more)",
            )
        for bitmap in ("gp_bitmap", "fixed_bitmap"):
            if getattr(self, bitmap) is not None and self.version < 6:
                raise ConfigError(
                    f"pmu.{bitmap}",
                    getattr(self, bitmap),
                    f"counter bitmaps are CPUID leaf 0x23: needs version >= 6, not {self.version}",
                )
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
        if self.topdown_metrics is not None and (self.version < 2 or not self.fixed_bits & 0b1000):
            raise ConfigError(
                "pmu.topdown_metrics",
                self.topdown_metrics,
                "needs pmu.version >= 2 and fixed counter 3 (fixed_counters = 4, or bit 3 of "
                "a v6 fixed_bitmap): PERF_METRICS is derived from the SLOTS it counts",
            )
        if self.perf_capabilities & PERF_CAP_PERF_METRICS and self.topdown_metrics is None:
            # Linux adds GLOBAL_CTRL bit 48 to intel_ctrl when it sees this bit
            # (intel_pmu_init) and enable_all writes it: without PERF_METRICS that WRMSR
            # would #GP in the guest's own driver. One switch says both: topdown_metrics.
            raise ConfigError(
                "pmu.perf_capabilities",
                self.perf_capabilities,
                "bit 15 (PERF_METRICS) is set by pmu.topdown_metrics = 4 or 8, which also "
                "gives the MSR and GLOBAL_CTRL bit 48; clear it or set topdown_metrics",
            )
        if self.full_width_writes and not self.pdcm:
            raise ConfigError(
                "pmu.full_width_writes", True, "needs pdcm = true (PERF_CAPABILITIES must exist)"
            )
        return self

    @property
    def gp_bits(self) -> int:
        """The GP counters the vCPU has, one bit each: the v6 bitmap, else 0..n-1."""
        return (1 << self.gp_counters) - 1 if self.gp_bitmap is None else self.gp_bitmap

    @property
    def fixed_bits(self) -> int:
        """The fixed counters the vCPU has (bit 0 = FIXED_CTR0), as ``gp_bits``."""
        return (1 << self.fixed_counters) - 1 if self.fixed_bitmap is None else self.fixed_bitmap

    @property
    def gp_indexes(self) -> list[int]:
        """The GP counter indexes the vCPU has, ascending."""
        return _indexes(self.gp_bits)

    @property
    def fixed_indexes(self) -> list[int]:
        """The fixed counter numbers the vCPU has, ascending."""
        return _indexes(self.fixed_bits)


def _indexes(bits: int) -> list[int]:
    return [i for i in range(bits.bit_length()) if bits >> i & 1]
