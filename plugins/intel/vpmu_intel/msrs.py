"""Intel architectural PMU register map and bit layouts (spec/intel.md §1-4)."""

from __future__ import annotations

PERFCTR0 = 0xC1  # IA32_PMCx, legacy 32-bit-writable alias
PMC0 = 0x4C1  # IA32_A_PMCx, full-width alias (PERF_CAPABILITIES bit 13)
PERFEVTSEL0 = 0x186
FIXED_CTR0 = 0x309
PERF_METRICS = 0x329
PERF_CAPABILITIES = 0x345
FIXED_CTR_CTRL = 0x38D
GLOBAL_STATUS = 0x38E
GLOBAL_CTRL = 0x38F
GLOBAL_OVF_CTRL = 0x390
GLOBAL_STATUS_SET = 0x391
GLOBAL_INUSE = 0x392
DEBUGCTL = 0x1D9

# IA32_PERFEVTSELx
EVTSEL_USR = 1 << 16
EVTSEL_OS = 1 << 17
EVTSEL_EDGE = 1 << 18
EVTSEL_PC = 1 << 19
EVTSEL_INT = 1 << 20
EVTSEL_ANY = 1 << 21
EVTSEL_EN = 1 << 22
EVTSEL_INV = 1 << 23
IN_TX = 1 << 32
IN_TXCP = 1 << 33
ADAPTIVE = 1 << 34
# Architectural PerfMon v6 (arch/x86/include/asm/perf_event.h, ARCH_PERFMON_EVENTSEL_EQ and
# ARCH_PERFMON_EVENTSEL_UMASK2; Linux eb467aaac21e "perf/x86/intel: Support Architectural
# PerfMon Extension leaf"): writable when CPUID.23H.0:EBX enumerates them.
EVTSEL_EQ = 1 << 36
EVTSEL_UMASK2 = 0xFF << 40
EVTSEL_RESERVED = 0xFFFF_FFFF_0020_0000  # 63:32 and AnyThread (bit 21), KVM's start value

# CPUID leaf 0x23 (ARCH_PERFMON_EXT_LEAF). Subleaf 0 EAX: valid subleaves, bit 1 = subleaf 1
# (ARCH_PERFMON_NUM_COUNTER_LEAF = BIT(1), fixed in Linux 47a973fd7563 "perf/x86/intel: Fix
# ARCH_PERFMON_NUM_COUNTER_LEAF"); subleaf 0 EBX: ARCH_PERFMON_EXT_UMASK2 bit 0,
# ARCH_PERFMON_EXT_EQ bit 1; subleaf 1 EAX/EBX: GP/fixed counter bitmaps, which
# update_pmu_cap() (arch/x86/events/intel/core.c) takes as cntr_mask64/fixed_cntr_mask64.
EXT_LEAF = 0x23
EXT_SUBLEAVES = 0b11  # subleaf 0 and subleaf 1 (the counter bitmaps)
EXT_UMASK2 = 1 << 0
EXT_EQ = 1 << 1
ARCH_PERFMON_EXT = 1 << 8  # CPUID.(7,1):EAX[8], X86_FEATURE_ARCH_PERFMON_EXT

# IA32_FIXED_CTR_CTRL, 4-bit field per counter
FIXED_OS = 1
FIXED_USR = 2
FIXED_ANY = 4
FIXED_PMI = 8
FIXED_FIELD_WRITABLE = FIXED_OS | FIXED_USR | FIXED_PMI  # AnyThread always reserved

# IA32_PERF_GLOBAL_STATUS
STATUS_OVF_BUFFER = 1 << 62
STATUS_COND_CHGD = 1 << 63
FIXED_SHIFT = 32

# IA32_PERF_CAPABILITIES
PERF_CAP_FW_WRITES = 1 << 13
PERF_CAP_PERF_METRICS = 1 << 15

# IA32_DEBUGCTL
DEBUGCTL_LBR = 1 << 0
DEBUGCTL_BTF = 1 << 1
DEBUGCTL_BUS_LOCK_DETECT = 1 << 2
DEBUGCTL_FREEZE_LBRS_ON_PMI = 1 << 11
DEBUGCTL_FREEZE_PERFMON_ON_PMI = 1 << 12
DEBUGCTL_RTM_DEBUG = 1 << 15

# RDPMC ECX
RDPMC_FIXED = 1 << 30
RDPMC_METRICS = 1 << 29
RDPMC_INDEX_MASK = 0xFFFF

# Architectural events: CPUID.0AH:EBX bit -> (event select, umask), spec/intel.md §6,
# named as perf names them. perf's generic names are Linux's intel_perfmon_event_map
# (arch/x86/events/intel/core.c, read at 4383cfa18c5b): cycles 0x003c, instructions
# 0x00c0, cache-references 0x4f2e, cache-misses 0x412e, branches 0x00c4,
# branch-misses 0x00c5, bus-cycles 0x013c and ref-cycles 0x0300, the pseudo-encoding
# of fixed counter 2 (FIXED_EVENT_CONSTRAINT(0x0300, 2): it counts nowhere else).
# So architectural event 2 (0x3C/0x01, "UnHalted Reference Cycles") is perf's
# bus-cycles, and perf's ref-cycles is REF_TSC. Intel maps no stalled-cycles-*.
ARCH_EVENTS: tuple[tuple[str, int, int], ...] = (
    ("cycles", 0x3C, 0x00),
    ("instructions", 0xC0, 0x00),
    ("bus-cycles", 0x3C, 0x01),
    ("cache-references", 0x2E, 0x4F),
    ("cache-misses", 0x2E, 0x41),
    ("branches", 0xC4, 0x00),
    ("branch-misses", 0xC5, 0x00),
    ("topdown-slots", 0xA4, 0x01),
    ("topdown-backend-bound", 0xA4, 0x02),
    ("topdown-bad-spec", 0x73, 0x00),
    ("topdown-frontend-bound", 0x9C, 0x01),
    ("topdown-retiring", 0xC2, 0x02),
    ("lbr-inserts", 0xE4, 0x01),
)

# What each fixed counter counts, as the encoding KVM presets in its eventsel:
# fixed0 INST_RETIRED.ANY, fixed1 CPU_CLK_UNHALTED.CORE, fixed2 REF_TSC (pseudo
# 0x00/0x03, perf's ref-cycles), fixed3 TOPDOWN.SLOTS (pseudo 0x00/0x04).
FIXED_EVENTS: tuple[tuple[str, int, int], ...] = (
    ("instructions", 0xC0, 0x00),
    ("cycles", 0x3C, 0x00),
    ("ref-cycles", 0x00, 0x03),
    ("topdown-slots", 0x00, 0x04),
)

# perf's cpu PMU format terms (sysfs format/, intel_arch_formats_attr in
# arch/x86/events/intel/core.c) and the attr.config bits the kernel keeps of a raw
# event (X86_RAW_EVENT_MASK: event, umask, edge, inv, cmask; pc is a term but not
# kept). No `any` term: CPUID.0AH:EDX[15] tells the guest AnyThread is deprecated,
# as KVM reports it, and Linux then hides the term; KVM reserves bit 21 anyway.
EVENT_FORMAT: tuple[tuple[str, str], ...] = (
    ("event", "config:0-7"),
    ("umask", "config:8-15"),
    ("edge", "config:18"),
    ("pc", "config:19"),
    ("inv", "config:23"),
    ("cmask", "config:24-31"),
)
RAW_EVENT_MASK = 0xFF84_FFFF
