"""The AMD register rules of spec/amd-and-topdown.md §2.2, §3.2-3.3, for every value.

KVM's AMD vPMU drops the bad part of a write and never faults; the example tests in
test_amd_msrs.py pin one value per rule, these check the rule for all of them.
"""

from __future__ import annotations

import pytest
from conftest import amd
from helpers import (
    CTR0,
    GLOBAL_CTL,
    GLOBAL_STATUS,
    K7_CTL0,
    K7_CTR0,
    MASK48,
    RESERVED,
    STATUS_CLR,
    STATUS_SET,
    ctl,
    ctr,
)
from hypothesis import given
from hypothesis import strategies as st

import vpmu_core as vpmu

U64 = st.integers(0, (1 << 64) - 1)
N = 5  # PerfMonV2 with fewer than KVM's 6 counters: bits 5 and up are reserved
CTL_MASK = (1 << N) - 1
CPU = vpmu.Machine.from_dict(amd(generation="perfmon-v2", gp_counters=N)).vcpus[0]


@given(value=U64, i=st.integers(0, 3))
def test_perf_ctl_keeps_exactly_the_unreserved_bits_in_both_windows(value: int, i: int) -> None:
    CPU.wrmsr(ctl(i), value)
    assert CPU.rdmsr(ctl(i)) == value & ~RESERVED
    assert CPU.rdmsr(K7_CTL0 + i) == value & ~RESERVED
    CPU.wrmsr(K7_CTL0 + i, value ^ (1 << 22))
    assert CPU.rdmsr(ctl(i)) == (value ^ (1 << 22)) & ~RESERVED


@given(value=U64, i=st.integers(0, N - 1))
def test_counter_write_keeps_48_bits_never_sign_extended(value: int, i: int) -> None:
    CPU.wrmsr(ctr(i), value)
    assert CPU.rdmsr(ctr(i)) == value & MASK48
    assert CPU.rdpmc(i) == value & MASK48
    if i < 4:
        assert CPU.rdmsr(K7_CTR0 + i) == value & MASK48


@given(value=U64)
def test_global_ctl_keeps_only_the_counters_bits(value: int) -> None:
    CPU.wrmsr(GLOBAL_CTL, value)
    assert CPU.rdmsr(GLOBAL_CTL) == value & CTL_MASK


@given(status=st.integers(0, CTL_MASK), value=U64)
def test_status_clr_set_and_guest_status_writes(status: int, value: int) -> None:
    CPU.host_wrmsr(GLOBAL_STATUS, status)
    CPU.wrmsr(GLOBAL_STATUS, value)  # read-only: dropped, no #GP
    assert CPU.rdmsr(GLOBAL_STATUS) == status
    CPU.wrmsr(STATUS_SET, value)
    assert CPU.rdmsr(GLOBAL_STATUS) == (status | value) & CTL_MASK
    CPU.wrmsr(STATUS_CLR, value)
    assert CPU.rdmsr(GLOBAL_STATUS) == (status | value) & CTL_MASK & ~value
    assert CPU.rdmsr(STATUS_SET) == CPU.rdmsr(STATUS_CLR) == 0


@given(status=st.integers(0, (1 << 64) - 1))
def test_host_status_write_faults_iff_a_reserved_bit_is_set(status: int) -> None:
    CPU.host_wrmsr(GLOBAL_STATUS, 0b1)
    if status & ~CTL_MASK:
        with pytest.raises(vpmu.GuestFault):
            CPU.host_wrmsr(GLOBAL_STATUS, status)
        assert CPU.rdmsr(GLOBAL_STATUS) == 0b1
    else:
        CPU.host_wrmsr(GLOBAL_STATUS, status)
        assert CPU.rdmsr(GLOBAL_STATUS) == status


@given(ecx=st.one_of(st.integers(0, 0xFFFF_FFFF), st.integers(0, 2 * N)))
def test_rdpmc_faults_iff_ecx_is_not_a_counter_index(ecx: int) -> None:
    if ecx < N:
        CPU.wrmsr(CTR0 + 2 * ecx, 0xA0 + ecx)
        assert CPU.rdpmc(ecx) == 0xA0 + ecx
    else:
        with pytest.raises(vpmu.GuestFault):
            CPU.rdpmc(ecx)


def test_restore_keeps_only_bits_the_registers_have() -> None:
    """KVM clears reserved PERF_CTL bits of host-initiated writes too (§2.2); GLOBAL_CTL
    and GLOBAL_STATUS hold only the counters' bits (§3.1)."""
    cpu = vpmu.Machine.from_dict(amd(generation="perfmon-v2", gp_counters=N)).vcpus[0]
    state = cpu.snapshot().model_dump()
    state["components"]["amd"]["eventsel"][1] = (1 << 64) - 1
    state["components"]["amd"]["global_ctl"] = (1 << 64) - 1
    state["components"]["amd"]["global_status"] = (1 << 64) - 1
    cpu.restore(state)
    assert cpu.rdmsr(ctl(1)) == ((1 << 64) - 1) & ~RESERVED
    assert cpu.rdmsr(GLOBAL_CTL) == CTL_MASK
    assert cpu.rdmsr(GLOBAL_STATUS) == CTL_MASK
