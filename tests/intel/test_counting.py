"""What counts, overflow, PMIs and LVTPC (spec/intel.md §5, §7, §8, §12; DESIGN.md)."""

from __future__ import annotations

import pytest

from vpmu_core import GuestFault

from .conftest import LVTPC, make

CYCLES_OS_USR_EN = 0x43003C
CYCLES_OS_USR_EN_INT = 0x53003C
INS_OS_USR_EN = 0x4300C0


def test_counter_set_to_minus_period_overflows_after_exactly_period() -> None:
    cpu = make()
    cpu.wrmsr(LVTPC, 0x400)
    cpu.wrmsr(0x4C1, (1 << 48) - 1000)
    cpu.wrmsr(0x186, CYCLES_OS_USR_EN_INT)
    cpu.retire("cycles", 999)
    assert cpu.rdmsr(0x38E) == 0 and cpu.pmis == []
    cpu.retire("cycles", 1)
    assert cpu.rdmsr(0x38E) == 1
    assert len(cpu.pmis) == 1 and cpu.pmis[0].status == 1 and cpu.pmis[0].mode == "nmi"
    assert cpu.rdmsr(0xC1) == 0


def test_pmi_only_with_the_interrupt_bit() -> None:
    cpu = make()
    cpu.wrmsr(LVTPC, 0x400)
    cpu.wrmsr(0x4C1, (1 << 48) - 1)
    cpu.wrmsr(0x186, CYCLES_OS_USR_EN)
    cpu.retire("cycles", 1)
    assert cpu.pmis == [] and cpu.rdmsr(0x38E) == 1
    cpu.wrmsr(0x38F, 0x7_0000_00FF)  # RESET enables only the GP counters globally
    cpu.wrmsr(0x309 + 1, (1 << 48) - 1)
    cpu.wrmsr(0x38D, 0x30)  # fixed1 OS|USR, no PMI bit
    cpu.retire("cycles", 1)
    assert cpu.pmis == [] and cpu.rdmsr(0x38E) == 1 | (1 << 33)
    cpu.wrmsr(0x38D, 0xB0)  # now with the PMI bit
    cpu.wrmsr(0x30A, (1 << 48) - 1)
    cpu.retire("cycles", 1)
    assert len(cpu.pmis) == 1


def test_lvtpc_is_masked_after_a_pmi_until_the_guest_unmasks_it() -> None:
    cpu = make()
    cpu.wrmsr(LVTPC, 0x400)
    cpu.wrmsr(0x186, CYCLES_OS_USR_EN_INT)
    for _ in range(3):
        cpu.wrmsr(0x4C1, (1 << 48) - 10)
        cpu.retire("cycles", 10)
    assert len(cpu.pmis) == 1 and cpu.pmis_dropped == 2
    assert cpu.rdmsr(LVTPC) == 0x10400
    cpu.wrmsr(LVTPC, 0x400)
    cpu.wrmsr(0x4C1, (1 << 48) - 10)
    cpu.retire("cycles", 10)
    assert len(cpu.pmis) == 2


def test_several_overflows_before_entry_coalesce_into_one_pmi() -> None:
    cpu = make()
    cpu.wrmsr(LVTPC, 0x400)
    cpu.wrmsr(0x186, CYCLES_OS_USR_EN_INT)
    cpu.wrmsr(0x187, CYCLES_OS_USR_EN_INT)
    cpu.wrmsr(0x4C1, (1 << 48) - 5)
    cpu.wrmsr(0x4C2, (1 << 48) - 3)
    cpu.retire("cycles", 5)
    assert len(cpu.pmis) == 1 and cpu.pmis[0].status == 0b11


def test_lvtpc_upper_half_faults_and_status_bit_is_read_only(cpu: object) -> None:
    with pytest.raises(GuestFault):
        cpu.wrmsr(LVTPC, 1 << 32)  # type: ignore[attr-defined]
    cpu.wrmsr(LVTPC, 0x1_1FFF)  # type: ignore[attr-defined]
    assert cpu.rdmsr(LVTPC) == 0x1_07FF  # type: ignore[attr-defined]


def test_counts_need_global_and_local_enable_and_matching_cpl() -> None:
    cpu = make()
    cpu.wrmsr(0x186, 0x41003C)  # USR only
    cpu.retire("cycles", 10, cpl=0)
    cpu.retire("cycles", 7, cpl=3)
    assert cpu.rdmsr(0xC1) == 7
    cpu.wrmsr(0x38F, 0xFE)  # global enable of gp0 off
    cpu.retire("cycles", 7, cpl=3)
    assert cpu.rdmsr(0xC1) == 7
    cpu.wrmsr(0x38F, 0xFF)
    cpu.wrmsr(0x186, 0x03003C)  # OS|USR but EN clear
    cpu.retire("cycles", 7, cpl=3)
    assert cpu.rdmsr(0xC1) == 7
    cpu.wrmsr(0x186, 0x42003C)  # OS only
    cpu.retire("cycles", 5, cpl=0)
    cpu.retire("cycles", 5, cpl=3)
    assert cpu.rdmsr(0xC1) == 12


def test_v1_counters_are_always_globally_enabled() -> None:
    cpu = make(version=1, fixed_counters=0, gp_counters=2)
    cpu.wrmsr(0x186, CYCLES_OS_USR_EN)
    cpu.retire("cycles", 42)
    assert cpu.rdmsr(0xC1) == 42


def test_guest_msr_accesses_retire_one_instruction_each() -> None:
    cpu = make()
    cpu.wrmsr(0x186, INS_OS_USR_EN)  # the enabling WRMSR counts itself
    assert cpu.rdmsr(0xC1) == 1  # the RDMSR retires after it read
    assert cpu.rdpmc(0) == 2
    assert cpu.rdmsr(0xC1) == 3
    cpu.wrmsr(0x186, 0)  # the disabling WRMSR does not count
    assert cpu.rdmsr(0xC1) == 4
    cpu.wrmsr(0x38D, 0x3)  # fixed0 (instructions), OS|USR: not globally enabled at RESET
    cpu.retire("instructions", 10)
    assert cpu.rdmsr(0x309) == 0
    cpu.wrmsr(0x38F, 1 << 32)  # enables fixed0 and counts itself
    cpu.retire("instructions", 10)
    assert cpu.rdmsr(0x309) == 11


def test_faulting_accesses_retire_nothing() -> None:
    cpu = make()
    cpu.wrmsr(0x186, INS_OS_USR_EN)
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x186, 1 << 40)
    with pytest.raises(GuestFault):
        cpu.rdpmc(1 << 31)
    assert cpu.rdpmc(0) == 1


def test_rdpmc_encoding() -> None:
    cpu = make()
    cpu.wrmsr(0x4C3, 0x1234_5678_9ABC)
    cpu.wrmsr(0x30B, 0xFEDC_BA98_7654)
    assert cpu.rdpmc(2) == 0x1234_5678_9ABC  # full width, not 32 bits
    assert cpu.rdpmc((1 << 30) | 2) == 0xFEDC_BA98_7654
    for bad in (8, (1 << 30) | 3, 1 << 31, (1 << 31) | 2, 1 << 29, 1 << 16, 0x20000 | 1):
        with pytest.raises(GuestFault):
            cpu.rdpmc(bad)
    with pytest.raises(GuestFault):
        make(version=0, gp_counters=0, fixed_counters=0).rdpmc(0)


def test_rdpmc_privilege() -> None:
    cpu = make()
    cpu.cpl = 3
    with pytest.raises(GuestFault):
        cpu.rdpmc(0)
    cpu.cr4_pce = True
    assert cpu.rdpmc(0) == 0


def test_legacy_freeze_lbrs_on_pmi_for_v2_and_v3() -> None:
    for version, frozen in ((2, True), (3, True), (4, False)):
        cpu = make(version=version, lbr=True)
        cpu.wrmsr(LVTPC, 0x400)
        cpu.wrmsr(0x1D9, (1 << 11) | 1)
        cpu.wrmsr(0x4C1, (1 << 48) - 1)
        cpu.wrmsr(0x186, CYCLES_OS_USR_EN_INT)
        cpu.retire("cycles", 1)
        assert cpu.rdmsr(0x1D9) == (1 << 11) | (0 if frozen else 1)


def test_retire_rejects_unknown_events_and_negative_counts(cpu: object) -> None:
    with pytest.raises(ValueError, match="unknown event"):
        cpu.retire("no-such-event", 1)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        cpu.retire("cycles", -1)  # type: ignore[attr-defined]
    cpu.wrmsr(0x186, 0x4301C4)  # type: ignore[attr-defined]  # event 0xC4 umask 0x01
    cpu.retire((0xC4, 0x01), 9)  # type: ignore[attr-defined]
    cpu.retire("branches", 4)  # type: ignore[attr-defined]  # 0xC4/0x00: another umask
    assert cpu.rdmsr(0xC1) == 9  # type: ignore[attr-defined]


def test_v1_guest_driver_re_enables_what_disable_all_stopped() -> None:
    """Linux's v1 enable_all sets EN again on each active counter (no GLOBAL_CTRL)."""
    cpu = make(version=1, fixed_counters=0, gp_counters=2)
    drv = cpu.machine.guest_driver(cpu)
    assert cpu.machine.guest_driver(cpu) is drv  # one driver per vCPU
    drv.program_gp(0, (0x3C, 0x00), usr=True, os=True)
    drv.program_gp(1, (0xC4, 0x00), usr=True, os=True)
    drv.stop_gp(1, (0xC4, 0x00), usr=True, os=True)  # inactive: must stay off
    drv.disable_all()
    cpu.retire("cycles", 10)
    assert cpu.rdmsr(0xC1) == 0
    drv.enable_all()
    cpu.retire("cycles", 10)
    cpu.retire("branches", 10)
    assert (cpu.rdmsr(0xC1), cpu.rdmsr(0xC2)) == (10, 0)
    assert cpu.rdmsr(0x186) == 0x43003C and cpu.rdmsr(0x187) == 0x03 << 16 | 0xC4
