"""Linux's AMD PMI handlers and start path as MSR sequences (amd-and-topdown.md §4).

Before these, no test failed when the driver wrote LVTPC in the v2 handler, skipped it
in the v1 one, acked only the read status, re-enabled only the active counters, read
overflow from another bit than 47, or deferred a v2 enable: the counting results
happen to survive each of those, the MSR traffic (and so the exits) does not.
"""

from __future__ import annotations

from typing import Any

from conftest import amd
from helpers import (
    CYCLES,
    EN,
    GLOBAL_CTL,
    GLOBAL_STATUS,
    LVTPC,
    LVTPC_NMI,
    MASK48,
    OS,
    STATUS_CLR,
    USR,
    ctl,
    ctr,
    sel,
)
from recorder import Trace

import vpmu_core as vpmu

BRANCHES = 0xC2


def armed(generation: str, **pmu: Any) -> tuple[Any, Any, Trace]:
    """Counter 0 counts cycles 100 from overflow; counter 1 counts branches, armed with
    bit 47 set and bit 46 clear, so only bit 47 tells it has not overflowed."""
    machine = vpmu.Machine.from_dict(amd(generation=generation, **pmu))
    cpu = machine.vcpus[0]
    drv = machine.guest_driver(cpu)
    cpu.wrmsr(LVTPC, LVTPC_NMI)
    drv.program_gp(0, (CYCLES, 0), usr=True, os=True, intr=True)
    drv.program_gp(1, (BRANCHES, 0), usr=True, os=True, intr=True)
    drv.write_counter(0, -100 & MASK48)
    drv.write_counter(1, -(1 << 46) - 5 & MASK48)
    cpu.retire("cycles", 100)
    trace = Trace(cpu)
    drv.vcpu = trace
    return cpu, drv, trace


def test_v1_handler_unmasks_lvtpc_first_and_reads_overflow_from_bit_47() -> None:
    cpu, drv, trace = armed("core-ext")
    assert drv.handle_pmi({0: -100 & MASK48}) == 0b1
    assert trace.ops == [
        ("W", LVTPC, LVTPC_NMI),  # x86_pmu_handle_irq: LVTPC before anything
        ("P", 0, 0),  # wrapped: bit 47 clear
        ("W", ctr(0), -100 & MASK48),  # re-armed
        ("P", 1, -(1 << 46) - 5 & MASK48),  # bit 47 set: not overflowed, left alone
    ]
    assert cpu.rdmsr(ctl(0)) == sel(CYCLES) | (1 << 20)  # no EN toggling in v1's handler


def test_v2_handler_stops_acks_all_and_enables_every_counter_without_lvtpc() -> None:
    cpu, drv, trace = armed("perfmon-v2", gp_counters=5)
    status = cpu.rdmsr(GLOBAL_STATUS)
    assert status == 0b1
    assert drv.handle_pmi({0: -100 & MASK48}) == 0b1
    assert trace.ops == [
        ("W", GLOBAL_CTL, 0),
        ("R", GLOBAL_STATUS, 0b1),
        ("P", 0, 0),
        ("W", ctr(0), -100 & MASK48),
        ("P", 1, -(1 << 46) - 5 & MASK48),  # every active counter is updated
        ("W", STATUS_CLR, (1 << 64) - 1),  # ~remaining: all ones
        ("W", GLOBAL_CTL, 0x1F),  # all counters, not only the two active
    ]  # and no LVTPC write: AMD's LAPIC leaves it unmasked
    assert cpu.rdmsr(GLOBAL_STATUS) == 0


def test_v2_handler_with_no_status_acks_nothing() -> None:
    machine = vpmu.Machine.from_dict(amd(generation="perfmon-v2", gp_counters=5))
    cpu = machine.vcpus[0]
    drv = machine.guest_driver(cpu)
    drv.program_gp(0, (CYCLES, 0), usr=True, os=True, intr=True)
    trace = Trace(cpu)
    drv.vcpu = trace
    assert drv.handle_pmi({}) == 0
    assert trace.ops == [("W", GLOBAL_CTL, 0), ("R", GLOBAL_STATUS, 0), ("W", GLOBAL_CTL, 0x1F)]


def test_start_writes_en_at_once_on_v2_and_leaves_it_to_enable_all_on_v1() -> None:
    """x86_pmu_start inside perf_pmu_disable: amd_pmu_v2_enable_event writes EN
    unconditionally, amd_pmu_enable_event only while cpuc->enabled."""
    for generation, now in (("perfmon-v2", True), ("core-ext", False)):
        machine = vpmu.Machine.from_dict(amd(generation=generation))
        cpu = machine.vcpus[0]
        drv = machine.guest_driver(cpu)
        drv.disable_all()
        drv.start_gp(3, (CYCLES, 0), usr=True, os=True)
        assert cpu.rdmsr(ctl(3)) == (sel(CYCLES) if now else 0)
        drv.enable_all()
        assert cpu.rdmsr(ctl(3)) == sel(CYCLES) == CYCLES | USR | OS | EN
