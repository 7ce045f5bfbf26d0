"""AMD overflow, PMI, LVTPC, event filter, reset, CPUID, caps, snapshots and guest driver."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import amd, intel
from helpers import (
    CYCLES,
    EN,
    GLOBAL_CTL,
    GLOBAL_STATUS,
    INT,
    K7_CTL0,
    K7_CTR0,
    LVT_MASKED,
    LVTPC,
    LVTPC_NMI,
    MASK48,
    USR,
    arm,
    ctl,
    ctr,
    sel,
    v1_pmi_handler,
    v2_pmi_handler,
)

import vpmu_core as vpmu


def cpu_of(make_machine: Any, **pmu: Any) -> Any:
    return make_machine(amd(**pmu)).vcpus[0]


# ----------------------------------------------------------------- overflow
@pytest.mark.parametrize("period", [1, 2, 1000, 1 << 47])
def test_overflow_after_exactly_period_events(make_machine: Any, period: int) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2")
    arm(cpu, 2, period, sel(CYCLES))
    cpu.retire("cycles", period - 1)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0
    assert cpu.rdpmc(2) == (-1) & MASK48
    cpu.retire("cycles", 1)
    assert cpu.rdmsr(GLOBAL_STATUS) == 1 << 2
    assert cpu.rdpmc(2) == 0


@pytest.mark.parametrize("generation", ["legacy", "core-ext"])
def test_v1_overflow_keeps_kvms_invisible_status_bit(make_machine: Any, generation: str) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    arm(cpu, 1, 10, sel(CYCLES), k7=True)
    cpu.retire("cycles", 10)
    assert cpu.pmu.status == 1 << 1  # kvm_perf_overflow sets it on every vendor
    assert cpu.pmu.global_status == 0  # but no v1 MSR shows it
    with pytest.raises(vpmu.GuestFault):
        cpu.rdmsr(GLOBAL_STATUS)
    assert not cpu.rdpmc(1) & (1 << 47)  # the v1 overflow indication (§3.6)


@pytest.mark.parametrize("generation", ["legacy", "core-ext", "perfmon-v2"])
def test_pmi_only_with_int(make_machine: Any, generation: str) -> None:
    cpu = cpu_of(make_machine, generation=generation)
    cpu.wrmsr(LVTPC, LVTPC_NMI)
    arm(cpu, 0, 50, sel(CYCLES), k7=True)
    cpu.retire("cycles", 50)
    assert cpu.pmis == []
    assert cpu.pmu.status == 1
    arm(cpu, 0, 50, sel(CYCLES) | INT, k7=True)
    cpu.retire("cycles", 49)
    assert cpu.pmis == []
    cpu.retire("cycles", 1)
    assert len(cpu.pmis) == 1
    assert cpu.pmis[0].mode == "nmi"


def test_v2_pmi_reports_global_status(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2")
    cpu.wrmsr(LVTPC, LVTPC_NMI)
    arm(cpu, 4, 7, sel(CYCLES) | INT)
    cpu.retire("cycles", 7)
    assert [p.status for p in cpu.pmis] == [1 << 4]


# -------------------------------------------------------------------- LVTPC
def _pmis_without_lvtpc_rewrite(make_machine: Any, config: dict[str, Any], n: int) -> Any:
    cpu = make_machine(config).vcpus[0]
    cpu.wrmsr(LVTPC, LVTPC_NMI)  # once, at boot
    arm(cpu, 0, 100, sel(CYCLES) | INT)
    for _ in range(n):
        seen = len(cpu.pmis)
        cpu.retire("cycles", 100)
        if len(cpu.pmis) > seen:
            v2_pmi_handler(cpu, 0, 100, cpu.pmu.caps.gp_counters)
        else:
            cpu.wrmsr(ctr(0), (-100) & MASK48)  # the overflow was lost; re-arm
    return cpu


def test_amd_lvtpc_stays_unmasked_so_every_overflow_is_a_pmi(make_machine: Any) -> None:
    cpu = _pmis_without_lvtpc_rewrite(make_machine, amd(generation="perfmon-v2"), 19)
    assert len(cpu.pmis) == 19
    assert cpu.pmis_dropped == 0
    assert not cpu.rdmsr(LVTPC) & LVT_MASKED
    assert cpu.pmu.caps.lvtpc_masks_on_pmi is False


def test_intel_masks_lvtpc_where_amd_does_not(make_machine: Any) -> None:
    """The contrast lives in Caps, not in a vendor-name branch."""
    amd_cpu = make_machine(amd()).vcpus[0]
    intel_cpu = make_machine(intel()).vcpus[0]
    assert amd_cpu.lvtpc.masks_on_pmi is False
    assert intel_cpu.lvtpc.masks_on_pmi is True


# --------------------------------------------------------------- event filter
def test_deny_of_0x1c2_does_not_stop_0xc2(make_machine: Any) -> None:
    machine = make_machine(amd(generation="core-ext"))
    cpu = machine.vcpus[0]
    machine.set_event_filter(action="deny", events=[0x1_0000_00C2])
    cpu.wrmsr(ctl(0), sel(0xC2))
    cpu.wrmsr(ctl(1), sel(0x1C2))
    cpu.retire((0xC2, 0), 10)
    cpu.retire((0x1C2, 0), 20)
    assert cpu.rdpmc(0) == 10  # 0xC2 is not 0x1C2
    assert cpu.rdpmc(1) == 0  # 0x1C2 is denied


def test_deny_of_0xc2_does_not_stop_0x1c2(make_machine: Any) -> None:
    machine = make_machine(amd(generation="core-ext"))
    cpu = machine.vcpus[0]
    machine.set_event_filter(action="deny", events=[0xC2])
    cpu.wrmsr(ctl(0), sel(0xC2))
    cpu.wrmsr(ctl(1), sel(0x1C2))
    cpu.retire((0xC2, 0), 10)
    cpu.retire((0x1C2, 0), 20)
    assert cpu.rdpmc(0) == 0
    assert cpu.rdpmc(1) == 20


def test_allow_filter_keeps_bits_35_32(make_machine: Any) -> None:
    machine = make_machine(amd(generation="core-ext"))
    assert machine.backend.event_select_mask() == 0xF_0000_00FF
    flt = machine.set_event_filter(action="allow", events=[0x1_0000_00C2])
    assert flt.nevents == 1  # not dropped as "bits outside the event select"
    cpu = machine.vcpus[0]
    cpu.wrmsr(ctl(0), sel(0x1C2))
    cpu.retire((0x1C2, 0), 5)
    assert cpu.rdpmc(0) == 5


def test_12_bit_event_select_is_matched_exactly(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="core-ext")
    cpu.wrmsr(ctl(0), sel(0x1C2))
    cpu.retire((0xC2, 0), 10)
    assert cpu.rdpmc(0) == 0
    assert cpu.counters[0].key == (0x1C2, 0)


# -------------------------------------------------------------------- reset
@pytest.mark.parametrize("n", [4, 5, 6])
def test_global_ctl_after_reset_enables_every_counter(make_machine: Any, n: int) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2", gp_counters=n)
    assert cpu.rdmsr(GLOBAL_CTL) == (1 << n) - 1
    cpu.wrmsr(GLOBAL_CTL, 0)
    cpu.wrmsr(ctl(0), sel(CYCLES))
    cpu.wrmsr(ctr(0), 99)
    cpu.reset()
    assert cpu.rdmsr(GLOBAL_CTL) == (1 << n) - 1
    assert cpu.rdmsr(GLOBAL_STATUS) == 0
    assert cpu.rdmsr(ctl(0)) == 0
    assert cpu.rdmsr(ctr(0)) == 0


def test_global_ctl_reset_value_on_bare_hardware_counts(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="perfmon-v2", gp_counters=16, kvm_cap=False)
    assert cpu.rdmsr(GLOBAL_CTL) == 0xFFFF
    cpu.wrmsr(ctl(15), sel(CYCLES))
    cpu.retire("cycles", 3)
    assert cpu.rdpmc(15) == 3


# -------------------------------------------------------------------- CPUID
def _vendor(cpu: Any) -> bytes:
    _, ebx, ecx, edx = cpu.cpuid(0)
    return b"".join(r.to_bytes(4, "little") for r in (ebx, edx, ecx))


@pytest.mark.parametrize(
    ("generation", "n", "ext_ecx", "leaf22"),
    [
        ("legacy", 4, 0, (0, 0, 0, 0)),
        ("core-ext", 6, 1 << 23, (0, 0, 0, 0)),
        ("perfmon-v2", 6, 1 << 23, (1, 6, 0, 0)),
        ("perfmon-v2", 5, 1 << 23, (1, 5, 0, 0)),
    ],
)
def test_cpuid_is_generated_from_the_config(
    make_machine: Any, generation: str, n: int, ext_ecx: int, leaf22: tuple[int, ...]
) -> None:
    cpu = cpu_of(make_machine, generation=generation, gp_counters=n)
    assert _vendor(cpu) == b"AuthenticAMD"
    assert cpu.cpuid(0x80000000)[0] == 0x80000022
    assert cpu.cpuid(0x80000001)[2] == ext_ecx
    assert cpu.cpuid(0x80000022) == leaf22


# --------------------------------------------------------------------- caps
@pytest.mark.parametrize(
    ("generation", "n", "version"),
    [("legacy", 4, 1), ("core-ext", 6, 1), ("perfmon-v2", 5, 2)],
)
def test_caps_describe_the_configured_pmu(
    make_machine: Any, generation: str, n: int, version: int
) -> None:
    machine = make_machine(amd(generation=generation, gp_counters=n))
    caps = machine.backend.caps()
    assert caps == machine.vcpus[0].pmu.caps
    assert caps.as_dict() == {
        "vendor": "AuthenticAMD",
        "version": version,
        "gp_counters": n,
        "fixed_counters": 0,
        "gp_width": 48,
        "fixed_width": 0,
        "has_global_ctrl": version == 2,
        "has_global_status": version == 2,
        "has_global_status_set": version == 2,
        "legacy_writes_sign_extend": False,
        "lvtpc_masks_on_pmi": False,
        "reserved_eventsel_faults": False,
        "full_width_writes": True,
        "event_select_mask": 0xF_0000_00FF,
        "event_format": [
            ["event", "config:0-7,32-35"],
            ["umask", "config:8-15"],
            ["edge", "config:18"],
            ["inv", "config:23"],
            ["cmask", "config:24-31"],
        ],
        "raw_event_mask": 0xF_FF84_FFFF,
        "fixed_only_keys": [],
    }
    assert [p.idx for p in machine.vcpus[0].counters.values()] == list(range(n))


def test_event_names(make_machine: Any) -> None:
    """perf's generic events per Linux AMD event map (amd_*_perfmon_event_map): each
    vCPU's table and the backend's are the configured map's own, never a merge."""
    common = {
        "cycles": ((0x76, 0),),
        "instructions": ((0xC0, 0),),
        "branches": ((0xC2, 0),),
        "branch-misses": ((0xC3, 0),),
    }
    zen_cache = {"cache-references": ((0x60, 0xFF),), "cache-misses": ((0x64, 0x09),)}
    want = {
        "k7": common
        | {
            "cache-references": ((0x7D, 0x07),),
            "cache-misses": ((0x7E, 0x07),),
            "stalled-cycles-frontend": ((0xD0, 0),),
            "stalled-cycles-backend": ((0xD1, 0),),
        },
        "zen1": common
        | zen_cache
        | {"stalled-cycles-frontend": ((0x87, 2),), "stalled-cycles-backend": ((0x87, 1),)},
        "zen2": common | zen_cache | {"stalled-cycles-frontend": ((0xA9, 0),)},
        "zen4": common
        | zen_cache
        | {"stalled-cycles-frontend": ((0xA9, 0),), "ref-cycles": ((0x120, 1),)},
    }
    for event_map, table in want.items():
        machine = make_machine(amd(event_map=event_map))
        assert machine.vcpus[0].pmu.events == table, event_map
        assert type(machine.backend).event_table(machine.backend.config) == table
    events = make_machine(amd()).vcpus[0].pmu.events
    assert events["branch-misses"] == ((0xC3, 0),)


# ----------------------------------------------------------------- snapshot
@pytest.mark.parametrize("generation", ["legacy", "core-ext", "perfmon-v2"])
def test_snapshot_round_trips_exactly(make_machine: Any, generation: str) -> None:
    config = amd(generation=generation)
    cpu = make_machine(config).vcpus[0]
    cpu.wrmsr(LVTPC, LVTPC_NMI)
    arm(cpu, 1, 5, sel(CYCLES) | INT, k7=True)
    cpu.wrmsr(K7_CTL0 + 2, sel(0x1C2, 0x3F, EN | USR))
    cpu.wrmsr(K7_CTR0 + 3, 0xDEAD_BEEF_CAFE)
    cpu.retire("cycles", 5)
    if generation == "perfmon-v2":
        cpu.wrmsr(GLOBAL_CTL, 0b100110)
    snap = cpu.snapshot()
    text = snap.model_dump_json()

    other = make_machine(config).vcpus[0]
    other.restore(text)
    assert other.snapshot() == snap
    assert other.pmu.save() == cpu.pmu.save()
    assert other.pmu.status == cpu.pmu.status == 0b10
    assert [p.value for p in other.counters.values()] == [p.value for p in cpu.counters.values()]
    for i in range(4):
        assert other.rdmsr(K7_CTL0 + i) == cpu.rdmsr(K7_CTL0 + i)
    # The restored vCPU counts like the original.
    for c in (cpu, other):
        c.retire((0x1C2, 0x3F), 9, cpl=3)
    assert other.rdpmc(2) == cpu.rdpmc(2) == 9


def test_snapshot_refuses_another_generation(make_machine: Any) -> None:
    snap = make_machine(amd(generation="core-ext")).vcpus[0].snapshot()
    other = make_machine(amd(generation="perfmon-v2")).vcpus[0]
    with pytest.raises(vpmu.SnapshotError):
        other.restore(snap)


def test_snapshot_refuses_another_quirk_set(make_machine: Any) -> None:
    snap = make_machine(amd()).vcpus[0].snapshot()
    other = make_machine(amd(quirks=["lvtpc-masked-on-pmi"])).vcpus[0]
    with pytest.raises(vpmu.SnapshotError, match="lvtpc_masks_on_pmi"):
        other.restore(snap)


# ------------------------------------------------------------- guest driver
@pytest.mark.parametrize(
    ("generation", "ctl_msr"), [("legacy", K7_CTL0 + 2), ("core-ext", 0xC0010204)]
)
def test_driver_uses_the_window_cpuid_advertises(
    make_machine: Any, generation: str, ctl_msr: int
) -> None:
    machine = make_machine(amd(generation=generation))
    cpu = machine.vcpus[0]
    drv = machine.guest_driver(cpu)
    drv.program_gp(2, (0x1C2, 0x05), usr=True, os=False, intr=True)
    assert cpu.rdmsr(ctl_msr) == 0x1_0000_00C2 | 0x0500 | EN | USR | INT
    drv.write_counter(2, (1 << 48) | 77)
    assert drv.read_counter(2) == 77


def test_driver_has_no_fixed_counters(make_machine: Any) -> None:
    machine = make_machine(amd())
    drv = machine.guest_driver(machine.vcpus[0])
    assert drv.gp_counters == 6
    assert drv.fixed_counters == 0
    assert drv.fixed_index("instructions") is None
    with pytest.raises(ValueError):
        drv.program_fixed(0, usr=True, os=True)


def test_v1_driver_enable_disable_all_toggle_en(make_machine: Any) -> None:
    machine = make_machine(amd(generation="core-ext"))
    cpu = machine.vcpus[0]
    drv = machine.guest_driver(cpu)
    drv.program_gp(0, (CYCLES, 0), usr=True, os=True)
    drv.program_gp(1, (0xC3, 0), usr=True, os=True)
    assert cpu.rdmsr(ctl(0)) == sel(CYCLES)
    cpu.retire("cycles", 5)
    drv.disable_all()
    assert cpu.rdmsr(ctl(0)) == sel(CYCLES) & ~EN
    assert cpu.rdmsr(ctl(1)) == sel(0xC3) & ~EN
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(0) == 5
    drv.enable_all()
    assert cpu.rdmsr(ctl(0)) == sel(CYCLES)
    assert cpu.rdmsr(ctl(1)) == sel(0xC3)
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(0) == 10


def test_v2_driver_enable_disable_all_use_global_ctl(make_machine: Any) -> None:
    machine = make_machine(amd(generation="perfmon-v2", gp_counters=5))
    cpu = machine.vcpus[0]
    drv = machine.guest_driver(cpu)
    drv.disable_all()
    assert cpu.rdmsr(GLOBAL_CTL) == 0
    drv.program_gp(0, (CYCLES, 0), usr=True, os=True)
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(0) == 0
    drv.enable_all()
    assert cpu.rdmsr(GLOBAL_CTL) == 0x1F
    cpu.retire("cycles", 5)
    assert cpu.rdpmc(0) == 5
    assert cpu.rdmsr(ctl(0)) & EN


@pytest.mark.parametrize("name", ["amd-zen1.toml", "amd-zen3.toml", "amd-zen4.toml"])
def test_counting_run_on_amd_configs_is_exact(name: str) -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / name
    result = vpmu.run(path)
    rows = {r.event: r for r in result.counters}
    assert set(rows) == {"instructions", "cycles", "branches", "branch-misses"}
    assert rows["cycles"].value == rows["cycles"].expected == 12_500_000
    assert rows["branches"].value == 2_000_000
    assert rows["branch-misses"].value == 40_000
    assert rows["instructions"].value == rows["instructions"].expected + 1


def test_v1_guest_handler_rewrites_lvtpc(make_machine: Any) -> None:
    cpu = cpu_of(make_machine, generation="legacy", quirks=["lvtpc-masked-on-pmi"])
    cpu.wrmsr(LVTPC, LVTPC_NMI)
    arm(cpu, 0, 100, sel(CYCLES) | INT, k7=True)
    for _ in range(5):
        cpu.retire("cycles", 100)
        v1_pmi_handler(cpu, 0, 100)
    assert len(cpu.pmis) == 5  # v1 guests were unaffected by the 2023 bug (§8.1)
