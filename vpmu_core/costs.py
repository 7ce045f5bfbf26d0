"""The cost table: what one mechanism event costs, in nanoseconds, with its source.

Every default is a :class:`~vpmu_core.mechanisms.Cost`: a figure ``shared/spec/costs.md``
publishes or derives, the range that file supports (section named in its source),
and whether it is an estimate. A config's ``[costs]`` table overrides any of them
with a value inside that range; an unknown key is an error. Plugins add costs of
their own (``vpmu_register_mechanisms``); :func:`cost_table_model` builds the
table that accepts them. Figures quoted in cycles are converted at 2.5 GHz.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
    model_validator,
)

from .errors import ConfigError
from .mechanisms import BUILTIN, BUILTIN_MECHANISMS, Cost, PriceList, price_key

BUILTIN_COSTS: dict[str, Cost] = {
    "host_nmi_handler": Cost(
        ns=1500.0,
        low=1000.0,
        high=5000.0,
        estimate=True,
        source="host perf's NMI handler for one host PMI (perf_event_nmi_handler -> "
        "intel_pmu_handle_irq -> kvm_perf_overflow), under the perf-backed strategies only; a "
        "mediated PMI is an ordinary IRQ (costs.md §3e). Weak: perf's own running average in "
        "public dmesg puts the bare-metal handler at 2.5-5 µs with sample output; KVM's "
        "overflow callback does less",
    ),
    "perf_guest_context": Cost(
        ns=200.0,
        low=100.0,
        high=300.0,
        estimate=True,
        source="perf_load_guest_context + perf_put_guest_context with no host events: lock, "
        "context disable/enable, EVENT_GUEST sched, per put+load pair (costs.md §3e)",
    ),
    "mediated_pmi_irq": Cost(
        ns=350.0,
        low=200.0,
        high=500.0,
        estimate=True,
        source="the host side of a mediated PMI: the PERF_GUEST_MEDIATED_PMI_VECTOR IRQ and "
        "kvm_make_request(KVM_REQ_PMI) (costs.md §3e, code v6 19/44)",
    ),
    "ds_buffers_cpu": Cost(
        ns=20_000.0,
        low=5_000.0,
        high=65_000.0,
        estimate=True,
        source="one possible host CPU's share of x86_reserve_hardware or x86_release_hardware "
        "(arch/x86/events/core.c), run when the host's hardware-event count pmc_refcount "
        "crosses zero, i.e. only with no NMI watchdog or other host perf user: its DS, PEBS "
        "and BTS buffers allocated or freed and mapped in or out of the cpu_entry_area, each "
        "with a kernel TLB-shootdown broadcast (intel/ds.c ds_update_cea/ds_clear_cea, since "
        "4.15), plus one wrmsr_on_cpu IPI for DS_AREA. No published figure (costs.md §1a, §2a "
        "give the totals it would be part of): 3 broadcast IPIs of 5-20 µs and one 2-5 µs "
        "IPI assumed",
    ),
    "perf_release_fixed": Cost(
        ns=2_000_000.0,
        low=30_000.0,
        high=2_000_000.0,
        source="perf_event_release_kernel of a fixed-counter event: 2 ms (costs.md §1b Table 1, "
        "§3e; E5-2699 v4, Linux 5.0, host nowatchdog), probably a maximum; the GP figure "
        "(30 µs) bounds it below",
    ),
    "vm_exit": Cost(
        ns=600.0,
        low=400.0,
        high=900.0,
        source="bare VM exit + entry round trip: ~1,500 cycles at 2.5 GHz (costs.md §4a, "
        "Sean Christopherson 24 May 2021, YKwd5OTXr97Fxfok@google.com); range 1,000-1,500 "
        "cycles on modern Intel, AMD ~1.5x (§4a)",
    ),
    "kvm_pmu_emulation": Cost(
        ns=200.0,
        low=200.0,
        high=1200.0,
        source="KVM's emulation of one PMU MSR access or RDPMC with no perf call: "
        "kvm_pmu_rdpmc = 200 ns (costs.md §1b, Table 1). With vm_exit this makes a handled "
        "PMU exit 800 ns = 2,000 cycles; range: the 2,000-4,000 cycles of a handled PMU exit "
        "less a 1,000-1,500 cycle round trip (costs.md §4a)",
    ),
    "pmi_injection": Cost(
        ns=1500.0,
        low=200.0,
        high=6000.0,
        estimate=True,
        source="KVM_REQ_PMI -> LVTPC injection, excluding the guest handler. No published "
        "figure (costs.md §3e); a part of the 6-9 µs of a whole optimised guest PMI "
        "(costs.md §4d), above the 200-500 ns host side of a mediated PMI (§3e)",
    ),
    "pmu_handle_event": Cost(
        ns=97.0,
        low=97.0,
        high=200.0,
        source="kvm_pmu_handle_event() when it reprograms nothing: 97 ns average "
        "(costs.md §2a, Kan Liang RFC 6 Dec 2018, 4-socket SKX); at most the 200 ns of "
        "KVM's other perf-free PMU step, kvm_pmu_rdpmc (§1b Table 1)",
    ),
    "perf_create": Cost(
        ns=25000.0,
        low=10000.0,
        high=100000.0,
        source="perf_event_create_kernel_counter, steady state: 'tens of µs' "
        "(costs.md §4c; 25 µs fixed-counter maximum of §1b Table 1)",
    ),
    "perf_sched_rcu": Cost(
        ns=21_000_000.0,
        low=21_000_000.0,
        high=30_000_000.0,
        source="extra cost of a creation that flips perf_sched_events (account_event -> "
        "static_branch_enable + synchronize_rcu) when no other host perf user holds it: "
        "'maximum 21000000 ns' (costs.md §2b, commit a6da0d77e98e; cause per Like Xu, "
        "d0341842-3acd-5a9d-2b75-ab214fe9b659@linux.intel.com), 30 ms GP maximum in §1b "
        "Table 1. A maximum: no average was published",
    ),
    "perf_release": Cost(
        ns=30000.0,
        low=30000.0,
        high=2_000_000.0,
        source="perf_event_release_kernel: 30 µs GP to 2 ms fixed, maxima (costs.md §1b, §4c)",
    ),
    "perf_pause": Cost(
        ns=1000.0,
        low=1000.0,
        high=5000.0,
        estimate=True,
        source="perf_event_pause (disable+read+reset); no published figure, 1-5 µs "
        "assumed (costs.md §7)",
    ),
    "perf_resume": Cost(
        ns=1000.0,
        low=1000.0,
        high=5000.0,
        estimate=True,
        source="re-enable of a reused event; no published figure, 1-5 µs assumed (costs.md §7)",
    ),
    "perf_period": Cost(
        ns=5378.0,
        low=1000.0,
        high=5378.0,
        source="perf_event_period: 5,378 ns on E5-2699 sampling several events, 'unstable' "
        "and lower with fewer (costs.md §2c); no lower figure, so the 1 µs assumed for "
        "perf_event_pause (§7) bounds it below",
    ),
    "native_wrmsr": Cost(
        ns=48.0,
        low=32.0,
        high=68.0,
        source="native PMU WRMSR: 80-170 cycles (costs.md §4e) = 120 cycles",
    ),
    "native_rdmsr": Cost(
        ns=16.0,
        low=12.0,
        high=20.0,
        source="native RDMSR: 30-50 cycles (costs.md §4e, weak) = 40 cycles",
    ),
    "native_rdpmc": Cost(
        ns=12.0,
        low=8.0,
        high=16.0,
        source="native RDPMC: ~20-40 cycles (costs.md §4e, weak) = 30 cycles",
    ),
    "guest_sample_native": Cost(
        ns=2500.0,
        low=0.0,
        high=2500.0,
        estimate=True,
        source="the guest perf core's own software work per sample, MSR accesses "
        "excluded (perf_event_overflow: period adjustment, perf_prepare_sample, "
        "perf_output_sample). No measurement was published; the value is the bound perf "
        "itself enforces natively: perf_sample_allowed_ns = 10 µs x 25% = 2.5 µs at the "
        "default max sample rate (costs.md §5, §4d). An upper bound, not an average",
    ),
    "vmcs_msr_switch": Cost(
        ns=68.0,
        low=32.0,
        high=68.0,
        source="one MSR loaded or stored by a VM transition (VMCS / auto-load list): "
        "~170 cycles (costs.md §4a, derived from 3 MSRs taking 1,500 to >2,000 cycles); "
        "80 cycles at least, as a PMU WRMSR (§4e)",
    ),
}

BUILTIN_PRICES = PriceList(BUILTIN_COSTS, ((BUILTIN, m) for m in BUILTIN_MECHANISMS))


def _field(c: Cost) -> Any:
    """A cost-table field for one cost: its default and the text the schema shows."""
    return Field(c.ns, ge=0, description=c.describe())


def _cost(name: str) -> Any:
    return _field(BUILTIN_COSTS[name])


class CostTable(BaseModel):
    """Default costs (ns). The description of each field cites its source and range.

    Why one table and no per-config factor: the seed figures were measured on
    different machines, but a model that needs a knob per figure explains nothing.
    Where a figure is out of reach with these values, the report says which
    mechanism the model lacks. ``prices`` is the price list the table prices with:
    vpmu's own here, the plugins' too in a table :func:`cost_table_model` built.
    """

    model_config = ConfigDict(extra="forbid")
    prices: ClassVar[PriceList] = BUILTIN_PRICES

    ghz: float = Field(
        2.5, gt=0, description="a parameter, no cost: the clock the cycle figures assume"
    )
    host_nmi_handler: float = _cost("host_nmi_handler")
    perf_guest_context: float = _cost("perf_guest_context")
    mediated_pmi_irq: float = _cost("mediated_pmi_irq")
    perf_release_fixed: float = _cost("perf_release_fixed")
    ds_buffers_cpu: float = _cost("ds_buffers_cpu")
    vm_exit: float = _cost("vm_exit")
    kvm_pmu_emulation: float = _cost("kvm_pmu_emulation")
    pmi_injection: float = _cost("pmi_injection")
    pmu_handle_event: float = _cost("pmu_handle_event")
    perf_create: float = _cost("perf_create")
    perf_sched_rcu: float = _cost("perf_sched_rcu")
    perf_release: float = _cost("perf_release")
    perf_pause: float = _cost("perf_pause")
    perf_resume: float = _cost("perf_resume")
    perf_period: float = _cost("perf_period")
    native_wrmsr: float = _cost("native_wrmsr")
    native_rdmsr: float = _cost("native_rdmsr")
    native_rdpmc: float = _cost("native_rdpmc")
    guest_sample_native: float = _cost("guest_sample_native")
    vmcs_msr_switch: float = _cost("vmcs_msr_switch")

    @model_validator(mode="after")
    def _in_range(self) -> CostTable:
        """An override must lie in the range its source supports (one line naming it)."""
        for name, cost in type(self).prices.costs.items():
            value = getattr(self, name)
            if not cost.low <= value <= cost.high:
                raise ConfigError(
                    f"costs.{name}",
                    value,
                    f"must lie in [{cost.low:g}, {cost.high:g}] ns, the range of its "
                    f"source: {cost.source}",
                )
        return self


PARAMETERS = ("ghz",)  # cost-table fields that are no cost


def cost_table_model(prices: PriceList) -> type[CostTable]:
    """The ``[costs]`` model for a price list: the built-in table plus the plugins' costs."""
    if prices is BUILTIN_PRICES:
        return CostTable
    extra: dict[str, Any] = {n: (float, _field(c)) for n, c in prices.plugin_costs.items()}
    model = create_model("CostTable", __base__=CostTable, **extra)
    model.prices = prices
    return model


def unit_cost(table: CostTable, category: str, key: str) -> float | None:
    """What one count of ``category[key]`` costs; None when declared unpriced."""
    mech = type(table).prices.find(category, key)
    if mech.cost is None:
        return None
    total = 0.0
    for name in mech.names:
        total += float(getattr(table, name))
    return total


class Priced(BaseModel):
    """A ledger priced with a cost table."""

    total_ns: float
    by_mechanism: dict[str, float]
    ns_per_op: dict[str, float]
    guest_ns: float
    overhead_pct: float | None
    one_time: dict[str, float] = Field(
        default_factory=dict,
        description="mechanism -> ns of the one-time costs in total_ns (a mechanism declared "
        "once, e.g. perf:create_sched_rcu, the 21 ms of the first perf event on an idle host)",
    )
    steady_ns: float = Field(0.0, description="total_ns without the one-time costs")
    steady_pct: float | None = Field(None, description="steady_ns as a share of guest time, %")
    dominant: str | None = Field(
        None, description="the steady-state mechanism costing most (the one-time one if none)"
    )
    dominant_pct: float | None = Field(
        None,
        description="the dominant mechanism's share of the steady state (or of the "
        "one-time costs when it is one), %",
    )
    plugin_costs: dict[str, str] = Field(
        default_factory=dict,
        description="mechanism -> the plugin-declared cost pricing it and its source "
        "(left out of the JSON when no plugin cost priced anything)",
    )

    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("plugin_costs"):
            data.pop("plugin_costs", None)
        return data


# The order ledger categories are summed in: the one today's figures were taken with
# (float addition is not associative, so a new order could move a last digit).
PRICE_ORDER = ("exits", "perf_ops", "pmis", "events", "switch_msrs", "context_switches")


def price(ledger: Mapping[str, Mapping[str, int]], table: CostTable, guest_ns: float) -> Priced:
    """Nanoseconds of hypervisor/host work a ledger stands for, and its share of guest time.

    Every key is priced by its declared mechanism (``table``'s price list); a key
    no plugin declared raises :class:`~vpmu_core.mechanisms.UnpricedMechanism`
    naming it.
    """
    by: dict[str, float] = {}
    per: dict[str, float] = {}
    once: dict[str, float] = {}
    sources: dict[str, str] = {}
    prices = type(table).prices
    unknown = [c for c in ledger if c not in PRICE_ORDER]
    if unknown:
        raise ConfigError("ledger", unknown[0], f"not a ledger category: {', '.join(PRICE_ORDER)}")
    for category in PRICE_ORDER:
        for key, n in ledger.get(category, {}).items():
            cost = unit_cost(table, category, key)
            if cost is None:
                continue
            name = price_key(category, key)
            by[name] = by.get(name, 0.0) + n * cost
            per[name] = cost
            mech = prices.find(category, key)
            if mech.once and n:
                once[name] = once.get(name, 0.0) + n * cost
            for cost_name in mech.names:
                if cost_name in prices.cost_origin:
                    sources[name] = (
                        f"{cost_name} ({prices.cost_origin[cost_name]}): "
                        f"{prices.costs[cost_name].describe()}"
                    )
    total = sum(by.values())
    overhead = 100.0 * total / guest_ns if guest_ns > 0 else None
    steady = {k: v for k, v in by.items() if k not in once}
    steady_ns = sum(steady.values())
    pool = steady or once
    ranked = sorted(pool.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ranked[0] if ranked and ranked[0][1] > 0 else None
    return Priced(
        total_ns=total,
        by_mechanism=dict(sorted(by.items())),
        ns_per_op=dict(sorted(per.items())),
        guest_ns=guest_ns,
        overhead_pct=overhead,
        one_time=dict(sorted(once.items())),
        steady_ns=steady_ns,
        steady_pct=100.0 * steady_ns / guest_ns if guest_ns > 0 else None,
        dominant=top[0] if top else None,
        dominant_pct=100.0 * top[1] / sum(pool.values()) if top else None,
        plugin_costs=dict(sorted(sources.items())),
    )
