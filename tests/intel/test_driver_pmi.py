"""Linux's Intel PMI handler as an exact MSR sequence (amd-and-topdown.md §4.3, costs.md §4d)."""

from __future__ import annotations

from recorder import Trace

from .conftest import LVTPC, machine

MASK48 = (1 << 48) - 1
GLOBAL_STATUS, GLOBAL_CTRL, OVF_CTRL = 0x38E, 0x38F, 0x390
INTEL_CTRL = 0xFF | 0x7 << 32  # every GP and fixed counter that exists


def test_handler_acks_what_it_read_rereads_and_unmasks_lvtpc_last() -> None:
    m = machine()
    cpu = m.vcpus[0]
    drv = m.guest_driver(cpu)
    cpu.wrmsr(LVTPC, 0x400)
    drv.program_gp(0, (0x3C, 0), usr=True, os=True, intr=True)
    drv.write_counter(0, -100 & MASK48)
    drv.enable_all()
    cpu.retire("cycles", 100)
    assert cpu.rdmsr(LVTPC) == 0x400 | 1 << 16  # KVM masked it on delivery
    trace = Trace(cpu)
    drv.vcpu = trace
    assert drv.handle_pmi({0: -100 & MASK48}) == 0b1
    assert trace.ops == [
        ("W", GLOBAL_CTRL, 0),
        ("R", GLOBAL_STATUS, 0b1),
        ("W", OVF_CTRL, 0b1),  # ack exactly what was read
        ("P", 0, 0),
        ("W", 0x4C1, -100 & MASK48),  # re-armed through the full-width alias
        ("R", GLOBAL_STATUS, 0),  # read again: nothing new, the loop ends
        ("W", GLOBAL_CTRL, INTEL_CTRL),
        ("W", LVTPC, 0x400),  # late ack: unmask last
    ]
    assert cpu.rdmsr(LVTPC) == 0x400
