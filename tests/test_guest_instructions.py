"""Every instruction the model lets a guest execute that KVM completes is an instruction.

WRMSR, RDMSR and RDPMC count themselves (tests/intel/test_counting.py); CPUID too:
KVM intercepts it always and completes it with kvm_emulate_cpuid ->
kvm_skip_emulated_instruction -> kvm_pmu_instruction_retired (arch/x86/kvm/cpuid.c,
x86.c), under every strategy. It is no branch. And RDPMC reads ECX only.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vpmu_core as vpmu
from vpmu_core.errors import ConfigError

STRATEGIES = ["emulated-legacy", "emulated", "register", "fastpath", "mediated"]
# v5: the mediated strategy needs GLOBAL_STATUS_SET
INTEL = {"backend": "intel", "version": 5, "gp_counters": 8, "fixed_counters": 3}
AMD = {"backend": "amd", "generation": "perfmon-v2"}


def _strategy(name: str) -> dict[str, Any]:
    """The RFC's mediated mode lets a v5 guest (GLOBAL_STATUS_SET) run; 6.20's caps it at v2."""
    return {"name": name, "mode": "rfc"} if name == "mediated" else {"name": name}


def machine(pmu: dict[str, Any], strategy: str = "emulated") -> vpmu.Machine:
    return vpmu.Machine.from_dict({"pmu": pmu, "strategy": _strategy(strategy)})


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cpuid_retires_one_instruction_intel(strategy: str) -> None:
    m = machine(INTEL, strategy)
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C0)  # PERFEVTSEL0 instructions OS+USR: counts itself (1)
    cpu.wrmsr(0x187, 0x4300C4)  # PERFEVTSEL1 branches: CPUID is none
    cpu.wrmsr(0x38D, 0x3)  # FIXED_CTR_CTRL: fixed 0 (instructions), OS+USR
    cpu.wrmsr(0x38F, 0x1_0000_0003)  # GLOBAL_CTRL: GP 0, 1 and fixed 0
    before = (cpu.rdpmc(0), cpu.rdpmc(1), cpu.rdpmc(1 << 30))
    exits = m.ledger.exits.get("cpuid", 0)
    assert cpu.cpuid(0xA) == cpu.cpuid_table(0xA)
    cpu.cpuid(0)
    after = (cpu.rdpmc(0), cpu.rdpmc(1), cpu.rdpmc(1 << 30))
    # two CPUIDs, plus the RDPMCs between the reads (3 on each instructions counter)
    assert after[0] - before[0] == 2 + 3
    assert after[2] - before[2] == 2 + 3
    assert after[1] == before[1] == 0
    assert m.ledger.exits["cpuid"] - exits == 2


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cpuid_retires_one_instruction_amd(strategy: str) -> None:
    m = machine(AMD, strategy)
    cpu = m.vcpus[0]
    cpu.wrmsr(0xC0010200, 0x4300C0)  # PERF_CTL0 instructions
    cpu.wrmsr(0xC0010202, 0x4300C2)  # PERF_CTL1 branches
    cpu.cpuid(0x80000022)
    # the WRMSR enabling it counts itself, then the WRMSR of CTL1 and the CPUID
    assert (cpu.rdmsr(0xC0010201), cpu.rdmsr(0xC0010203)) == (3, 0)


def test_cpuid_at_cpl3_counts_on_user_counters_only() -> None:
    cpu = machine(INTEL).vcpus[0]
    cpu.wrmsr(0x186, 0x4200C0)  # OS only: counts this WRMSR and the next
    cpu.wrmsr(0x187, 0x4100C0)  # USR only
    cpu.cpl = 3
    cpu.cpuid(1)
    cpu.cpl = 0
    assert (cpu.rdmsr(0xC1), cpu.rdmsr(0xC2)) == (2, 1)


def test_cpuid_table_executes_nothing() -> None:
    m = machine(INTEL)
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C0)
    cpu.cpuid_table(0)
    m.guest_driver(cpu)  # the guest kernel picked its driver at boot: no CPUID now
    assert cpu.rdmsr(0xC1) == 1
    assert m.ledger.exits.get("cpuid", 0) == 0


@given(high=st.integers(1, (1 << 32) - 1), low=st.sampled_from([0, 3, 1 << 30, (1 << 30) | 2]))
def test_rdpmc_reads_ecx_only(high: int, low: int) -> None:
    cpu = MACHINE.vcpus[0]
    assert cpu.rdpmc((high << 32) | low) == cpu.rdpmc(low)


MACHINE = machine(INTEL)


def test_rdpmc_ecx_only_still_faults_on_a_bad_low_half() -> None:
    cpu = machine(INTEL).vcpus[0]
    with pytest.raises(vpmu.GuestFault):
        cpu.rdpmc((1 << 32) | 8)  # GP counter 8 does not exist
    with pytest.raises(vpmu.GuestFault):
        cpu.rdpmc((1 << 32) | (1 << 31))  # the "fast" flag #GPs under KVM


@pytest.mark.parametrize(
    ("pmu", "key", "value"),
    [
        ({"gp_counters": 9}, "pmu.gp_counters", "9"),
        ({"gp_counters": 32}, "pmu.gp_counters", "32"),
        ({"version": 6, "gp_bitmap": 1 << 8}, "pmu.gp_bitmap", "256"),
    ],
)
def test_intel_refuses_more_than_8_gp_counters(pmu: dict[str, Any], key: str, value: str) -> None:
    """A 14th PMC would be PLATFORM_INFO (0xCE), a 19th PERFEVTSEL PERF_STATUS (0x198)."""
    with pytest.raises(ConfigError) as exc:
        vpmu.load_config({"pmu": {"backend": "intel", **pmu}})
    assert str(exc.value) == (
        f"{key} = {value}: at most 8 GP counters, 0-7 (KVM_MAX_NR_INTEL_GP_COUNTERS; "
        "PERFEVTSEL 0x186+i and PMC 0xC1+i have no room for more)"
    )


def test_eight_gp_counters_leave_the_neighbours_alone() -> None:
    cpu = machine({**INTEL, "gp_counters": 8}).vcpus[0]
    for msr in (0xCE, 0x198, 0x199, 0x1A0, 0xC9, 0x18E):
        with pytest.raises(vpmu.GuestFault):
            cpu.rdmsr(msr)


def test_a_trace_executes_cpuid() -> None:
    text = "wrmsr 0x186 0x4300c0\ncpuid 0xa\ncpuid 0x23 1\nrdpmc 0\nexpect rdpmc 0 3\n"
    out = vpmu.run({"pmu": INTEL, "workload": {"kind": "trace", "text": text}})
    assert out.extra["mismatches"] == []
    assert out.extra["reads"][0]["cpuid"] == [0xA, 0]
    assert out.ledger["exits"]["cpuid"] == 2
    with pytest.raises(ConfigError, match=r"^trace line 1 = 'cpuid': usage: cpuid LEAF"):
        vpmu.run({"pmu": INTEL, "workload": {"kind": "trace", "text": "cpuid"}})
