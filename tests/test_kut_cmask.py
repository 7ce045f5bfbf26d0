"""kvm-unit-tests' ``check_gp_counter_cmask`` on the shipped Intel and AMD configs.

Read from kvm-unit-tests ``x86/pmu.c`` at kvm-x86/kvm-unit-tests af828383c365 (the
AMD-aware version; kvm-unit-tests/kvm-unit-tests cda64e80ee72 has the Intel-only
original). What the test does, in this project's words: it programs GP counter 0 to
count retired instructions (event 0xC0, unit mask 0 on both vendors) at both
privilege levels with a counter mask of 2, runs its measurement loop -- N = 1,000,000
iterations of ten instructions (a load, an add, seven NOPs and LOOP) -- and passes
when the count is below the lower bound it accepts for a plain instructions counter
over that loop (10 * N; exactly the loop's instructions when GLOBAL_CTRL brackets
it). A counter that counts cycles with two or more retirements can never reach the
number of instructions; a model that ignores CMASK reads the plain count and fails.

The measurement, as the test's start/loop/stop helpers do it: counter = 0, event
select = config | EN, then (where the PMU has a global control) GLOBAL_CTRL = the
counter's bit right before the loop and 0 right after it, then the event select
without EN and a read of the counter. The model needs the cycles the loop took; the
test's own bounds for core cycles over the same loop are N to 50 * N, so every
cycle count in that range is tried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vpmu_core as vpmu

ROOT = Path(__file__).resolve().parent.parent
N = 1_000_000
LOOP_INSNS = 10 * N  # the loop's own instructions; the test's lower bound for them
USR, OS, EN = 1 << 16, 1 << 17, 1 << 22
INSTRUCTIONS = 0x00C0
CMASK_2 = 2 << 24


def msrs(cpu: Any) -> tuple[int, int, int | None]:
    """Event select 0, counter 0 and the global control the test's PMU library picks."""
    if cpu.pmu.caps.vendor == "GenuineIntel":
        return 0x186, 0x4C1 if cpu.pmu.caps.full_width_writes else 0xC1, 0x38F
    core = cpu.cpuid(0x80000001)[2] & (1 << 23)  # PerfCtrExtCore: the F15H MSRs
    sel, ctr = (0xC0010200, 0xC0010201) if core else (0xC0010000, 0xC0010004)
    return sel, ctr, (0xC0000301 if cpu.pmu.caps.has_global_ctrl else None)


def measure_one(cpu: Any, config: int, loop_cycles: int) -> int:
    sel, ctr, global_ctl = msrs(cpu)
    if global_ctl is not None:
        cpu.wrmsr(global_ctl, 0)  # the loop brackets counting with GLOBAL_CTRL
    cpu.wrmsr(ctr, 0)
    cpu.wrmsr(sel, config | EN)
    if global_ctl is not None:
        cpu.wrmsr(global_ctl, 1)
    cpu.retire("instructions", LOOP_INSNS, 0, cycles=loop_cycles)
    if global_ctl is not None:
        cpu.wrmsr(global_ctl, 0)
    cpu.wrmsr(sel, config)
    return int(cpu.rdmsr(ctr))


CONFIGS = ["intel-kvm.toml", "intel-v6.toml", "amd-zen1.toml", "amd-zen4.toml"]


def vcpu(config: str) -> Any:
    return vpmu.Machine.from_toml(ROOT / "configs" / config).vcpus[0]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("loop_cycles", [N, 5 * N // 2, 10 * N, 50 * N])
def test_check_gp_counter_cmask(config: str, loop_cycles: int) -> None:
    cpu = vcpu(config)
    plain = measure_one(cpu, OS | USR | INSTRUCTIONS, loop_cycles)
    assert plain >= LOOP_INSNS  # the bound the cmask count must stay under is reachable
    count = measure_one(cpu, OS | USR | INSTRUCTIONS | CMASK_2, loop_cycles)
    assert count < LOOP_INSNS
    # exactly: KVM's +1 for the WRMSR that enabled the counter (its software count
    # ignores CMASK), plus the loop's cycles with >= 2 instructions under the spread
    q, r = divmod(LOOP_INSNS, loop_cycles)
    cycles_ge_2 = loop_cycles if q >= 2 else (r if q == 1 else 0)
    assert count == 1 + cycles_ge_2


@settings(max_examples=40, deadline=None)
@given(config=st.sampled_from(CONFIGS), loop_cycles=st.integers(N, 50 * N))
def test_check_gp_counter_cmask_for_any_cycle_count_the_test_allows(
    config: str, loop_cycles: int
) -> None:
    count = measure_one(vcpu(config), OS | USR | INSTRUCTIONS | CMASK_2, loop_cycles)
    assert count < LOOP_INSNS
    assert count <= 1 + min(loop_cycles, LOOP_INSNS // 2)
