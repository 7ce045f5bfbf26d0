"""The mechanisms of costs.md §3e, each one failing here if it is taken out."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import vpmu_core as vpmu
from vpmu_core.costs import CostTable, unit_cost

ROOT = Path(__file__).parent.parent
TABLE = ROOT / "configs" / "seed-mediated-table.toml"


def record(
    events: int = 6,
    ms: float = 200.0,
    strategy: dict[str, Any] | None = None,
    guest: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The mediated table's scenario on one vCPU for ``ms`` of guest time."""
    data = tomllib.loads(TABLE.read_text(encoding="utf-8"))
    data.pop("compare")
    data["machine"]["vcpus"] = data["host"]["pcpus"] = 1
    data["workload"] |= {"duration_ms": ms, "workers": 1, "events": ["instructions"] * events}
    if strategy is not None:
        data["strategy"] = strategy
    data["guest"] |= guest or {}
    return data


V2_620: dict[str, Any] = {
    "pmu": {"backend": "intel", "version": 2, "gp_counters": 8, "fixed_counters": 3},
    "host": {"version": 5, "full_width_writes": True},
}


def v2_record(kernel: str, strategy: str = "mediated", ms: float = 50.0) -> vpmu.RunResult:
    """perf record -F 1000 of instructions (fixed 0) and branches (GP) on a 6.20 guest."""
    data = {
        **V2_620,
        "guest": {"kernel": kernel},
        "strategy": {"name": strategy},
        "workload": {
            "kind": "perf-record",
            "events": ["instructions", "branches", "branches"],
            "freq": 1000,
            "duration_ms": ms,
        },
    }
    return vpmu.run(data)


# ------------------------------------------------------------ de-phased start
def test_six_de_phased_frequency_events_take_about_6000_pmis_per_vcpu_second() -> None:
    r = vpmu.run(record())
    (pmis,) = r.pmis
    assert 5500 < pmis / 0.2 < 7000  # six events, 1 kHz each, none coalescing


def test_in_lock_step_the_same_events_coalesce_into_1000_pmis_per_second() -> None:
    r = vpmu.run(record(guest={"enable_gap_us": 0.0}))
    (pmis,) = r.pmis
    assert 900 < pmis / 0.2 < 1200


def test_de_phasing_depends_on_the_event_not_the_vcpu() -> None:
    data = record(ms=50.0)
    data["machine"]["vcpus"] = data["host"]["pcpus"] = 2
    r = vpmu.run(data)
    a, b = r.extra["perf"]
    assert a["rows"] == b["rows"] and r.pmis[0] == r.pmis[1]


# ------------------------------------------------------------- LVTPC exits
def test_a_mediated_guest_pmi_books_two_put_loads() -> None:
    """The PMI's own exit, then the handler's LVTPC write: two switched exits (§3e)."""
    m = vpmu.Machine.from_dict({**V2_620, "strategy": {"name": "mediated"}})
    cpu = m.vcpus[0]
    drv = m.guest_driver(cpu)
    drv.write_counter(0, (1 << 48) - 10)
    drv.program_gp(0, (0xC4, 0), usr=True, os=True, intr=True)
    drv.enable_all()
    m.strategy.finish()
    before = m.ledger.context_switches["pmu_load"]
    cpu.retire("branches", 10)  # overflow: the PMI on the mediated vector
    drv.handle_pmi({0: (1 << 48) - 10})
    m.strategy.finish()
    assert m.ledger.context_switches["pmu_load"] - before == 2
    assert m.ledger.exits["host_pmi"] == 1 and m.ledger.exits["wrmsr:lvtpc"] == 1
    assert m.ledger.pmis["mediated_vector"] == 1 and "host_nmi" not in m.ledger.pmis


def test_each_rotation_that_adds_events_writes_the_lvtpc() -> None:
    r = vpmu.run(record(events=10, ms=20.0))
    (perf,) = r.extra["perf"]
    enables = 10  # one per ioctl at start
    assert perf["rotations"] > 0
    lvtpc = r.ledger["exits"]["wrmsr:lvtpc"]
    assert lvtpc == r.pmis[0] + enables + perf["rotations"]


# ------------------------------------------------------- the guest kernel
def test_a_6_0_guest_makes_fixed_ctr_ctrl_exits_a_6_1_one_does_not() -> None:
    old, new = v2_record("6.0"), v2_record("6.1")
    old_fc = old.ledger["exits"].get("wrmsr:fixed_ctrl", 0)
    new_fc = new.ledger["exits"].get("wrmsr:fixed_ctrl", 0)
    assert old.ledger["exits"].get("rdmsr:fixed_ctrl", 0) >= 100  # RDMSR+WRMSR per stop/start
    assert old_fc >= 100  # 2 per tick at least, 50 ticks
    assert new_fc <= 2  # once at start; stop/start within enable_all leave it unchanged
    assert "rdmsr:fixed_ctrl" not in new.ledger["exits"]


@pytest.mark.parametrize(("kernel", "per_event"), [("5.15", False), ("6.5", True), ("6.10", False)])
def test_from_6_2_to_6_9_the_tick_toggles_global_ctrl_per_event(
    kernel: str, per_event: bool
) -> None:
    r = v2_record(kernel, strategy="emulated", ms=20.0)
    base = v2_record("6.10", strategy="emulated", ms=20.0)
    got = r.ledger["exits"]["wrmsr:global_ctrl"]
    ref = base.ledger["exits"]["wrmsr:global_ctrl"]
    if per_event:  # 3 events: 6 GLOBAL_CTRL writes per tick instead of 2
        assert got - ref >= 4 * 20 * 0.9
    else:
        assert got == ref


def test_hz_sets_the_guest_tick_and_the_mux_interval() -> None:
    fast = vpmu.run(record(events=10, ms=40.0))
    slow = vpmu.run(record(events=10, ms=40.0, guest={"hz": 250}))
    assert fast.extra["perf"][0]["rotations"] == 40
    assert slow.extra["perf"][0]["rotations"] == 10
    assert slow.ledger["exits"]["ext_intr"] == fast.ledger["exits"]["ext_intr"]  # host HZ
    mux = vpmu.run(record(events=10, ms=40.0, guest={"mux_interval_ms": 8.0}))
    assert mux.extra["perf"][0]["rotations"] == 5


# --------------------------------------------------------- put + load
def _allocator(mode: str) -> Any:
    pmu = {"backend": "intel", "version": 5 if mode == "rfc" else 2, "gp_counters": 8}
    pmu["fixed_counters"] = 3
    host = {"version": 5, "full_width_writes": True}
    m = vpmu.Machine.from_dict(
        {"pmu": pmu, "host": host, "strategy": {"name": "mediated", "mode": mode}}
    )
    return m.vcpus[0].allocator


def test_put_load_msr_counts_as_costs_md_3e_writes_them() -> None:
    idle = _allocator("6.20").per_switch
    # idle, G = 8: GLOBAL_CTRL <- 0, 8 selects, FIXED_CTR_CTRL (+ 2 host LVTPC) = 12 writes
    assert idle["wrmsr"] + idle["lvtpc"] == 12
    assert (idle["rdpmc"], idle["rdmsr"], idle["elided"]) == (22, 2, 11)
    rfc = _allocator("rfc").per_switch
    assert (rfc["wrmsr"], rfc["rdmsr"], rfc["rdpmc"]) == (35, 11, 11)  # no elision


def test_six_live_events_make_about_30_writes_under_6_20() -> None:
    a = _allocator("6.20")
    cpu = a.vcpu
    for i in range(5):
        cpu.wrmsr(0xC1 + i, 100)
        cpu.wrmsr(0x186 + i, 0x4300C0)
    cpu.wrmsr(0x309, 100)
    cpu.wrmsr(0x38D, 0x3)
    ps = a.per_switch
    # 1 + 8 + 1 + L(6) + L(6) + S(5) + FIXED_CTR_CTRL + 2 LVTPC
    assert ps["wrmsr"] + ps["lvtpc"] == 30


# ------------------------------------------------------ fastpath bail-out
def test_6_20_sends_fastpath_exits_out_while_a_pmc_counts_instructions() -> None:
    six20 = v2_record("6.20", ms=20.0)
    ev = six20.ledger["events"]
    assert ev["fastpath_bailout"] == six20.ledger["exits"]["fastpath:tsc_deadline"] > 0
    rfc = vpmu.run(record(ms=20.0))
    assert "fastpath_bailout" not in rfc.ledger["events"]


def _loads_for_5_fastpath_exits(m: vpmu.Machine) -> int:
    """The PMU loads five fastpath exits of vCPU 0 cost, the switches before charged."""
    m.strategy.finish()
    switches = m.ledger.context_switches
    before = switches["pmu_load"]
    m.vcpus[0].count_exit("fastpath:tsc_deadline", 5)
    m.strategy.finish()
    return switches["pmu_load"] - before


def test_the_bail_out_costs_a_put_load_per_fastpath_exit() -> None:
    m = vpmu.Machine.from_dict({**V2_620, "strategy": {"name": "mediated"}})
    cpu = m.vcpus[0]

    assert _loads_for_5_fastpath_exits(m) == 0  # nothing counts: the fastpath stays in the loop
    cpu.wrmsr(0x186, 0x4300C4)  # branches
    assert _loads_for_5_fastpath_exits(m) == 5
    assert m.ledger.events["fastpath_bailout"] == 5
    rfc = vpmu.Machine.from_dict(
        {
            "pmu": {"backend": "intel", "version": 5, "gp_counters": 8, "fixed_counters": 3},
            "host": {"version": 5, "full_width_writes": True},
            "strategy": {"name": "mediated", "mode": "rfc"},
        }
    )
    rfc.vcpus[0].wrmsr(0x186, 0x4300C4)
    assert _loads_for_5_fastpath_exits(rfc) == 0  # the RFC never bailed out


def test_a_fixed_counter_counting_instructions_bails_out_too() -> None:
    """kvm_pmu_is_fastpath_emulation_allowed() asks about every PMC that counts
    instructions, fixed counter 0 (INST_RETIRED.ANY) as well as a GP select
    (costs.md §3e); fixed counter 1 counts cycles and keeps the fastpath."""
    m = vpmu.Machine.from_dict({**V2_620, "strategy": {"name": "mediated"}})
    cpu = m.vcpus[0]

    cpu.wrmsr(0x38F, 0x3_0000_0000)  # GLOBAL_CTRL: fixed 0 and 1 (RESET sets GP bits only)
    cpu.wrmsr(0x38D, 0x3)  # FIXED_CTR_CTRL: fixed 0 at OS and USR
    assert _loads_for_5_fastpath_exits(m) == 5
    cpu.wrmsr(0x38D, 0x30)  # fixed 1 only
    assert _loads_for_5_fastpath_exits(m) == 0


def test_a_globally_disabled_instructions_counter_keeps_the_fastpath() -> None:
    """The bail-out asks pmc_counting_instructions *intersected with GLOBAL_CTRL*
    (kvm_pmu_is_fastpath_emulation_allowed, arch/x86/kvm/pmu.h in the 6.20 merge): a
    select that counts instructions but is off in GLOBAL_CTRL does not bail out."""
    m = vpmu.Machine.from_dict({**V2_620, "strategy": {"name": "mediated"}})
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C0)  # instructions on GP 0
    assert _loads_for_5_fastpath_exits(m) == 5
    cpu.wrmsr(0x38F, 0x2)  # GLOBAL_CTRL: GP 1 only
    assert _loads_for_5_fastpath_exits(m) == 0
    cpu.wrmsr(0x38F, 0x1)
    assert _loads_for_5_fastpath_exits(m) == 5


# ------------------------------------------------- host NMI handler, NMI window
def test_the_host_nmi_handler_is_priced_under_emulated_only() -> None:
    table = CostTable()
    assert unit_cost(table, "pmis", "host_nmi") == table.host_nmi_handler
    assert unit_cost(table, "pmis", "mediated_vector") == table.mediated_pmi_irq
    emu = v2_record("6.20", strategy="emulated", ms=10.0)
    med = v2_record("6.20", ms=10.0)
    assert "pmi:host_nmi" in emu.cost.by_mechanism
    assert "pmi:host_nmi" not in med.cost.by_mechanism
    assert "pmi:mediated_vector" in med.cost.by_mechanism


@pytest.mark.parametrize(("vnmi", "extra"), [(True, 0), (False, 2)])
def test_amd_without_vnmi_takes_two_more_exits_per_nmi(vnmi: bool, extra: int) -> None:
    m = vpmu.Machine.from_dict(
        {
            "pmu": {"backend": "amd", "generation": "perfmon-v2", "gp_counters": 6},
            "host": {"vnmi": vnmi},
            "strategy": {"name": "emulated"},
        }
    )
    cpu = m.vcpus[0]
    drv = m.guest_driver(cpu)
    drv.unmask_pmi()
    drv.write_counter(0, (1 << 48) - 10)
    drv.program_gp(0, (0xC0, 0), usr=True, os=True, intr=True)
    drv.enable_all()
    cpu.retire("instructions", 20)
    exits = m.ledger.exits
    assert exits.get("nmi_window:iret", 0) == exits.get("nmi_window:db", 0) == extra // 2
    intel = vpmu.Machine.from_dict({**V2_620, "strategy": {"name": "emulated"}})
    assert not any(k.startswith("nmi_window") for k in intel.ledger.exits)


def test_a_fixed_counter_release_is_its_own_mechanism() -> None:
    m = vpmu.Machine.from_dict({**V2_620, "strategy": {"name": "emulated-legacy"}})
    cpu = m.vcpus[0]
    cpu.wrmsr(0x38F, 0x7 << 32 | 0xFF)
    cpu.wrmsr(0x38D, 0x3)
    cpu.wrmsr(0x38D, 0x0)
    cpu.wrmsr(0x38D, 0x3)  # a changed config: release + create
    cpu.wrmsr(0x186, 0x4300C4)
    cpu.wrmsr(0x186, 0x4300C5)
    assert m.ledger.perf_ops["release_fixed"] >= 1
    assert m.ledger.perf_ops["release"] == 1
    table = CostTable()
    assert unit_cost(table, "perf_ops", "release_fixed") == 2_000_000.0


# ------------------------------------------------ 2018: pmc_refcount crossing zero
@pytest.mark.parametrize(("watchdog", "expected"), [(False, 2 * 4), (True, 0)])
def test_the_hosts_only_event_reserves_and_releases_every_cpus_ds_buffers(
    watchdog: bool, expected: int
) -> None:
    """x86_reserve_hardware / x86_release_hardware run as pmc_refcount crosses zero;
    the NMI watchdog's events keep it above zero (why nowatchdog made it slow)."""
    m = vpmu.Machine.from_dict(
        {
            **V2_620,
            "host": {"pcpus": 4, "nmi_watchdog": watchdog},
            "strategy": {"name": "emulated-legacy"},
        }
    )
    cpu = m.vcpus[0]
    cpu.wrmsr(0x38F, 0xFF)
    cpu.wrmsr(0x186, 0x4300C4)  # create: 0 -> 1
    before = m.ledger.events.get("ds_buffers_cpu", 0)
    cpu.wrmsr(0x186, 0x4300C5)  # release (1 -> 0) + create (0 -> 1)
    assert m.ledger.events.get("ds_buffers_cpu", 0) - before == expected
