"""The cost table: what one mechanism event costs, in nanoseconds, with its source.

Every default is a published figure or lies inside a range that
``shared/spec/costs.md`` gives (section named in the field's description); a
config's ``[costs]`` table overrides any of them, and an unknown key is an error.
Figures quoted in cycles are converted at ``ghz``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CostTable(BaseModel):
    """Default costs (ns). The description of each field cites its source."""

    model_config = ConfigDict(extra="forbid")

    ghz: float = Field(2.5, gt=0, description="clock used to convert cycle figures to ns")
    vm_exit_msr: float = Field(
        1200.0,
        ge=0,
        description="one handled PMU-MSR exit round trip, no perf calls: 2,000-4,000 cycles "
        "(costs.md §4a: SKX x2APIC WRMSR exit 3,293-4,238 cycles; EMR CPUID exit 3-4k)",
    )
    vm_exit_rdpmc: float = Field(
        1200.0, ge=0, description="one intercepted RDPMC round trip; same range as an MSR exit"
    )
    pmi_injection: float = Field(
        1500.0,
        ge=0,
        description="host NMI -> KVM_REQ_PMI -> LVTPC injection, excluding the guest handler "
        "(costs.md §4d: optimised PMI 6-9 µs total for a whole handler)",
    )
    perf_create: float = Field(
        25000.0,
        ge=0,
        description="perf_event_create_kernel_counter, steady state: 'tens of µs' "
        "(costs.md §4c; 25 µs fixed-counter figure of §1b)",
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
    native_rdpmc: float = Field(
        12.0, ge=0, description="native RDPMC: ~20-40 cycles (costs.md §4e, weak) = 30 cycles"
    )


# Which cost-table field prices which ledger entry. Exit reasons are priced by
# prefix: "rdpmc" on its own field, every MSR exit on vm_exit_msr.
PERF_OP_COSTS = {
    "create": "perf_create",
    "release": "perf_release",
    "pause": "perf_pause",
    "reuse": "perf_resume",
    "period": "perf_period",
}
PMI_COSTS = {"injected": "pmi_injection"}


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
        add(f"exit:{reason}", n, "vm_exit_rdpmc" if reason == "rdpmc" else "vm_exit_msr")
    for op, n in ledger.get("perf_ops", {}).items():
        if op in PERF_OP_COSTS:
            add(f"perf:{op}", n, PERF_OP_COSTS[op])
    for kind, n in ledger.get("pmis", {}).items():
        if kind in PMI_COSTS:
            add(f"pmi:{kind}", n, PMI_COSTS[kind])
    total = sum(by.values())
    overhead = 100.0 * total / guest_ns if guest_ns > 0 else None
    return Priced(
        total_ns=total,
        by_mechanism=dict(sorted(by.items())),
        ns_per_op=dict(sorted(per.items())),
        guest_ns=guest_ns,
        overhead_pct=overhead,
    )
