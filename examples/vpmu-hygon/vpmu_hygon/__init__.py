"""vpmu-hygon: a Hygon Dhyana (family 18h) PMU, the way Xen's vPMU supports it.

Xen's ``vpmu_amd.c`` serves Hygon with the AMD ops table unchanged: the CPU is a
Zen derivative, so only the vendor check and the counter table differ. This
plugin does the same with vpmu's public plugin API: it reuses the AMD backend
(``vpmu_amd``'s exported classes) and brings its own CPUID vendor string
("HygonGenuine"), its own counter table and its own ``[pmu]`` model.

Select it with ``[pmu] backend = "hygon"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from vpmu_amd import AmdBackend, AmdConfig, AmdPmu

import vpmu_core as vpmu

__version__ = "0.1.0"

VENDOR = "HygonGenuine"
# Xen's AMD_F15H_CTRLS / AMD_F15H_COUNTERS, used for family 18h: six interleaved
# PERF_CTL/PERF_CTR pairs (PerfCtrExtCore); the first four also answer at the
# K7 MSRs (Xen's k7_counters_mirrored).
COUNTERS: tuple[tuple[int, int], ...] = tuple(
    (0xC0010200 + 2 * i, 0xC0010201 + 2 * i) for i in range(6)
)
K7_MIRRORED = 4
LVTPC_QUIRK = "lvtpc-masked-on-pmi"


class HygonConfig(BaseModel):
    """The ``[pmu]`` table of a Hygon guest: the counter table is fixed, quirks are not."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["hygon"]
    quirks: list[Literal["lvtpc-masked-on-pmi"]] = Field(
        default_factory=list, description="the historic KVM LVTPC bug, as on AMD"
    )

    def as_amd(self) -> AmdConfig:
        """The AMD configuration with this counter table (core extension, six counters)."""
        # Family 18h is a Zen 1 derivative: Linux's AMD driver gives it the Zen 1
        # generic-event map (amd_f17h_perfmon_event_map, now amd_zen1_...).
        return AmdConfig(
            backend="amd",
            generation="core-ext",
            gp_counters=len(COUNTERS),
            event_map="zen1",
            quirks=self.quirks,
        )


class HygonPmu(AmdPmu):
    """AMD's per-vCPU PMU with Hygon's vendor in its capabilities (and so in snapshots)."""

    def __init__(self, vcpu: vpmu.VcpuPort, cfg: AmdConfig, owner: str) -> None:
        super().__init__(vcpu, cfg, owner)
        self.caps = dataclasses.replace(self.caps, vendor=VENDOR)

    def msr_handlers(self) -> list[vpmu.MsrHandler]:
        rows = super().msr_handlers()
        # Once per vCPU, never per access: the rows AMD built must be this table.
        want = {m for pair in COUNTERS for m in pair}
        want |= {0xC0010000 + i for i in range(K7_MIRRORED)}  # K7 PERF_CTL mirrors
        want |= {0xC0010004 + i for i in range(K7_MIRRORED)}  # K7 PERF_CTR mirrors
        got = {h.msr for h in rows if h.counter is not None}
        if got != want:
            raise vpmu.PluginError(f"hygon: counter MSRs {sorted(got ^ want)} differ from Xen's")
        return rows


class HygonBackend(AmdBackend):
    """AMD's backend component, with Hygon's CPUID vendor and counter table."""

    name: ClassVar[str] = "hygon"
    Config: ClassVar[type[HygonConfig]] = HygonConfig  # type: ignore[assignment]

    def __init__(self, config: HygonConfig, machine: vpmu.MachinePort) -> None:
        super().__init__(config.as_amd(), machine)
        self.hygon = config

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        return {
            "dhyana": {"backend": "hygon"},
            "dhyana-lvtpc-quirk": {"backend": "hygon", "quirks": [LVTPC_QUIRK]},
        }

    Pmu: ClassVar[type[HygonPmu]] = HygonPmu  # type: ignore[assignment]

    @classmethod
    def event_table(cls, config: Any) -> dict[str, tuple[tuple[int, int], ...]]:
        amd = config.as_amd() if isinstance(config, HygonConfig) else config
        return super().event_table(amd)

    @classmethod
    def capabilities(cls, config: Any) -> vpmu.Caps:
        amd = config.as_amd() if isinstance(config, HygonConfig) else config
        return dataclasses.replace(super().capabilities(amd), vendor=VENDOR)

    # The machine hooks live in vpmu.Backend; a backend says how to build a vCPU's
    # PMU and its CPUID leaves.
    def create_pmu(self, vcpu: vpmu.VcpuPort) -> HygonPmu:
        return HygonPmu(vcpu, self.config, self.name)

    def cpuid_leaves(self) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        leaves = dict(super().cpuid_leaves())
        for leaf in (0, 0x80000000):
            leaves[(leaf, 0)] = vpmu.msr.vendor_leaf(VENDOR, leaves[(leaf, 0)][0])
        return leaves


@vpmu.hookimpl
def vpmu_register_backends(register: Callable[[type[Any]], None]) -> None:
    register(HygonBackend)
