"""Bounded PMI memory: every PMI counted, the last ``[machine] pmi_log`` kept.

Why: a full-scale guest perf record takes tens of thousands of PMIs per
vCPU-second; keeping every one grew a 10 s, 56-vCPU run to ~600 MB.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import vpmu_core as vpmu
from vpmu_core.pmis import Pmi, PmiLog

ROOT = Path(__file__).parent.parent


def test_the_log_counts_every_pmi_and_keeps_the_last_ones() -> None:
    log = PmiLog(3)
    assert log == [] and not log and log.keep == 3
    for i in range(10):
        log.append(Pmi(i, 2, "nmi", 1))
    assert len(log) == 10
    assert [p.clock for p in log] == [7, 8, 9]
    assert log[0].clock == 7 and log[-1].clock == 9
    assert log != [Pmi(i, 2, "nmi", 1) for i in (7, 8, 9)]  # 10 taken, not 3
    small = PmiLog(3)
    small.append(Pmi(5, 2, "nmi", 0))
    assert small == [Pmi(5, 2, "nmi", 0)]


def test_a_vcpu_keeps_what_the_config_says() -> None:
    m = vpmu.Machine.from_dict({"machine": {"pmi_log": 2}, "pmu": {"backend": "intel"}})
    cpu = m.vcpus[0]
    cpu.wrmsr(0x834, 0x400)
    cpu.wrmsr(0x4C1, (1 << 48) - 10)
    cpu.wrmsr(0x186, 0x53003C)
    for _ in range(5):
        cpu.retire("cycles", 10)
        cpu.wrmsr(0x4C1, (1 << 48) - 10)
        cpu.wrmsr(0x390, cpu.rdmsr(0x38E))  # ack the status
        cpu.wrmsr(0x834, 0x400)  # unmask
    assert len(cpu.pmis) == 5
    assert len(list(cpu.pmis)) == 2


def test_a_folded_run_leaves_every_vcpu_its_pmis() -> None:
    """After a symmetry class ran once, each member reports the PMIs it took, and the
    last ones are those of the full simulation."""
    data = tomllib.loads((ROOT / "configs" / "seed-mediated-table.toml").read_text())
    data.pop("compare")
    data["machine"] |= {"vcpus": 3, "pmi_log": 4}
    data["host"]["pcpus"] = 3
    data["workload"] |= {"duration_ms": 10, "workers": 1}
    folded = vpmu.Machine.from_dict(data)
    wl = vpmu.default_manager().registry["workloads"]["perf-record"]
    wl(folded.config.workload, folded).run()
    data["workload"]["symmetry"] = False
    full = vpmu.Machine.from_dict(data)
    wl(full.config.workload, full).run()
    for a, b in zip(folded.vcpus, full.vcpus, strict=True):
        assert len(a.pmis) == len(b.pmis) > 4
        assert list(a.pmis) == list(b.pmis) and len(list(a.pmis)) == 4
