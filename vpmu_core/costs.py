"""The cost table: what one mechanism event costs, in nanoseconds, with its source.

Every default is a published figure or lies inside a range that
``shared/spec/costs.md`` gives (section named in the field's description); a
config's ``[costs]`` table overrides any of them, and an unknown key is an error.
Figures quoted in cycles are converted at ``ghz``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CostTable(BaseModel):
    """Default costs (ns). The description of each field cites its source.

    Why one table and no per-config factor: the seed figures were measured on
    different machines, but a model that needs a knob per figure explains nothing.
    Where a figure is out of reach with these values, the report says which
    mechanism the model lacks.
    """

    model_config = ConfigDict(extra="forbid")

    ghz: float = Field(2.5, gt=0, description="clock used to convert cycle figures to ns")
    vm_exit: float = Field(
        600.0,
        ge=0,
        description="bare VM exit + entry round trip: ~1,500 cycles at 2.5 GHz "
        "(costs.md §4a, Sean Christopherson 24 May 2021, YKwd5OTXr97Fxfok@google.com)",
    )
    kvm_pmu_emulation: float = Field(
        200.0,
        ge=0,
        description="KVM's emulation of one PMU MSR access or RDPMC with no perf call: "
        "kvm_pmu_rdpmc = 200 ns (costs.md §1b, Table 1). With vm_exit this makes a handled "
        "PMU exit 800 ns = 2,000 cycles, inside the 2,000-4,000 cycles of costs.md §4a",
    )
    pmi_injection: float = Field(
        1500.0,
        ge=0,
        description="KVM_REQ_PMI -> LVTPC injection, excluding the guest handler "
        "(costs.md §4d: a whole optimised guest PMI is 6-9 µs; this is a part of it)",
    )
    pmu_handle_event: float = Field(
        97.0,
        ge=0,
        description="kvm_pmu_handle_event() when it reprograms nothing: 97 ns average "
        "(costs.md §2a, Kan Liang RFC 6 Dec 2018, 4-socket SKX)",
    )
    perf_create: float = Field(
        25000.0,
        ge=0,
        description="perf_event_create_kernel_counter, steady state: 'tens of µs' "
        "(costs.md §4c; 25 µs fixed-counter maximum of §1b Table 1)",
    )
    perf_sched_rcu: float = Field(
        21_000_000.0,
        ge=0,
        description="extra cost of a creation that flips perf_sched_events (account_event -> "
        "static_branch_enable + synchronize_rcu) when no other host perf user holds it: "
        "'maximum 21000000 ns' (costs.md §2b, commit a6da0d77e98e; cause per Like Xu, "
        "d0341842-3acd-5a9d-2b75-ab214fe9b659@linux.intel.com). A maximum: no average "
        "was published",
    )
    perf_release: float = Field(
        30000.0, ge=0, description="perf_event_release_kernel, GP (costs.md §1b, §4c: 30 µs)"
    )
    perf_pause: float = Field(
        1000.0,
        ge=0,
        description="perf_event_pause (disable+read+reset); no published figure, 1-5 µs "
        "assumed (costs.md §7)",
    )
    perf_resume: float = Field(
        1000.0, ge=0, description="re-enable of a reused event; 1-5 µs assumed (costs.md §7)"
    )
    perf_period: float = Field(
        5378.0, ge=0, description="perf_event_period (costs.md §2c: 5,378 ns on E5-2699)"
    )
    native_wrmsr: float = Field(
        48.0, ge=0, description="native PMU WRMSR: 80-170 cycles (costs.md §4e) = 120 cycles"
    )
    native_rdmsr: float = Field(
        16.0, ge=0, description="native RDMSR: 30-50 cycles (costs.md §4e, weak) = 40 cycles"
    )
    native_rdpmc: float = Field(
        12.0, ge=0, description="native RDPMC: ~20-40 cycles (costs.md §4e, weak) = 30 cycles"
    )
    guest_sample_native: float = Field(
        2500.0,
        ge=0,
        description="the guest perf core's own software work per sample, MSR accesses "
        "excluded (perf_event_overflow: period adjustment, perf_prepare_sample, "
        "perf_output_sample). No measurement was published; the value is the bound perf "
        "itself enforces natively: perf_sample_allowed_ns = 10 µs x 25% = 2.5 µs at the "
        "default max sample rate (costs.md §5, §4d). An upper bound, not an average",
    )
    vmcs_msr_switch: float = Field(
        68.0,
        ge=0,
        description="one MSR loaded or stored by a VM transition (VMCS / auto-load list): "
        "~170 cycles (costs.md §4a, derived from 3 MSRs taking 1,500 to >2,000 cycles)",
    )


# Which cost-table field prices which ledger entry. Exit reasons are priced by
# prefix: a guest PMU access (wrmsr:*, rdmsr:*, rdpmc) is a round trip plus KVM's
# emulation; any other exit (a host PMI's NMI exit, a host tick) is a round trip.
PERF_OP_COSTS = {
    "create": "perf_create",
    "create_sched_rcu": "perf_sched_rcu",
    "release": "perf_release",
    "pause": "perf_pause",
    "reuse": "perf_resume",
    "period": "perf_period",
}
PMI_COSTS = {"injected": "pmi_injection"}
EVENT_COSTS = {
    "pmu_handle_event": "pmu_handle_event",
    "hw_wrmsr": "native_wrmsr",
    "guest_sample": "guest_sample_native",
}
SWITCH_COSTS = {
    "wrmsr": "native_wrmsr",
    "rdmsr": "native_rdmsr",
    "rdpmc": "native_rdpmc",
    "vmcs": "vmcs_msr_switch",
}


def exit_cost(table: CostTable, reason: str) -> float:
    """What one exit of ``reason`` costs."""
    if reason == "rdpmc" or reason.startswith(("wrmsr:", "rdmsr:")):
        return table.vm_exit + table.kvm_pmu_emulation
    return table.vm_exit


class Priced(BaseModel):
    """A ledger priced with a cost table."""

    total_ns: float
    by_mechanism: dict[str, float]
    ns_per_op: dict[str, float]
    guest_ns: float
    overhead_pct: float | None


def price(ledger: dict[str, dict[str, int]], table: CostTable, guest_ns: float) -> Priced:
    """Nanoseconds of hypervisor/host work a ledger stands for, and its share of guest time."""
    by: dict[str, float] = {}
    per: dict[str, float] = {}

    def add(mech: str, count: int, field: str) -> None:
        cost = float(getattr(table, field))
        by[mech] = by.get(mech, 0.0) + count * cost
        per[mech] = cost

    for reason, n in ledger.get("exits", {}).items():
        cost = exit_cost(table, reason)
        by[f"exit:{reason}"] = by.get(f"exit:{reason}", 0.0) + n * cost
        per[f"exit:{reason}"] = cost
    for op, n in ledger.get("perf_ops", {}).items():
        if op in PERF_OP_COSTS:
            add(f"perf:{op}", n, PERF_OP_COSTS[op])
    for kind, n in ledger.get("pmis", {}).items():
        if kind in PMI_COSTS:
            add(f"pmi:{kind}", n, PMI_COSTS[kind])
    for kind, n in ledger.get("events", {}).items():
        if kind in EVENT_COSTS:
            add(f"events:{kind}", n, EVENT_COSTS[kind])
    for kind, n in ledger.get("switch_msrs", {}).items():
        if kind in SWITCH_COSTS:
            add(f"switch_msrs:{kind}", n, SWITCH_COSTS[kind])
    total = sum(by.values())
    overhead = 100.0 * total / guest_ns if guest_ns > 0 else None
    return Priced(
        total_ns=total,
        by_mechanism=dict(sorted(by.items())),
        ns_per_op=dict(sorted(per.items())),
        guest_ns=guest_ns,
        overhead_pct=overhead,
    )
