"""The Hygon backend: the whole conformance suite, plus what makes it Hygon."""

from __future__ import annotations

from pathlib import Path

from vpmu_amd import AmdGuestDriver

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


HERE = Path(__file__).resolve().parent.parent
PERF_RECORD = HERE / "perf-record.toml"


def test_the_guest_runs_amds_driver_chosen_by_its_cpuid_vendor() -> None:
    """Linux's init_hw_perf_events runs amd_pmu_init on a HygonGenuine CPU; so does vpmu."""
    m = vpmu.Machine.from_toml(PERF_RECORD)
    assert type(m.guest_driver(m.vcpus[0])) is AmdGuestDriver
    # ... without the plugin naming a driver
    source = "".join(p.read_text() for p in (HERE / "vpmu_hygon").glob("*.py"))
    assert "Driver" not in source and "guest_driver" not in source


def test_perf_record_runs_on_hygon_with_the_amd_driver() -> None:
    result = vpmu.run(PERF_RECORD)
    extra = result.extra
    # Two 1 kHz events for 200 ms of the guest's wall clock: what the emulated vPMU
    # costs the vCPU (29 ms) leaves 171 ms of work, for which the asked rate is 342
    # samples; frequency mode aims at its rate per second of wall time and takes 430.
    assert (extra["samples_taken"], extra["samples_expected"]) == (430, 342)
    assert extra["samples_lost_throttling"] == extra["samples_lost_host_contention"] == 0
    assert result.pmis == [430]
    assert result.ledger["exits"]["wrmsr:eventsel"] > 0  # the AMD driver's PERF_CTL writes
