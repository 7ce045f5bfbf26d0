"""The Hygon backend: the whole conformance suite, plus what makes it Hygon."""

from __future__ import annotations

import vpmu_core as vpmu
from vpmu_core.testing.suite import *  # noqa: F403


def machine(**pmu: object) -> vpmu.Machine:
    return vpmu.Machine.from_dict({"pmu": {"backend": "hygon", **pmu}})


def test_guest_reads_hygon_vendor() -> None:
    cpu = machine().vcpus[0]
    _, ebx, ecx, edx = cpu.cpuid(0)
    assert b"".join(r.to_bytes(4, "little") for r in (ebx, edx, ecx)) == b"HygonGenuine"
    assert cpu.pmu.caps.vendor == "HygonGenuine"


def test_six_interleaved_counters_with_k7_mirrors() -> None:
    cpu = machine().vcpus[0]
    cpu.wrmsr(0xC0010201, 0x1234)  # PERF_CTR0, core-extension address
    assert cpu.rdmsr(0xC0010004) == 0x1234  # the same counter at the K7 address
    cpu.wrmsr(0xC001020B, 7)  # PERF_CTR5
    assert cpu.rdpmc(5) == 7


def test_snapshot_of_amd_does_not_restore_on_hygon() -> None:
    amd = vpmu.Machine.from_dict({"pmu": {"backend": "amd", "generation": "core-ext"}})
    snap = amd.vcpus[0].snapshot()
    try:
        machine().vcpus[0].restore(snap)
    except vpmu.SnapshotError as exc:
        assert "hygon" in str(exc)
    else:
        raise AssertionError("an AMD snapshot restored on a Hygon machine")
