"""CPUID leaves of an Intel PMU, generated from the config (spec/intel.md §6)."""

from __future__ import annotations

from vpmu_core.msr import vendor_leaf

from . import msrs as M
from .config import IntelConfig

Leaves = dict[tuple[int, int], tuple[int, int, int, int]]

PDCM = 1 << 15  # CPUID.1:ECX


def _dense(bits: int) -> int:
    """How many counters from 0 exist without a hole: what a pre-v6 count may promise."""
    return (~bits & (bits + 1)).bit_length() - 1


def intel_leaves(cfg: IntelConfig) -> Leaves:
    """Leaves 0, 1, 0xA and, for v6, 7.1 and 0x23.

    v6 follows Linux's reading (intel_pmu_init / update_pmu_cap in
    arch/x86/events/intel/core.c): leaf 0xA gives the counts and leaf 0x23 subleaf 1
    the bitmaps, which win. Leaf 0xA EAX[15:8] and EDX[4:0] count only the counters
    from 0 up to the first hole, so a guest that reads no leaf 0x23 touches no
    absent counter; ECX is the v5 fixed-counter bitmask.
    """
    v6 = cfg.version >= 6
    nr_gp = _dense(cfg.gp_bits) if v6 else cfg.gp_counters
    nr_fixed = _dense(cfg.fixed_bits) if v6 else cfg.fixed_counters
    eax_a = cfg.version | (nr_gp << 8) | (cfg.gp_width << 16) | (cfg.events_mask_len << 24)
    ebx_a = cfg.events_unavailable & ((1 << cfg.events_mask_len) - 1)
    edx_a = 0
    if cfg.version >= 2:
        edx_a = nr_fixed | (cfg.fixed_width << 5)
    if cfg.version >= 1:
        edx_a |= 1 << 15  # AnyThread deprecated, as KVM reports it
    if cfg.version == 0:
        # No vPMU: the guest's leaf 0xA is all zeroes (QEMU's cpu_x86_cpuid, case 0xA,
        # without enable_pmu), not an event-vector length or a width of no counters.
        eax_a = ebx_a = 0
    leaves = {
        (0, 0): vendor_leaf("GenuineIntel", M.EXT_LEAF if v6 else 0xA),
        (1, 0): (0, 0, PDCM if cfg.pdcm else 0, 0),
        (0xA, 0): (eax_a, ebx_a, 0, edx_a),
    }
    if v6:
        leaves[(0xA, 0)] = (eax_a, ebx_a, cfg.fixed_bits, edx_a)
        leaves[(7, 1)] = (M.ARCH_PERFMON_EXT, 0, 0, 0)
        leaves[(M.EXT_LEAF, 0)] = (M.EXT_SUBLEAVES, M.EXT_UMASK2 | M.EXT_EQ, 0, 0)
        leaves[(M.EXT_LEAF, 1)] = (cfg.gp_bits, cfg.fixed_bits, 0, 0)
    return leaves
