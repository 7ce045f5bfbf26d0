"""Where an all-in-one counter may sit on Intel: status bits and RDPMC types no one uses.

GLOBAL_STATUS bits (spec/intel.md §4; Linux's arch/x86/include/asm/perf_event.h at
torvalds/linux 353b7a55dcaf names 48 and 55-63): 0-31 GP counters, 32-47 fixed
counters, 48 PERF_METRICS, 54 arch-PEBS threshold (newer parts), 55 Trace ToPA PMI,
58 LBR frozen, 59 counters frozen, 60 ASCI, 61 uncore overflow, 62 OvfBuffer (a Linux
guest drains PEBS on it), 63 CondChgd. Beside PERF_METRICS, a Linux guest keeps its
topdown metric events at indices 48 + i (INTEL_PMC_IDX_METRIC_BASE) and serves a set
status bit there as that event's overflow (handle_pmi_common). That leaves 56-57 and,
without those metric events, 49-53.

RDPMC (spec §7): ECX[31:16] is a type, 0 the GP counters, bit 30 the fixed ones, bit
29 PERF_METRICS, bit 31 the fast-read flag of non-architectural PMUs; KVM's VMware
backdoor answers 0x10000-0x10002. That leaves ECX 0x10003-0x1FFFFFFF.
"""

from __future__ import annotations

from vpmu_core.allinone import AllInOneRoom, backdoor_rdpmc

from . import msrs as M
from .config import IntelConfig

STATUS_MEANINGS = {
    48: "PERF_METRICS overflow",
    54: "the arch-PEBS threshold",
    55: "Trace ToPA PMI",
    58: "LBR_FROZEN (LBR stack frozen on PMI)",
    59: "CTR_FRZ (counters frozen on PMI)",
    60: "ASCI",
    61: "uncore overflow",
    62: "OvfBuffer (DS/PEBS buffer overflow: a Linux guest drains PEBS on it)",
    63: "CondChgd",
}
FREE_ORDER = (56, 57, 49, 50, 51, 52, 53)
RDPMC_FAST = 1 << 31


def rdpmc_taken(ecx: int) -> str | None:
    """What an RDPMC ECX already reads on Intel, or None if nothing does."""
    index = ecx & M.RDPMC_INDEX_MASK
    if ecx & RDPMC_FAST:
        return "the fast-read flag (ECX bit 31)"
    if ecx & M.RDPMC_FIXED:
        return f"fixed counter {index} (RDPMC type bit 30)"
    if ecx & M.RDPMC_METRICS:
        return "PERF_METRICS (RDPMC type bit 29)"
    if ecx >> 16 == 0:
        return f"IA32_PMC{index} (RDPMC type 0, the GP counters)"
    return backdoor_rdpmc(ecx)


def room(cfg: IntelConfig) -> AllInOneRoom:
    """The status bits left free by the architecture and, with topdown, by Linux."""
    taken = {i: f"GLOBAL_STATUS bit {i} is {m} on Intel" for i, m in STATUS_MEANINGS.items()}
    for i in range(1, cfg.topdown_metrics or 0):
        taken.setdefault(
            48 + i,
            f"a Linux guest with pmu.topdown_metrics keeps topdown metric event {i} at index "
            f"{48 + i} and reads status bit {48 + i} as its overflow",
        )
    return AllInOneRoom(
        indexes=tuple(i for i in FREE_ORDER if i not in taken),
        taken=taken,
        rdpmc_taken=rdpmc_taken,
        rdpmc_allowed="0x10003-0x1fffffff (ECX bits 31:29 clear, a type in bits 28:16)",
    )
