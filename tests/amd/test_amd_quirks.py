"""The two KVM AMD bugs of spec §8, as quirks, each with the failure mode it caused."""

from __future__ import annotations

from typing import Any

from conftest import amd
from helpers import CYCLES, GLOBAL_CTL, INT, LVT_MASKED, LVTPC, LVTPC_NMI, MASK48, arm, ctr, sel
from helpers import v2_pmi_handler as handle

PERIOD = 1000
OVERFLOWS = 19  # `perf record -e cycles:u true`: ~19 samples on a fixed kernel (§8.1)


def _record(make_machine: Any, **pmu: Any) -> Any:
    """A PerfMonV2 guest that unmasks LVTPC once and then never writes it again."""
    cpu = make_machine(amd(generation="perfmon-v2", **pmu)).vcpus[0]
    cpu.wrmsr(LVTPC, LVTPC_NMI)
    arm(cpu, 0, PERIOD, sel(CYCLES) | INT)
    for _ in range(OVERFLOWS):
        before = len(cpu.pmis)
        cpu.retire("cycles", PERIOD)
        if len(cpu.pmis) > before:
            handle(cpu, 0, PERIOD, 6)
        else:  # no NMI came: the counter kept running from 0
            cpu.wrmsr(ctr(0), (-PERIOD) & MASK48)
    return cpu


def test_lvtpc_masked_on_pmi_quirk_gives_one_pmi_instead_of_many(make_machine: Any) -> None:
    fixed = _record(make_machine)
    buggy = _record(make_machine, quirks=["lvtpc-masked-on-pmi"])
    assert len(fixed.pmis) == OVERFLOWS
    assert not fixed.rdmsr(LVTPC) & LVT_MASKED
    assert len(buggy.pmis) == 1
    assert buggy.pmis_dropped == OVERFLOWS - 1
    assert buggy.rdmsr(LVTPC) & LVT_MASKED


def _v1_style_count(make_machine: Any, **pmu: Any) -> tuple[int, int]:
    """Software that knows only PERF_CTL.EN: it never writes GLOBAL_CTL."""
    cpu = make_machine(amd(generation="perfmon-v2", **pmu)).vcpus[0]
    cpu.wrmsr(ctr(0), 0)
    cpu.wrmsr(0xC0010000, sel(CYCLES))
    cpu.retire("cycles", 12_345)
    return cpu.rdmsr(GLOBAL_CTL), cpu.rdpmc(0)


def test_global_ctl_zero_at_reset_quirk_stops_v1_style_guests(make_machine: Any) -> None:
    assert _v1_style_count(make_machine) == (0x3F, 12_345)
    assert _v1_style_count(make_machine, quirks=["global-ctl-zero-at-reset"]) == (0, 0)


def test_global_ctl_zero_quirk_also_after_vcpu_reset(make_machine: Any) -> None:
    cpu = make_machine(amd(generation="perfmon-v2", quirks=["global-ctl-zero-at-reset"])).vcpus[0]
    cpu.wrmsr(GLOBAL_CTL, 0x3F)
    cpu.reset()
    assert cpu.rdmsr(GLOBAL_CTL) == 0
