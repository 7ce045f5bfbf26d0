"""The register rules of spec/intel.md §2-5 and §7, for every value a guest can write.

The example tests in test_registers.py pin one value per rule; these check the rule
itself: which values fault, and what a write that does not fault leaves behind.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recorder import ReprogramRecorder

from vpmu_core import GuestFault

from .conftest import make

MASK64 = (1 << 64) - 1
MASK48 = (1 << 48) - 1
EVTSEL_RESERVED = 0xFFFF_FFFF_0020_0000  # §2: 63:32 and AnyThread
FIXED_CTRL_WRITABLE = 0xBBB  # §3: OS, USR, PMI of fixed counters 0-2
GLOBAL_CTRL_WRITABLE = 0xFF | 0x7 << 32  # §4: 8 GP + 3 fixed enables
GLOBAL_STATUS_WRITABLE = GLOBAL_CTRL_WRITABLE | 1 << 62 | 1 << 63  # + OvfBuffer, CondChgd

U64 = st.integers(0, MASK64)

CPU = make()  # v2, 8 GP + 3 fixed, 48-bit, full-width writes: KVM's shape


def sign_extend_32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value & (1 << 31) else value


@pytest.mark.parametrize(
    ("msr", "writable"),
    [
        (0x186, MASK64 & ~EVTSEL_RESERVED),  # PERFEVTSEL0
        (0x18D, MASK64 & ~EVTSEL_RESERVED),  # PERFEVTSEL7
        (0x38D, FIXED_CTRL_WRITABLE),
        (0x38F, GLOBAL_CTRL_WRITABLE),
    ],
)
@given(raw=U64, valid=st.booleans())
def test_control_write_faults_iff_a_reserved_bit_is_set(
    msr: int, writable: int, raw: int, valid: bool
) -> None:
    value = raw & writable if valid else raw
    before = CPU.rdmsr(msr)
    if value & ~writable:
        with pytest.raises(GuestFault):
            CPU.wrmsr(msr, value)
        assert CPU.rdmsr(msr) == before  # a faulting write changes nothing
    else:
        CPU.wrmsr(msr, value)
        assert CPU.rdmsr(msr) == value


@given(
    status=st.integers(0, MASK64).map(lambda v: v & GLOBAL_STATUS_WRITABLE),
    value=st.one_of(U64, st.integers(0, MASK64).map(lambda v: v & GLOBAL_STATUS_WRITABLE)),
)
def test_ovf_ctrl_clears_exactly_the_written_bits(status: int, value: int) -> None:
    CPU.host_wrmsr(0x38E, status)
    if value & ~GLOBAL_STATUS_WRITABLE:
        with pytest.raises(GuestFault):
            CPU.wrmsr(0x390, value)
        assert CPU.rdmsr(0x38E) == status
    else:
        CPU.wrmsr(0x390, value)
        assert CPU.rdmsr(0x38E) == status & ~value
    assert CPU.rdmsr(0x390) == 0


@given(value=U64, i=st.integers(0, 7))
def test_legacy_counter_write_is_the_sign_extended_low_32_bits(value: int, i: int) -> None:
    CPU.wrmsr(0xC1 + i, value)
    assert CPU.rdmsr(0xC1 + i) == sign_extend_32(value) & MASK48
    assert CPU.rdpmc(i) == sign_extend_32(value) & MASK48


@given(value=U64)
def test_host_legacy_counter_write_is_masked_not_extended(value: int) -> None:
    CPU.host_wrmsr(0xC2, value)
    assert CPU.rdmsr(0xC2) == value & MASK48


@given(value=st.one_of(U64, st.integers(0, MASK48)), i=st.integers(0, 7))
def test_full_width_write_faults_iff_a_bit_is_beyond_the_width(value: int, i: int) -> None:
    CPU.wrmsr(0x4C1 + i, 0x1234)
    if value >> 48:
        with pytest.raises(GuestFault):
            CPU.wrmsr(0x4C1 + i, value)
        assert CPU.rdmsr(0x4C1 + i) == 0x1234
    else:
        CPU.wrmsr(0x4C1 + i, value)
        assert CPU.rdmsr(0xC1 + i) == value


@given(value=U64, i=st.integers(0, 2))
def test_fixed_counter_write_is_masked_to_the_width(value: int, i: int) -> None:
    CPU.wrmsr(0x309 + i, value)
    assert CPU.rdmsr(0x309 + i) == value & MASK48
    assert CPU.rdpmc(1 << 30 | i) == value & MASK48


RDPMC_CPU = make()
for _i in range(8):
    RDPMC_CPU.host_wrmsr(0xC1 + _i, 0x1000 + _i)
for _i in range(3):
    RDPMC_CPU.host_wrmsr(0x309 + _i, 0x2000 + _i)


@given(
    ecx=st.one_of(
        st.integers(0, 0xFFFF_FFFF),
        st.tuples(st.sampled_from([0, 1 << 29, 1 << 30, 1 << 31, 3 << 30]), st.integers(0, 9)).map(
            sum
        ),
    )
)
def test_rdpmc_reaches_exactly_the_counters_of_its_type(ecx: int) -> None:
    """§7: ECX[31:16] 0 = GP, 0x4000 = fixed; index below that type's count; else #GP."""
    kind, idx = ecx & ~0xFFFF, ecx & 0xFFFF
    if kind == 0 and idx < 8:
        assert RDPMC_CPU.rdpmc(ecx) == 0x1000 + idx
    elif kind == 1 << 30 and idx < 3:
        assert RDPMC_CPU.rdpmc(ecx) == 0x2000 + idx
    else:
        with pytest.raises(GuestFault):
            RDPMC_CPU.rdpmc(ecx)


V0 = make(version=0, gp_counters=0, fixed_counters=0)


@given(ecx=st.integers(0, 0xFFFF_FFFF))
def test_rdpmc_always_faults_at_version_0(ecx: int) -> None:
    with pytest.raises(GuestFault):
        V0.rdpmc(ecx)


def test_v1_reset_leaves_global_ctrl_zero() -> None:
    """§4: GENMASK(nr_gp-1, 0) only for version > 1; a v1 PMU has no GLOBAL_CTRL at all."""
    cpu = make(version=1, fixed_counters=0)
    assert cpu.snapshot().components["intel"]["global_ctrl"] == 0
    with pytest.raises(GuestFault):
        cpu.rdmsr(0x38F)
    cpu.reset()
    assert cpu.snapshot().components["intel"]["global_ctrl"] == 0


def test_v2_without_gp_counters_resets_global_ctrl_to_zero() -> None:
    assert make(gp_counters=0).rdmsr(0x38F) == 0


@pytest.mark.parametrize(("cfg", "bit"), [({"bus_lock_detect": True}, 2), ({"tsx": True}, 15)])
def test_debugctl_bits_are_writable_only_when_enumerated(cfg: dict[str, bool], bit: int) -> None:
    """§1: BUS_LOCK_DETECT if enumerated, RTM_DEBUG with RTM; otherwise the write #GPs."""
    cpu = make(**cfg)
    cpu.wrmsr(0x1D9, 1 << bit)
    assert cpu.rdmsr(0x1D9) == 1 << bit
    bare = make()
    with pytest.raises(GuestFault):
        bare.wrmsr(0x1D9, 1 << bit)
    assert bare.rdmsr(0x1D9) == 0


def test_host_may_rewrite_perf_capabilities_only_to_its_value() -> None:
    """An immutable feature MSR after KVM_RUN: KVM takes back only the value it holds."""
    cpu = make()
    caps = cpu.rdmsr(0x345)
    cpu.host_wrmsr(0x345, caps)
    assert cpu.rdmsr(0x345) == caps
    for other in (0, caps ^ (1 << 13), caps | 1 << 12):
        with pytest.raises(GuestFault):
            cpu.host_wrmsr(0x345, other)
        assert cpu.rdmsr(0x345) == caps


def test_reprogram_follows_exactly_the_changed_controls() -> None:
    """§9: a changed eventsel, each changed FIXED_CTR_CTRL field, each flipped enable of
    a counting counter; an unchanged control reprograms nothing.

    Cycle events only: an instructions counter is also reprogrammed by every WRMSR,
    which KVM retires as an emulated instruction (also §9).
    """
    cpu = make()
    rec = ReprogramRecorder(cpu.allocator)
    cpu.allocator = rec
    sel = 0x3C | 1 << 16 | 1 << 17 | 1 << 22
    cpu.wrmsr(0x186, sel)
    assert rec.calls == [0]
    cpu.wrmsr(0x186, sel)
    assert rec.calls == [0]
    cpu.wrmsr(0x38D, 0x0B0)  # field 1 only
    assert rec.calls == [0, 33]
    cpu.wrmsr(0x38D, 0xBB0)  # field 2 only
    cpu.wrmsr(0x38D, 0xBB0)
    assert rec.calls == [0, 33, 34]
    cpu.wrmsr(0x38F, 0xFF | 1 << 33)  # fixed 1's enable flips
    assert rec.calls == [0, 33, 34, 33]
    cpu.wrmsr(0x38F, 0xFE | 1 << 33)  # GP 0's enable flips
    assert rec.calls == [0, 33, 34, 33, 0]


def test_no_pmu_means_an_all_zero_leaf_0xa() -> None:
    """Version 0 is no vPMU: leaf 0xA says nothing, not 13 events of no counters."""
    v0 = make(version=0, gp_counters=0, fixed_counters=0, events_unavailable=0b101)
    assert v0.cpuid(0xA) == (0, 0, 0, 0)
