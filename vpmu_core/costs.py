"""The cost table: what one mechanism event costs, in nanoseconds, with its source.

Every default is a published figure or lies inside a range that
``shared/spec/costs.md`` gives (section named in the field's description); a
config's ``[costs]`` table overrides any of them, and an unknown key is an error.
Figures quoted in cycles are converted at ``ghz``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from .ledger import CATEGORIES
from .mechanisms import BUILTIN, BUILTIN_MECHANISMS, PriceList, price_key


class CostTable(BaseModel):
    """Default costs (ns). The description of each field cites its source.

    Why one table and no per-config factor: the seed figures were measured on
    different machines, but a model that needs a knob per figure explains nothing.
    Where a figure is out of reach with these values, the report says which
    mechanism the model lacks.
    """

    model_config = ConfigDict(extra="forbid")
    prices: ClassVar[PriceList]  # the mechanisms this table prices; set below

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


def builtin_price_list() -> PriceList:
    """vpmu's own mechanisms, priced by the fields of :class:`CostTable`."""
    return PriceList({}, ((BUILTIN, m) for m in BUILTIN_MECHANISMS), builtin=_FIELDS)


_FIELDS = frozenset(n for n in CostTable.model_fields if n != "ghz")
CostTable.prices = builtin_price_list()


def cost_table_model(prices: PriceList) -> type[CostTable]:
    """A ``[costs]`` model that also takes the costs plugins declared, each in its range.

    Why a model per plugin manager: a plugin's cost is overridden in a config like
    a built-in one, and an unknown cost name stays an error (``extra="forbid"``).
    """
    extra = prices.plugin_costs
    if not extra:
        return CostTable
    fields: dict[str, Any] = {
        name: (float, Field(c.ns, ge=c.low, le=c.high, description=c.describe()))
        for name, c in extra.items()
    }
    model: type[CostTable] = create_model("PluginCostTable", __base__=CostTable, **fields)
    model.prices = prices
    return model


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

    prices = table.prices
    for category in CATEGORIES:
        for key, n in ledger.get(category, {}).items():
            mech = prices.find(category, key)
            if not mech.names:
                continue
            cost = sum(float(getattr(table, name)) for name in mech.names)
            name = price_key(category, key)
            by[name] = by.get(name, 0.0) + n * cost
            per[name] = cost
    total = sum(by.values())
    overhead = 100.0 * total / guest_ns if guest_ns > 0 else None
    return Priced(
        total_ns=total,
        by_mechanism=dict(sorted(by.items())),
        ns_per_op=dict(sorted(per.items())),
        guest_ns=guest_ns,
        overhead_pct=overhead,
    )
