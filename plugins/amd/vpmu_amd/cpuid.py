"""CPUID leaves of an AMD PMU, generated from the config (spec/amd-and-topdown.md §1.2, §3.1)."""

from __future__ import annotations

from vpmu_core.msr import vendor_leaf

from . import msrs as M
from .config import AmdConfig

Leaves = dict[tuple[int, int], tuple[int, int, int, int]]


def amd_leaves(cfg: AmdConfig) -> Leaves:
    # AMD has no architectural PMU leaf for v1: the 4 K7 counters are implied by
    # the vendor, so a legacy PMU shows nothing beyond leaf 0.
    # PerfMonV2 implies PerfCtrExtCore here, also below 6 counters, so every counter
    # has an MSR; KVM itself clears PerfCtrExtCore when the host has fewer than 6
    # (§3.1), so a 4- or 5-counter perfmon-v2 config here keeps the 0xC00102xx
    # MSRs that such a KVM guest would lack.
    ext_ecx = M.PERFCTR_CORE if cfg.core_ext else 0
    leaves: Leaves = {
        (0, 0): vendor_leaf("AuthenticAMD", 0x10),
        (0x80000000, 0): vendor_leaf("AuthenticAMD", M.EXT_MAX_LEAF),
        (0x80000001, 0): (0, 0, ext_ecx, 0),
    }
    if cfg.version >= 2:
        # KVM reports only PerfMonV2 in EAX and NumPerfCtrCore in EBX; LBR, DF and
        # UMC fields are 0 (§3.1, §8 item 10).
        leaves[(0x80000022, 0)] = (M.PERFMON_V2, cfg.gp_counters & 0xF, 0, 0)
    return leaves
