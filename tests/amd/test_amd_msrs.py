"""AMD MSR map and write semantics (spec/amd-and-topdown.md §1-3), one test per rule."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import amd
from helpers import (
    ALL_ONES,
    CTR0,
    CYCLES,
    EN,
    GLOBAL_CTL,
    GLOBAL_STATUS,
    GUESTONLY,
    HOSTONLY,
    INT,
    K7_CTL0,
    K7_CTR0,
    MASK48,
    OS,
    RESERVED,
    STATUS_CLR,
    STATUS_SET,
    USR,
    arm,
    ctl,
    ctr,
    sel,
)
from recorder import ReprogramRecorder

import vpmu_core as vpmu

GENERATIONS = ("legacy", "core-ext", "perfmon-v2")


def cpu_of(make_machine: Any, **pmu: Any) -> Any:
    return make_machine(amd(**pmu)).vcpus[0]


# ------------------------------------------------------------------ aliasing
@pytest.mark.parametrize("generation", ["core-ext", "perfmon-v2"])
def test_k7_counter_msrs_alias_the_first_four_core_counters(
    make_machine: Any, generation: str
) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    cpu.wrmsr(0xC0010004, 0x1234_5678_9ABC)
    assert cpu.rdmsr(0xC0010201) == 0x1234_5678_9ABC
    for i in range(4):
        cpu.wrmsr(ctr(i), 0x1000 + i)
        assert cpu.rdmsr(K7_CTR0 + i) == 0x1000 + i
        cpu.wrmsr(K7_CTR0 + i, 0x2000 + i)
        assert cpu.rdmsr(ctr(i)) == 0x2000 + i


@pytest.mark.parametrize("generation", ["core-ext", "perfmon-v2"])
def test_k7_eventsel_msrs_alias_the_first_four_core_controls(
    make_machine: Any, generation: str
) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    cpu.wrmsr(0xC0010000, 0x530076)
    assert cpu.rdmsr(0xC0010200) == 0x530076
    cpu.wrmsr(0xC0010206, 0x1_0053_00C2)
    assert cpu.rdmsr(0xC0010003) == 0x1_0053_00C2
    # Counters 4 and 5 have no K7 alias; 0xC0010008 is not a PMU MSR.
    with pytest.raises(vpmu.GuestFault):
        cpu.rdmsr(0xC0010008)


def test_an_alias_write_and_a_core_write_drive_one_counter(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="core-ext")
    cpu.wrmsr(K7_CTL0 + 1, sel(CYCLES))
    cpu.retire("cycles", 10)
    assert cpu.rdmsr(ctr(1)) == 10
    cpu.wrmsr(ctl(1), 0)  # disable through the other window
    cpu.retire("cycles", 10)
    assert cpu.rdmsr(K7_CTR0 + 1) == 10


# ---------------------------------------------------------- which MSRs exist
def test_legacy_has_only_the_k7_window(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="legacy")
    for i in range(4):
        cpu.wrmsr(K7_CTL0 + i, 0)
        cpu.wrmsr(K7_CTR0 + i, 0)
    for msr in (0xC0010200, 0xC0010201, 0xC001020B):
        with pytest.raises(vpmu.GuestFault):
            cpu.rdmsr(msr)
        with pytest.raises(vpmu.GuestFault):
            cpu.wrmsr(msr, 0)


@pytest.mark.parametrize("generation", ["legacy", "core-ext"])
@pytest.mark.parametrize("msr", [GLOBAL_STATUS, GLOBAL_CTL, STATUS_CLR, STATUS_SET])
def test_perfmon_v2_msrs_fault_without_perfmon_v2(
    make_machine: Any, generation: str, msr: int
) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    with pytest.raises(vpmu.GuestFault) as exc:
        cpu.rdmsr(msr)
    assert exc.value.vector == 13
    with pytest.raises(vpmu.GuestFault):
        cpu.wrmsr(msr, 0)


@pytest.mark.parametrize(
    ("generation", "n"), [("core-ext", 6), ("perfmon-v2", 4), ("perfmon-v2", 5)]
)
def test_core_msrs_past_the_last_counter_fault(make_machine: Any, generation: str, n: int) -> None:
    cpu = cpu_of(make_machine, generation=generation, gp_counters=n)
    for i in range(n):
        cpu.wrmsr(ctl(i), 0)
        cpu.wrmsr(ctr(i), 0)
    for i in range(n, 8):
        for msr in (ctl(i), ctr(i)):
            with pytest.raises(vpmu.GuestFault):
                cpu.wrmsr(msr, 0)
            with pytest.raises(vpmu.GuestFault):
                cpu.rdmsr(msr)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_p6_msrs_read_zero_and_drop_writes(make_machine: Any, generation: str) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    for msr in (0xC1, 0xC2, 0x186, 0x187):
        cpu.wrmsr(msr, 0x530076)
        assert cpu.rdmsr(msr) == 0


# ----------------------------------------------------------------- PERF_CTL
@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize(
    "value",
    [
        ALL_ONES,
        0xFFFFFCF000280000,  # Like Xu's Milan probe (§2.2)
        0x0000020000130026,  # a Linux guest setting HostOnly (§8.2)
        HOSTONLY | GUESTONLY | EN | OS | CYCLES,
        1 << 19,
        1 << 21,
        0xF_0000_0000 | 0xFF_FFFF,
    ],
)
def test_reserved_eventsel_bits_are_cleared_never_gp(
    make_machine: Any, generation: str, value: int
) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    for msr in (K7_CTL0, K7_CTL0 + 3):
        cpu.wrmsr(msr, value)
        assert cpu.rdmsr(msr) == value & ~RESERVED
    if generation != "legacy":
        cpu.wrmsr(ctl(1), value)
        assert cpu.rdmsr(ctl(1)) == value & ~RESERVED


def test_hostonly_guestonly_are_stripped_and_the_counter_still_counts(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="core-ext")
    cpu.wrmsr(ctl(0), sel(CYCLES) | HOSTONLY | GUESTONLY)
    assert cpu.rdmsr(ctl(0)) == sel(CYCLES)
    cpu.retire("cycles", 77)
    assert cpu.rdpmc(0) == 77


def test_reprogram_only_when_the_masked_value_changes(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="core-ext")
    rec = ReprogramRecorder(cpu.allocator)
    cpu.allocator = rec
    cpu.wrmsr(ctl(2), sel(CYCLES))
    assert rec.calls == [2]
    cpu.wrmsr(ctl(2), sel(CYCLES) | HOSTONLY | (1 << 19))  # same once masked
    cpu.wrmsr(K7_CTL0 + 2, sel(CYCLES))  # same value through the alias
    assert rec.calls == [2]
    cpu.wrmsr(ctl(2), sel(CYCLES) | INT)
    assert rec.calls == [2, 2]


# ---------------------------------------------------------------- PERF_CTR
@pytest.mark.parametrize("generation", GENERATIONS)
def test_counter_writes_keep_48_bits_without_sign_extension(
    make_machine: Any, generation: str
) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    msrs = [K7_CTR0 + 2] + ([ctr(2)] if generation != "legacy" else [])
    for msr in msrs:
        cpu.wrmsr(msr, 0x8000_0000)
        assert cpu.rdmsr(msr) == 0x8000_0000
        assert cpu.rdpmc(2) == 0x8000_0000
        cpu.wrmsr(msr, (1 << 48) | 5)
        assert cpu.rdmsr(msr) == 5
        cpu.wrmsr(msr, ALL_ONES)
        assert cpu.rdmsr(msr) == MASK48
        cpu.wrmsr(msr, 0xFFFF_8000_0000_0001)
        assert cpu.rdmsr(msr) == 0x8000_0000_0001


def test_counters_are_48_bits_wide(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="core-ext")
    cpu.wrmsr(ctr(0), MASK48 - 2)
    cpu.wrmsr(ctl(0), sel(CYCLES))
    cpu.retire("cycles", 3)
    assert cpu.rdmsr(ctr(0)) == 0
    cpu.retire("cycles", 4)
    assert cpu.rdmsr(ctr(0)) == 4


# ---------------------------------------------------------- PerfMonV2 globals
@pytest.mark.parametrize("n", [4, 5, 6])
def test_global_ctl_drops_bits_past_the_last_counter(make_machine: Any, n: int) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2", gp_counters=n)
    cpu.wrmsr(GLOBAL_CTL, ALL_ONES)
    assert cpu.rdmsr(GLOBAL_CTL) == (1 << n) - 1
    cpu.wrmsr(GLOBAL_CTL, 1 << n | 1 << 63 | 0b10)
    assert cpu.rdmsr(GLOBAL_CTL) == 0b10


def test_counting_needs_en_and_the_global_ctl_bit(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2")
    cpu.wrmsr(GLOBAL_CTL, 0)
    cpu.wrmsr(ctl(3), sel(CYCLES))
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(3) == 0
    cpu.wrmsr(GLOBAL_CTL, 1 << 3)
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(3) == 5
    cpu.wrmsr(ctl(3), sel(CYCLES, bits=USR | OS))  # EN clear, global bit set
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(3) == 5


@pytest.mark.parametrize("generation", ["legacy", "core-ext"])
def test_v1_counts_on_en_alone(make_machine: Any, generation: str) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    cpu.wrmsr(K7_CTL0 + 3, sel(CYCLES))
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(3) == 5


def test_global_status_is_read_only_to_the_guest(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2")
    cpu.wrmsr(GLOBAL_STATUS, ALL_ONES)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0
    arm(cpu, 1, 10, sel(CYCLES))
    cpu.retire("cycles", 10)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0b10
    cpu.wrmsr(GLOBAL_STATUS, 0)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0b10


def test_status_set_and_clr_act_on_status_and_read_zero(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2", gp_counters=6)
    cpu.wrmsr(STATUS_SET, ALL_ONES)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0x3F  # reserved bits not set
    assert cpu.rdmsr(STATUS_SET) == 0
    cpu.wrmsr(STATUS_CLR, 0b101)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0x3A
    assert cpu.rdmsr(STATUS_CLR) == 0
    cpu.wrmsr(STATUS_SET, 0b1)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0x3B
    cpu.wrmsr(STATUS_CLR, ALL_ONES)  # what Linux writes; no reserved-bit #GP
    assert cpu.rdmsr(GLOBAL_STATUS) == 0


def test_host_may_restore_global_status_but_not_reserved_bits(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2", gp_counters=6)
    cpu.host_wrmsr(GLOBAL_STATUS, 0x21)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0x21
    with pytest.raises(vpmu.GuestFault):
        cpu.host_wrmsr(GLOBAL_STATUS, 1 << 6)


# -------------------------------------------------------------------- RDPMC
@pytest.mark.parametrize(
    ("generation", "n"), [("legacy", 4), ("core-ext", 6), ("perfmon-v2", 5), ("perfmon-v2", 6)]
)
def test_rdpmc_index_must_be_below_the_counter_count(
    make_machine: Any, generation: str, n: int
) -> None:
    cpu = cpu_of(make_machine, generation=generation, gp_counters=n)
    for i in range(n):
        assert cpu.rdpmc(i) == 0
    cpu.wrmsr(K7_CTR0 + 1, 0xABCD_0000_1234)
    assert cpu.rdpmc(1) == 0xABCD_0000_1234
    for ecx in (n, n + 1, 1 << 30, (1 << 30) | 1, 1 << 31, 0xFFFFFFFF):
        with pytest.raises(vpmu.GuestFault):
            cpu.rdpmc(ecx)


def test_counter_msr_base_is_one_past_its_control(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="core-ext")
    cpu.wrmsr(CTR0 + 2 * 5, 42)
    assert cpu.rdpmc(5) == 42
