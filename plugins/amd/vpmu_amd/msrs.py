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

# Events, as (12-bit event select, umask). The core events are Linux's AMD generic
# event map (arch/x86/events/amd/core.c, amd_perfmon_event_map). LLC events are left
# out on purpose: on Zen the L3 is counted by the L3 PMU, which KVM does not
# virtualize (§1.1, §8 item 10), so no core counter counts "llc-*" faithfully.
EVENTS: tuple[tuple[str, int, int], ...] = (
    ("cycles", 0x76, 0x00),
    ("instructions", 0xC0, 0x00),
    ("branches", 0xC2, 0x00),
    ("branch-misses", 0xC3, 0x00),
)
