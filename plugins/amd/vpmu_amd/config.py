"""The ``[pmu]`` table of the AMD backend (spec/amd-and-topdown.md §1.2, §3.1, §8)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpmu_core.errors import ConfigError

Generation = Literal["legacy", "core-ext", "perfmon-v2"]
EventMap = Literal["k7", "zen1", "zen2", "zen4"]
Quirk = Literal["lvtpc-masked-on-pmi", "global-ctl-zero-at-reset"]

# AMD64_NUM_COUNTERS / AMD64_NUM_COUNTERS_CORE (§1.1); KVM_MAX_NR_AMD_GP_COUNTERS (§3.1);
# CPUID 0x80000022 EBX[3:0] can name at most 15, hardware documents up to 16 in PPRs.
LEGACY_COUNTERS = 4
CORE_COUNTERS = 6
KVM_MAX_GP = 6
MIN_GP = 4
BARE_MAX_GP = 16
DEFAULT_COUNTERS: dict[str, int] = {
    "legacy": LEGACY_COUNTERS,
    "core-ext": CORE_COUNTERS,
    "perfmon-v2": CORE_COUNTERS,
}


class AmdConfig(BaseModel):
    """An AMD core PMU as CPUID 0x80000001/0x80000022 describe it to the guest."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["amd"]
    generation: Generation = Field(
        "perfmon-v2",
        description="legacy: 4 K7 counters; core-ext: PerfCtrExtCore, 6 counters; "
        "perfmon-v2: PerfMonV2 global control/status",
    )
    gp_counters: int = Field(
        CORE_COUNTERS,
        description="GP counters: legacy exactly 4, core-ext exactly 6, perfmon-v2 4..6 "
        "(4..16 with kvm_cap = false); defaults to the generation's count",
    )
    event_map: EventMap = Field(
        "zen4",
        description="which of Linux's AMD generic-event maps the guest's perf uses (it picks by "
        "CPU family): k7 (K7 to family 16h), zen1, zen2 (Zen 2 and 3), zen4 (Zen 4 and "
        "later: ref-cycles is PMCx120 umask 1)",
    )
    kvm_cap: bool = Field(
        True,
        description="apply KVM's cap of 6 GP counters; false models bare hardware (perfmon-v2)",
    )
    quirks: list[Quirk] = Field(
        default_factory=list,
        description="historic KVM bugs (spec §8): lvtpc-masked-on-pmi (2023-2024), "
        "global-ctl-zero-at-reset (before 2024)",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_count(cls, data: Any) -> Any:
        # The right default count depends on the generation, which a plain field
        # default cannot see.
        if isinstance(data, dict) and "gp_counters" not in data:
            gen = data.get("generation", "perfmon-v2")
            if isinstance(gen, str) and gen in DEFAULT_COUNTERS:
                data = {**data, "gp_counters": DEFAULT_COUNTERS[gen]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> AmdConfig:
        n = self.gp_counters
        if self.generation == "legacy" and n != LEGACY_COUNTERS:
            raise ConfigError(
                "pmu.gp_counters", n, "generation 'legacy' has exactly 4 counters (K7 MSRs)"
            )
        if self.generation == "core-ext" and n != CORE_COUNTERS:
            raise ConfigError(
                "pmu.gp_counters",
                n,
                "generation 'core-ext' has exactly 6 counters (PerfCtrExtCore)",
            )
        if self.generation == "perfmon-v2":
            high = KVM_MAX_GP if self.kvm_cap else BARE_MAX_GP
            if not MIN_GP <= n <= high:
                why = "KVM caps AMD guests at 6" if self.kvm_cap else "bare hardware"
                raise ConfigError(
                    "pmu.gp_counters",
                    n,
                    f"generation 'perfmon-v2' allows {MIN_GP}..{high} ({why}; "
                    "kvm_cap = false models bare hardware, up to 16)",
                )
        elif not self.kvm_cap:
            raise ConfigError(
                "pmu.kvm_cap",
                False,
                "only generation 'perfmon-v2' takes its counter count from CPUID; "
                "use kvm_cap = true",
            )
        return self

    @property
    def version(self) -> int:
        """KVM's pmu->version: 2 with PerfMonV2, else 1 (§3.1)."""
        return 2 if self.generation == "perfmon-v2" else 1

    @property
    def core_ext(self) -> bool:
        """Whether CPUID advertises PerfCtrExtCore, i.e. the 0xC00102xx MSRs exist."""
        return self.generation != "legacy"
