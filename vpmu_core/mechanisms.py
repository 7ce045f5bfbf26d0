"""The open price list: every mechanism the ledger counts, declared once.

A *mechanism* is one kind of thing a run does that costs host or hypervisor
time: a VM exit of some reason, a host perf API call, a PMI injection, an MSR a
context switch touched. The ledger counts it under ``(category, key)``
(``ledger.events["pmu_handle_event"] += 1``); this module says what that count
means and which cost prices it. vpmu's own mechanisms are the table
:data:`BUILTIN_MECHANISMS`; a plugin adds its own through the
``vpmu_register_mechanisms(register)`` hook, with a :class:`Cost` for every new
cost name, and they are priced and reported exactly like the built-in ones.

Why a declaration per key and not a default price: a key nobody declared used to
be priced at 0 without a word, so a plugin's mechanism silently cost nothing. Now
pricing a key with no declaration is an :class:`UnpricedMechanism` error naming
it. A mechanism may be declared *unpriced* (``cost=None``) when the model counts
it for the report but its price lies elsewhere; its ``meaning`` says where.

A key ending in ``*`` declares a family by prefix: exit reasons are
``wrmsr:<msr class>`` for every MSR class a backend or plugin invents, so they
are priced by pattern. An exact key wins over a pattern, a longer prefix over a
shorter one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import PluginError

#: The ledger's categories (``vpmu_core.ledger.Ledger`` has one dict of counts each).
CATEGORIES = ("exits", "perf_ops", "pmis", "context_switches", "switch_msrs", "events")

BUILTIN = "vpmu"  # the origin named for vpmu's own declarations


class Cost(BaseModel):
    """One cost's default in ns, the range its source supports, and the source.

    ``estimate`` marks a figure nobody measured (an assumption inside a range the
    source argues for); reports and docs name it as one. A config's ``[costs]``
    table may override the default with any value in ``[low, high]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ns: float = Field(ge=0, description="the default, in ns")
    low: float = Field(ge=0, description="lowest value the source supports, ns")
    high: float = Field(ge=0, description="highest value the source supports, ns")
    source: str = Field(min_length=1, description="where the figure comes from")
    estimate: bool = Field(False, description="no published measurement: an assumption")

    @model_validator(mode="after")
    def _in_range(self) -> Cost:
        if not self.low <= self.ns <= self.high:
            raise ValueError(f"ns = {self.ns} must lie in [low, high] = [{self.low}, {self.high}]")
        return self

    def describe(self) -> str:
        """The one-line text docs and ``vpmu schema`` show for this cost."""
        kind = "estimate" if self.estimate else "source"
        return f"{self.source} [{kind}; range {self.low:g}-{self.high:g} ns]"


class Mechanism(BaseModel):
    """One ledger key, what it means, and the cost that prices each count of it.

    ``cost`` is a cost name (a built-in cost-table field, or a new one this
    declaration gives a ``default`` for), a tuple of names whose sum is the
    price (an emulated PMU exit is ``("vm_exit", "kvm_pmu_emulation")``), or
    None: counted, but priced elsewhere, as ``meaning`` says.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str = Field(description="one of vpmu_core.ledger.CATEGORIES")
    key: str = Field(min_length=1, description="the ledger key; a trailing * matches by prefix")
    meaning: str = Field(min_length=1, description="one line: what one count stands for")
    cost: str | tuple[str, ...] | None = Field(description="cost name(s) pricing one count")
    default: Cost | None = Field(None, description="the default of a cost this declares")
    once: bool = Field(
        False,
        description="a one-time cost of bringing a host or VM up (the first perf event on an "
        "idle host), not of the steady state: reports show it on a line of its own",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Mechanism:
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} is not one of {', '.join(CATEGORIES)}")
        if "*" in self.key[:-1]:
            raise ValueError(f"key {self.key!r}: '*' may only end a key (a prefix pattern)")
        if "\n" in self.meaning:
            raise ValueError("meaning must be one line")
        if self.default is not None and not isinstance(self.cost, str):
            raise ValueError("a default needs cost to be the one new cost name it prices")
        if self.cost is not None and not all(n.isidentifier() for n in self.names):
            raise ValueError(f"cost {self.cost!r}: a cost name must be an identifier")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The cost names summed for one count (empty when unpriced)."""
        if self.cost is None:
            return ()
        return (self.cost,) if isinstance(self.cost, str) else self.cost

    @property
    def pattern(self) -> bool:
        """Whether the key is a ``prefix*`` family."""
        return self.key.endswith("*")


class UnpricedMechanism(PluginError):
    """A ledger key no plugin declared: pricing it at 0 would hide what it costs."""


_PREFIX = {"exits": "exit", "perf_ops": "perf", "pmis": "pmi"}


def price_key(category: str, key: str) -> str:
    """The name a mechanism has in a priced report (``exit:wrmsr:eventsel``)."""
    return f"{_PREFIX.get(category, category)}:{key}"


def split_price_key(name: str) -> tuple[str, str]:
    """``exit:wrmsr:eventsel`` -> ``("exits", "wrmsr:eventsel")``: the inverse of price_key."""
    prefix, _, key = name.partition(":")
    category = {v: k for k, v in _PREFIX.items()}.get(prefix, prefix)
    return category, key


class PriceList:
    """The declared mechanisms and cost defaults of one plugin manager.

    Built once per manager; :meth:`find` memoises what each ledger key resolved
    to, so pricing a ledger costs one dict lookup per key.
    """

    def __init__(
        self,
        costs: dict[str, Cost],
        declared: Iterable[tuple[str, Mechanism]],
    ) -> None:
        self.costs: dict[str, Cost] = dict(costs)
        self.builtin_costs = frozenset(costs)
        self.mechanisms: dict[tuple[str, str], Mechanism] = {}
        self.origin: dict[tuple[str, str], str] = {}
        self.cost_origin: dict[str, str] = {}
        for plugin, mech in declared:
            self._add(plugin, mech)
        for (category, key), mech in self.mechanisms.items():
            for name in mech.names:
                if name not in self.costs and name not in self.builtin_costs:
                    who = self.origin[(category, key)]
                    raise PluginError(
                        f"plugin {who!r} declared mechanism {category}[{key!r}] priced by "
                        f"unknown cost {name!r}; known costs: {', '.join(sorted(self.costs))}"
                    )
        self._patterns = sorted(
            ((c, k[:-1], m) for (c, k), m in self.mechanisms.items() if m.pattern),
            key=lambda t: -len(t[1]),
        )
        self._found: dict[tuple[str, str], Mechanism] = {}

    def _add(self, plugin: str, mech: Mechanism) -> None:
        where = (mech.category, mech.key)
        other = self.origin.get(where)
        if other is not None:
            raise PluginError(
                f"mechanism {mech.category}[{mech.key!r}] is declared by both {other!r} "
                f"and {plugin!r}"
            )
        if mech.default is not None:
            assert isinstance(mech.cost, str)  # checked by Mechanism
            if mech.cost in self.costs or mech.cost in self.builtin_costs:
                first = self.cost_origin.get(mech.cost, BUILTIN)
                raise PluginError(
                    f"plugin {plugin!r} declared cost {mech.cost!r} with a default, but "
                    f"{first!r} already declares it; name an existing cost without a default"
                )
            self.costs[mech.cost] = mech.default
            self.cost_origin[mech.cost] = plugin
        self.mechanisms[where] = mech
        self.origin[where] = plugin

    @property
    def plugin_costs(self) -> dict[str, Cost]:
        """Costs declared by plugins, not by vpmu."""
        return {n: c for n, c in self.costs.items() if n not in self.builtin_costs}

    def find(self, category: str, key: str) -> Mechanism:
        """The mechanism pricing ``category[key]``; :class:`UnpricedMechanism` if none."""
        found = self._found.get((category, key))
        if found is not None:
            return found
        found = self.mechanisms.get((category, key))
        if found is None:
            for c, prefix, m in self._patterns:
                if c == category and key.startswith(prefix):
                    found = m
                    break
        if found is None:
            raise UnpricedMechanism(
                f"ledger key {category}[{key!r}] has no declared mechanism: the plugin "
                "that counts it must declare it with the vpmu_register_mechanisms hook"
            )
        self._found[(category, key)] = found
        return found


def mechanism(category: str, key: str, cost: Any, meaning: str, *, once: bool = False) -> Mechanism:
    """Shorthand for the built-in table below."""
    return Mechanism(category=category, key=key, meaning=meaning, cost=cost, once=once)


_EXIT_PMU = ("vm_exit", "kvm_pmu_emulation")
_UNPRICED_PMI = "a count for the report; "

# Every mechanism vpmu itself counts, once. The meanings say what one count is;
# for an unpriced one, where its price is (or that the model leaves it out).
BUILTIN_MECHANISMS: tuple[Mechanism, ...] = (
    # --- exits: a round trip, plus KVM's emulation for a guest PMU access
    mechanism("exits", "wrmsr:*", _EXIT_PMU, "a guest WRMSR KVM intercepts, by MSR class"),
    mechanism("exits", "rdmsr:*", _EXIT_PMU, "a guest RDMSR KVM intercepts, by MSR class"),
    mechanism("exits", "rdpmc", _EXIT_PMU, "a guest RDPMC KVM intercepts"),
    mechanism("exits", "host_pmi", "vm_exit", "a host PMI (NMI or mediated vector) in guest mode"),
    mechanism("exits", "ext_intr", "vm_exit", "an external interrupt exit (the host tick)"),
    mechanism("exits", "fastpath:*", "vm_exit", "an exit KVM handles in its fastpath loop"),
    mechanism(
        "exits",
        "nmi_window:*",
        "vm_exit",
        "AMD without vNMI: the IRET intercept and single-step #DB after an injected NMI",
    ),
    # --- host perf API calls made for the guest
    mechanism("perf_ops", "create", "perf_create", "perf_event_create_kernel_counter"),
    mechanism(
        "perf_ops",
        "create_sched_rcu",
        "perf_sched_rcu",
        "the first perf event on a host with no other perf user: enabling perf_sched_events "
        "waits for an RCU grace period (costs.md §2b)",
        once=True,
    ),
    mechanism("perf_ops", "release", "perf_release", "perf_event_release_kernel"),
    mechanism(
        "perf_ops",
        "release_fixed",
        "perf_release_fixed",
        "perf_event_release_kernel of an event on a fixed counter",
    ),
    mechanism("perf_ops", "pause", "perf_pause", "perf_event_pause: disable, read, reset"),
    mechanism("perf_ops", "reuse", "perf_resume", "a paused event re-enabled for the same config"),
    mechanism("perf_ops", "period", "perf_period", "perf_event_period on a reused event"),
    mechanism(
        "perf_ops",
        "enable",
        None,
        "a perf group member enabled after its creation; no published figure, not modelled",
    ),
    # --- PMIs
    mechanism("pmis", "injected", "pmi_injection", "KVM_REQ_PMI turned into an LVTPC injection"),
    mechanism(
        "pmis",
        "host_nmi",
        "host_nmi_handler",
        "host perf's NMI handler for a host PMI (perf-backed strategies); the exit is "
        "exits[host_pmi]",
    ),
    mechanism(
        "pmis",
        "mediated_vector",
        "mediated_pmi_irq",
        "a mediated PMI's host IRQ and KVM_REQ_PMI; the exit is exits[host_pmi]",
    ),
    mechanism("pmis", "delivered", None, _UNPRICED_PMI + "the injection is pmis[injected]"),
    mechanism("pmis", "dropped_lvtpc_masked", None, "a PMI lost at a masked LVTPC: costs nothing"),
    # --- PMU context switches: their price is the MSRs they touched (switch_msrs)
    mechanism(
        "context_switches",
        "sched_in",
        None,
        "PMU state loaded at vCPU sched-in; priced by its switch_msrs",
    ),
    mechanism(
        "context_switches",
        "sched_out",
        None,
        "PMU state saved at vCPU sched-out; priced by its switch_msrs",
    ),
    mechanism(
        "context_switches",
        "pmu_load",
        "perf_guest_context",
        "a mediated put+load pair: perf's guest-context handover; its MSRs are switch_msrs",
    ),
    mechanism(
        "context_switches",
        "pmu_put",
        None,
        "mediated guest PMU context put; priced by its switch_msrs",
    ),
    # --- MSRs a context switch or VM transition touched, natively
    mechanism("switch_msrs", "wrmsr", "native_wrmsr", "a native WRMSR of a PMU context switch"),
    mechanism("switch_msrs", "rdmsr", "native_rdmsr", "a native RDMSR of a PMU context switch"),
    mechanism("switch_msrs", "rdpmc", "native_rdpmc", "a native RDPMC of a PMU context switch"),
    mechanism("switch_msrs", "vmcs", "vmcs_msr_switch", "an MSR a VM transition loads or stores"),
    mechanism("switch_msrs", "elided", None, "a write skipped because the value matched: free"),
    mechanism(
        "switch_msrs",
        "lvtpc",
        "native_wrmsr",
        "a host LVTPC write of a mediated put or load (x2APIC), priced as a PMU WRMSR",
    ),
    # --- everything else
    mechanism("events", "pmu_handle_event", "pmu_handle_event", "kvm_pmu_handle_event at VM entry"),
    mechanism("events", "hw_wrmsr", "native_wrmsr", "a guest value written to a host counter"),
    mechanism(
        "events", "guest_sample", "guest_sample_native", "the guest perf core's work per sample"
    ),
    mechanism("events", "pmi_reprogram", None, "a PMI reprograms; priced by its perf_ops"),
    mechanism(
        "events", "pmi_reprogram_skipped", None, "a PMI reprogram skipped (Kan Liang's RFC): free"
    ),
    mechanism("events", "lazy_release", None, "an idle event released; priced as perf_ops"),
    mechanism(
        "events", "direct_enable", None, "an enable written to the assigned counter: hw_wrmsr"
    ),
    mechanism(
        "events",
        "reprogram_scheduled_out",
        None,
        "a reprogram of an event host perf scheduled out; priced by its perf_ops",
    ),
    mechanism("events", "filter_refresh", None, "a mediated event-select filter check: the exit"),
    mechanism(
        "events",
        "fastpath_bailout",
        None,
        "6.20: a fastpath exit sent to the slow path while a mediated PMC counts "
        "instructions/branches; priced by the put+load it pays",
    ),
    mechanism("events", "filter_update", None, "KVM_SET_PMU_EVENT_FILTER; not modelled as cost"),
    mechanism("events", "counters_masked", None, "host counters lent to the guest; not priced"),
    mechanism("events", "counters_returned", None, "host counters given back; not priced"),
    mechanism(
        "events", "guest_event_sched_in", None, "host perf scheduled a guest event in: a count"
    ),
    mechanism(
        "events", "guest_event_sched_out", None, "host perf scheduled a guest event out: a count"
    ),
    mechanism(
        "events", "host_mux_rotation", None, "host perf rotated an over-committed PMU: a count"
    ),
    mechanism("events", "vcpu_migration", None, "a vCPU moved to another pCPU: a count"),
)
