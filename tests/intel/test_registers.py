"""Reserved bits, #GP cases, widths and write semantics (spec/intel.md §2-5)."""

from __future__ import annotations

import pytest

from vpmu_core import GuestFault

from .conftest import make

EVTSEL_RESERVED = 0xFFFF_FFFF_0020_0000


@pytest.mark.parametrize("bit", [b for b in range(64) if EVTSEL_RESERVED >> b & 1])
def test_each_reserved_eventsel_bit_faults(cpu: object, bit: int) -> None:
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x186, 1 << bit)  # type: ignore[attr-defined]


def test_every_writable_eventsel_bit_is_stored(cpu: object) -> None:
    value = 0xFFFF_FFFF & ~(1 << 21)
    cpu.wrmsr(0x187, value)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0x187) == value  # type: ignore[attr-defined]


def test_tsx_opens_in_tx_everywhere_and_in_txcp_only_on_pmc2() -> None:
    cpu = make(tsx=True)
    cpu.wrmsr(0x186, 1 << 32)
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x186, 1 << 33)
    cpu.wrmsr(0x188, (1 << 33) | (1 << 32))
    assert cpu.rdmsr(0x188) == (1 << 33) | (1 << 32)
    with pytest.raises(GuestFault):
        make().wrmsr(0x186, 1 << 32)


def test_pebs_baseline_opens_adaptive_bits() -> None:
    cpu = make(pebs_baseline=True)
    cpu.wrmsr(0x186, 1 << 34)
    cpu.wrmsr(0x38D, 1 << 36)
    with pytest.raises(GuestFault):
        make().wrmsr(0x186, 1 << 34)
    with pytest.raises(GuestFault):
        make().wrmsr(0x38D, 1 << 32)


@pytest.mark.parametrize("field", [0, 1, 2])
def test_fixed_ctrl_anythread_always_faults(cpu: object, field: int) -> None:
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x38D, 0x4 << (4 * field))  # type: ignore[attr-defined]


def test_fixed_ctrl_writable_bits_and_fields_beyond_nr_fixed(cpu: object) -> None:
    cpu.wrmsr(0x38D, 0xBBB)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0x38D) == 0xBBB  # type: ignore[attr-defined]
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x38D, 0x1000)  # type: ignore[attr-defined]  # field 3 does not exist


def test_global_ctrl_reserved_bits(cpu: object) -> None:
    cpu.wrmsr(0x38F, 0x7_0000_00FF)  # type: ignore[attr-defined]
    for bad in (1 << 8, 1 << 35, 1 << 48, 1 << 63):
        with pytest.raises(GuestFault):
            cpu.wrmsr(0x38F, bad)  # type: ignore[attr-defined]


def test_post_reset_global_ctrl_enables_the_gp_counters() -> None:
    assert make(gp_counters=8).rdmsr(0x38F) == 0xFF
    assert make(gp_counters=5, version=5).rdmsr(0x38F) == 0x1F
    cpu = make(gp_counters=3)
    cpu.wrmsr(0x38F, 0)
    cpu.reset()
    assert cpu.rdmsr(0x38F) == 0x7


def test_global_status_is_read_only_to_the_guest(cpu: object) -> None:
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x38E, 0)  # type: ignore[attr-defined]


def test_host_writes_global_status_within_its_mask(cpu: object) -> None:
    cpu.host_wrmsr(0x38E, (1 << 63) | (1 << 62) | (1 << 33) | 1)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0x38E) == (1 << 63) | (1 << 62) | (1 << 33) | 1  # type: ignore[attr-defined]
    with pytest.raises(GuestFault):
        cpu.host_wrmsr(0x38E, 1 << 8)  # type: ignore[attr-defined]


def test_ovf_ctrl_clears_written_bits_and_reads_zero(cpu: object) -> None:
    cpu.host_wrmsr(0x38E, 0b1011 | (1 << 32))  # type: ignore[attr-defined]
    cpu.wrmsr(0x390, 0b0011)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0x38E) == 0b1000 | (1 << 32)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0x390) == 0  # type: ignore[attr-defined]
    cpu.wrmsr(0x390, (1 << 63) | (1 << 62))  # type: ignore[attr-defined]
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x390, 1 << 48)  # type: ignore[attr-defined]
    cpu.host_wrmsr(0x390, 0b1000)  # type: ignore[attr-defined]  # accepted, no effect
    assert cpu.rdmsr(0x38E) == 0b1000 | (1 << 32)  # type: ignore[attr-defined]


def test_status_set_sets_bits_on_v4() -> None:
    cpu = make(version=4)
    cpu.wrmsr(0x391, 0b101 | (1 << 34))
    assert cpu.rdmsr(0x38E) == 0b101 | (1 << 34)
    assert cpu.rdmsr(0x391) == 0
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x391, 1 << 40)


def test_legacy_counter_write_sign_extends_from_bit_31(cpu: object) -> None:
    cpu.wrmsr(0xC1, 0x8000_0000)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0xC1) == 0xFFFF_8000_0000  # type: ignore[attr-defined]
    cpu.wrmsr(0xC1, 0xABCD_0000_7FFF_FFFF)  # type: ignore[attr-defined]  # 63:32 ignored
    assert cpu.rdmsr(0xC1) == 0x7FFF_FFFF  # type: ignore[attr-defined]
    assert cpu.rdmsr(0x4C1) == 0x7FFF_FFFF  # type: ignore[attr-defined]  # same counter


def test_host_legacy_write_is_not_sign_extended(cpu: object) -> None:
    cpu.host_wrmsr(0xC1, 0x8000_0000)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0xC1) == 0x8000_0000  # type: ignore[attr-defined]


def test_full_width_write_over_the_width_faults(cpu: object) -> None:
    cpu.wrmsr(0x4C1, (1 << 48) - 1)  # type: ignore[attr-defined]
    assert cpu.rdmsr(0xC1) == (1 << 48) - 1  # type: ignore[attr-defined]
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x4C1, 1 << 48)  # type: ignore[attr-defined]
    with pytest.raises(GuestFault):
        cpu.host_wrmsr(0x4C1, 1 << 48)  # type: ignore[attr-defined]


def test_fixed_counter_writes_are_masked_not_checked() -> None:
    cpu = make(fixed_width=40)
    cpu.wrmsr(0x309, (1 << 64) - 1)
    assert cpu.rdmsr(0x309) == (1 << 40) - 1


def test_counter_reads_are_masked_to_width() -> None:
    cpu = make(gp_width=32, full_width_writes=False)
    cpu.wrmsr(0xC1, 0xFFFF_FFFF_FFFF_FFFF)
    assert cpu.rdmsr(0xC1) == 0xFFFF_FFFF


def test_debugctl_rules() -> None:
    cpu = make()
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x1D9, 1 << 12)  # Freeze_PerfMon_On_PMI is never emulated
    cpu.wrmsr(0x1D9, 0b11)  # LBR/BTF without guest LBRs: silently dropped
    assert cpu.rdmsr(0x1D9) == 0
    with pytest.raises(GuestFault):
        cpu.wrmsr(0x1D9, 1 << 11)
    lbr = make(lbr=True)
    lbr.wrmsr(0x1D9, (1 << 11) | 1)
    assert lbr.rdmsr(0x1D9) == (1 << 11) | 1
