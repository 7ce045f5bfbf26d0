"""Which MSRs exist for which configuration (spec/intel.md §1, §4, §6, §12)."""

from __future__ import annotations

import pytest

from vpmu_core import GuestFault

from .conftest import make


def exists(cpu: object, msr: int) -> bool:
    try:
        cpu.rdmsr(msr)  # type: ignore[attr-defined]
    except GuestFault:
        return False
    return True


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_v2_plus_has_the_global_msrs(version: int) -> None:
    cpu = make(version=version)
    for msr in (0x38D, 0x38E, 0x38F, 0x390, 0x309, 0x30A, 0x30B):
        assert exists(cpu, msr), hex(msr)
    assert not exists(cpu, 0x30C)  # 3 fixed counters: no FIXED_CTR3
    assert not exists(cpu, 0x392)  # GLOBAL_INUSE is never emulated
    assert exists(cpu, 0x391) == (version >= 4)


def test_kvm_quirk_drops_status_set_on_v4() -> None:
    assert not exists(make(version=4, quirks=["kvm-no-status-set"]), 0x391)


def test_v1_has_no_global_or_fixed_msrs() -> None:
    cpu = make(version=1, fixed_counters=0, gp_counters=4)
    for msr in (0x38D, 0x38E, 0x38F, 0x390, 0x391, 0x309):
        assert not exists(cpu, msr), hex(msr)
    assert exists(cpu, 0xC1) and exists(cpu, 0x189) and exists(cpu, 0xC4)
    assert not exists(cpu, 0xC5)  # fifth counter: not there, and not a quirk MSR


def test_counter_msrs_stop_at_nr_gp() -> None:
    cpu = make(gp_counters=3)
    assert exists(cpu, 0xC3) and exists(cpu, 0x188) and exists(cpu, 0x4C3)
    assert not exists(cpu, 0xC4) and not exists(cpu, 0x189) and not exists(cpu, 0x4C4)


def test_full_width_aliases_only_with_perf_capabilities_bit_13() -> None:
    assert exists(make(full_width_writes=True), 0x4C1)
    cpu = make(full_width_writes=False)
    assert not exists(cpu, 0x4C1)
    assert cpu.rdmsr(0x345) & (1 << 13) == 0
    assert make().rdmsr(0x345) & (1 << 13)


def test_perf_capabilities_is_read_only_and_needs_pdcm() -> None:
    cpu = make()
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x345, cpu.rdmsr(0x345))
    cpu = make(pdcm=False, full_width_writes=False)
    assert not exists(cpu, 0x345)
    assert cpu.cpuid(1)[2] & (1 << 15) == 0


def test_p6_quirk_msrs_drop_writes_and_read_zero_when_unbacked() -> None:
    cpu = make(gp_counters=1)
    cpu.wrmsr(0xC2, 0x1234)
    cpu.wrmsr(0x187, 0x4300C0)
    assert cpu.rdmsr(0xC2) == 0 and cpu.rdmsr(0x187) == 0
    cpu.wrmsr(0xC1, 0x1234)  # backed: a real counter
    assert cpu.rdmsr(0xC1) == 0x1234
    v0 = make(version=0, gp_counters=0, fixed_counters=0)
    for msr in (0xC1, 0xC2, 0x186, 0x187, 0xC0010000, 0xC0010007):
        v0.wrmsr(msr, 0xFFFF)
        assert v0.rdmsr(msr) == 0
    assert not exists(v0, 0xC3) and not exists(v0, 0x188)


def test_cpuid_leaf_0xa_is_generated_from_the_config() -> None:
    cpu = make(version=2, gp_counters=8, fixed_counters=3, gp_width=48, fixed_width=40)
    eax, ebx, ecx, edx = cpu.cpuid(0xA)
    assert eax == 2 | (8 << 8) | (48 << 16) | (13 << 24)
    assert ebx == 0 and ecx == 0
    assert edx == 3 | (40 << 5) | (1 << 15)
    eax, ebx, _, edx = make(
        version=1, fixed_counters=0, gp_counters=4, events_unavailable=0b101, events_mask_len=7
    ).cpuid(0xA)
    assert eax == 1 | (4 << 8) | (48 << 16) | (7 << 24)
    assert ebx == 0b101
    assert edx == 1 << 15
    assert make().cpuid(0)[1:] == (0x756E6547, 0x6C65746E, 0x49656E69)  # "GenuineIntel"
