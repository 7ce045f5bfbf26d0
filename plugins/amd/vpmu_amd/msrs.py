"""AMD core PMU register map and bit layouts (spec/amd-and-topdown.md §1-2)."""

from __future__ import annotations

# Legacy K7 MSRs: 4 counters, stride 1 (MSR_K7_EVNTSEL0 / MSR_K7_PERFCTR0).
K7_EVNTSEL0 = 0xC0010000
K7_PERFCTR0 = 0xC0010004
# Core extension: CTLn at 0xC0010200 + 2n, CTRn right after it (MSR_F15H_PERF_CTL0/CTR0).
F15H_PERF_CTL0 = 0xC0010200
F15H_PERF_CTR0 = 0xC0010201
# PerfMonV2 global registers.
GLOBAL_STATUS = 0xC0000300
GLOBAL_CTL = 0xC0000301
GLOBAL_STATUS_CLR = 0xC0000302
GLOBAL_STATUS_SET = 0xC0000303

# PERF_CTL
EVTSEL_USR = 1 << 16
EVTSEL_OS = 1 << 17
EVTSEL_EDGE = 1 << 18
EVTSEL_INT = 1 << 20
EVTSEL_EN = 1 << 22
EVTSEL_INV = 1 << 23
EVTSEL_GUESTONLY = 1 << 40
EVTSEL_HOSTONLY = 1 << 41
# KVM's reserved_bits: 19, 21 and 36..63 (HostOnly/GuestOnly included), cleared on write (§2.2).
EVTSEL_RESERVED = 0xFFFF_FFF0_0028_0000
# Event select bits 7:0 and 35:32 (AMD64_EVENTSEL_EVENT).
EVENT_SELECT_MASK = 0xF_0000_00FF


def event_select(ctl: int) -> int:
    """The 12-bit EventSelect of a PERF_CTL: bits 7:0, and 11:8 from bits 35:32 (APM vol. 2)."""
    return (ctl & 0xFF) | ((ctl >> 24) & 0xF00)


COUNTER_WIDTH = 48

# CPUID
EXT_MAX_LEAF = 0x80000022
PERFCTR_CORE = 1 << 23  # CPUID 0x80000001 ECX
PERFMON_V2 = 1 << 0  # CPUID 0x80000022 EAX

# perf's generic events on AMD, as (name, 12-bit event select, umask), one table per
# event map Linux picks by CPU family (amd_pmu_event_map in arch/x86/events/amd/core.c):
# "k7" is amd_perfmon_event_map (K7 to family 16h) and "zen1" amd_f17h_perfmon_event_map,
# both read at 03c601927b67; "zen2" (Zen 2 and 3: stalled-cycles-frontend is PMCx0A9,
# no backend event) and the rename of f17h to zen1 are c7b2edd8377b ("perf/x86/amd/core:
# Update and fix stalled-cycles-* events for Zen 2 and later"); "zen4" (Zen 4 and
# family 1Ah) adds ref-cycles = PMCx120 umask 1, config 0x100000120, in 68cdf1e6e8f2 ("Define a
# proper ref-cycles event for Zen 4 and later"). AMD maps no bus-cycles. On Zen,
# cache-references/-misses are L2 events (0xff60, 0x0964) a core counter counts.
_COMMON: tuple[tuple[str, int, int], ...] = (
    ("cycles", 0x76, 0x00),
    ("instructions", 0xC0, 0x00),
    ("branches", 0xC2, 0x00),
    ("branch-misses", 0xC3, 0x00),
)
_ZEN_CACHE: tuple[tuple[str, int, int], ...] = (
    ("cache-references", 0x60, 0xFF),
    ("cache-misses", 0x64, 0x09),
)
EVENT_MAPS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "k7": (
        *_COMMON,
        ("cache-references", 0x7D, 0x07),
        ("cache-misses", 0x7E, 0x07),
        ("stalled-cycles-frontend", 0xD0, 0x00),
        ("stalled-cycles-backend", 0xD1, 0x00),
    ),
    "zen1": (
        *_COMMON,
        *_ZEN_CACHE,
        ("stalled-cycles-frontend", 0x87, 0x02),
        ("stalled-cycles-backend", 0x87, 0x01),
    ),
    "zen2": (*_COMMON, *_ZEN_CACHE, ("stalled-cycles-frontend", 0xA9, 0x00)),
    "zen4": (
        *_COMMON,
        *_ZEN_CACHE,
        ("stalled-cycles-frontend", 0xA9, 0x00),
        ("ref-cycles", 0x120, 0x01),
    ),
}

# perf's cpu PMU format on AMD (amd_format_attr): the event field is 12 bits, bits
# 7:0 and 35:32; the kernel keeps AMD64_RAW_EVENT_MASK of a raw config
# (X86_RAW_EVENT_MASK plus event bits 35:32).
EVENT_FORMAT: tuple[tuple[str, str], ...] = (
    ("event", "config:0-7,32-35"),
    ("umask", "config:8-15"),
    ("edge", "config:18"),
    ("inv", "config:23"),
    ("cmask", "config:24-31"),
)
RAW_EVENT_MASK = 0xF_FF84_FFFF
