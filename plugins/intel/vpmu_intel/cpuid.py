"""CPUID leaves of an Intel PMU, generated from the config (spec/intel.md §6)."""

from __future__ import annotations

from vpmu_core.msr import vendor_leaf

from .config import IntelConfig

Leaves = dict[tuple[int, int], tuple[int, int, int, int]]

PDCM = 1 << 15  # CPUID.1:ECX


def intel_leaves(cfg: IntelConfig) -> Leaves:
    eax_a = (
        cfg.version
        | (cfg.gp_counters << 8)
        | ((cfg.gp_width if cfg.version else 0) << 16)
        | (cfg.events_mask_len << 24)
    )
    ebx_a = cfg.events_unavailable & ((1 << cfg.events_mask_len) - 1)
    edx_a = 0
    if cfg.version >= 2:
        edx_a = cfg.fixed_counters | (cfg.fixed_width << 5)
    if cfg.version >= 1:
        edx_a |= 1 << 15  # AnyThread deprecated, as KVM reports it
    return {
        (0, 0): vendor_leaf("GenuineIntel", 0xA),
        (1, 0): (0, 0, PDCM if cfg.pdcm else 0, 0),
        (0xA, 0): (eax_a, ebx_a, 0, edx_a),
    }
