"""What happens at VM entry, and what asks for it (spec/intel.md §2, §9, §12;
amd-and-topdown.md §3.3)."""

from __future__ import annotations

from typing import Any

import pytest

import vpmu_core as vpmu


class Recorder(vpmu.CounterAllocator):
    """Wraps a vCPU's allocator and PMI path, logging the order entry work runs in."""

    def __init__(self, cpu: vpmu.Vcpu) -> None:
        self.log: list[str] = []
        self.inner_alloc, self.inner_pmi = cpu.allocator, cpu.pmi_path
        cpu.set_allocator(self)
        cpu.pmi_path = self

    def reprogram(self, pmc: vpmu.Pmc) -> None:
        self.log.append(f"reprogram {pmc.name}")
        self.inner_alloc.reprogram(pmc)

    def release(self, pmc: vpmu.Pmc) -> None:
        self.inner_alloc.release(pmc)

    def emulated_instruction(self, pmcs: list[vpmu.Pmc]) -> None:
        self.inner_alloc.emulated_instruction(pmcs)

    def deliver(self) -> None:
        self.log.append("pmi")
        self.inner_pmi.deliver()


def test_entry_runs_reprograms_before_the_pmi() -> None:
    """KVM_REQ_PMU is handled before KVM_REQ_PMI in vcpu_enter_guest (§12)."""
    cpu = vpmu.Machine.from_dict({"pmu": {"backend": "intel"}}).vcpus[0]
    cpu.wrmsr(0x834, 0x400)
    cpu.wrmsr(0x4C1, (1 << 48) - 1)  # one instruction from overflow
    rec = Recorder(cpu)
    # the enabling WRMSR changes the control (reprogram) and retires the instruction
    # that overflows the counter it enabled (PMI): both wait for the same entry
    cpu.wrmsr(0x186, 0x5300C0)
    assert rec.log == ["reprogram gp0", "pmi"]
    assert len(cpu.pmis) == 1


@pytest.mark.parametrize(
    ("pmu", "ctl", "sel"),
    [
        ({"backend": "intel"}, 0x186, 0x43003C),
        ({"backend": "amd", "generation": "perfmon-v2"}, 0xC0010200, 0x430076),
        # AMD clears reserved bits first: HostOnly makes no difference to compare
        ({"backend": "amd", "generation": "perfmon-v2"}, 0xC0010200, 0x430076 | 1 << 41),
    ],
)
def test_rewriting_an_unchanged_control_requests_no_reprogram(
    pmu: dict[str, Any], ctl: int, sel: int
) -> None:
    cpu = vpmu.Machine.from_dict({"pmu": pmu}).vcpus[0]
    cpu.wrmsr(ctl, sel & ~(1 << 41))
    rec = Recorder(cpu)
    cpu.wrmsr(ctl, sel)
    assert rec.log == []
    cpu.wrmsr(ctl, sel ^ (1 << 16))  # USR flips: now it changed
    assert rec.log == ["reprogram gp0"]


def test_a_filter_applies_to_running_counters_of_every_vcpu() -> None:
    """Installing a filter reprograms every counter of every vCPU (§9)."""
    m = vpmu.Machine.from_dict({"pmu": {"backend": "intel"}, "machine": {"vcpus": 3}})
    for cpu in m.vcpus:
        cpu.wrmsr(0x186, 0x43003C)
    m.set_event_filter("deny", [0x3C])
    for cpu in m.vcpus:
        cpu.retire("cycles", 10)
        assert cpu.rdmsr(0xC1) == 0
    m.clear_event_filter()
    for cpu in m.vcpus:
        cpu.retire("cycles", 10)
        assert cpu.rdmsr(0xC1) == 10
