"""Constants and guest routines shared by the AMD tests: values from the spec, not the code."""

from __future__ import annotations

from typing import Any

K7_CTL0 = 0xC0010000
K7_CTR0 = 0xC0010004
CTL0 = 0xC0010200
CTR0 = 0xC0010201
GLOBAL_STATUS = 0xC0000300
GLOBAL_CTL = 0xC0000301
STATUS_CLR = 0xC0000302
STATUS_SET = 0xC0000303
LVTPC = 0x834
LVTPC_NMI = 0x400
LVT_MASKED = 1 << 16

USR = 1 << 16
OS = 1 << 17
INT = 1 << 20
EN = 1 << 22
HOSTONLY = 1 << 41
GUESTONLY = 1 << 40
RESERVED = 0xFFFFFFF000280000
MASK48 = (1 << 48) - 1
ALL_ONES = (1 << 64) - 1

CYCLES = 0x76
INSTRUCTIONS = 0xC0


def ctl(i: int) -> int:
    return CTL0 + 2 * i


def ctr(i: int) -> int:
    return CTR0 + 2 * i


def sel(event: int, umask: int = 0, bits: int = EN | USR | OS) -> int:
    """A PERF_CTL value for a 12-bit event select."""
    return (event & 0xFF) | ((event & 0xF00) << 24) | (umask << 8) | bits


def arm(cpu: Any, i: int, period: int, control: int, *, k7: bool = False) -> None:
    """Linux's x86_perf_event_set_period + enable: counter = -period, then PERF_CTL."""
    cpu.wrmsr((K7_CTR0 + i) if k7 else ctr(i), (-period) & MASK48)
    cpu.wrmsr((K7_CTL0 + i) if k7 else ctl(i), control)


def v2_pmi_handler(cpu: Any, i: int, period: int, nr: int) -> None:
    """amd_pmu_v2_handle_irq's accesses for one overflowed counter: no LVTPC write."""
    cpu.wrmsr(GLOBAL_CTL, 0)
    status = cpu.rdmsr(GLOBAL_STATUS)
    cpu.rdpmc(i)
    if status & (1 << i):
        cpu.wrmsr(ctr(i), (-period) & MASK48)
    cpu.wrmsr(STATUS_CLR, ALL_ONES)
    cpu.wrmsr(GLOBAL_CTL, (1 << nr) - 1)


def v1_pmi_handler(cpu: Any, i: int, period: int) -> None:
    """x86_pmu_handle_irq's accesses: LVTPC first, then the overflowed counter's reload."""
    cpu.wrmsr(LVTPC, LVTPC_NMI)
    value = cpu.rdpmc(i)
    if not value & (1 << 47):
        cpu.wrmsr(K7_CTR0 + i, (-period) & MASK48)
