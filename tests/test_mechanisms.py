"""The open price list: a plugin's mechanisms are priced like vpmu's own, none at a silent 0."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import vpmu_core as vpmu
from vpmu_core.costs import BUILTIN_COSTS, PARAMETERS, CostTable, cost_table_model, price
from vpmu_core.mechanisms import BUILTIN_MECHANISMS, UnpricedMechanism


class LoadPlugin:
    """A third-party plugin declaring one mechanism with a new, sourced cost."""

    @vpmu.hookimpl
    def vpmu_register_mechanisms(self, register: Any) -> None:
        register(
            vpmu.Mechanism(
                category="events",
                key="test_ctxt_load",
                meaning="a test plugin loads a PMU context",
                cost="test_ctxt_load",
                default=vpmu.Cost(
                    ns=1200.0, low=800.0, high=2000.0, source="a test", estimate=True
                ),
            )
        )


def manager() -> vpmu.PluginManager:
    return vpmu.PluginManager(plugins=[("test-load", LoadPlugin())])


def test_a_plugin_mechanism_is_priced_with_its_own_cost() -> None:
    table = cost_table_model(manager().prices)()
    priced = price({"events": {"test_ctxt_load": 3}}, table, 1_000_000.0)
    assert priced.total_ns == 3600.0
    assert priced.by_mechanism == {"events:test_ctxt_load": 3600.0}
    assert priced.ns_per_op == {"events:test_ctxt_load": 1200.0}


def test_a_plugin_cost_is_overridden_inside_its_range() -> None:
    table = cost_table_model(manager().prices)(test_ctxt_load=1000.0)
    assert price({"events": {"test_ctxt_load": 2}}, table, 1.0).total_ns == 2000.0


def config(costs: dict[str, float]) -> dict[str, Any]:
    data = tomllib.loads(Path("configs/intel-kvm.toml").read_text(encoding="utf-8"))
    return {**data, "costs": costs}


def test_a_config_overrides_a_plugin_cost() -> None:
    cfg = vpmu.load_config(config({"test_ctxt_load": 900.0}), manager())
    assert cfg.costs.test_ctxt_load == 900.0


@pytest.mark.parametrize("value", [799.0, 2000.5])
def test_a_plugin_cost_outside_its_range_is_refused(value: float) -> None:
    with pytest.raises(vpmu.ConfigError, match=r"costs\.test_ctxt_load = .*\[800, 2000\]"):
        vpmu.load_config(config({"test_ctxt_load": value}), manager())


def test_a_plugin_cost_is_unknown_without_the_plugin() -> None:
    with pytest.raises(vpmu.ConfigError, match="test_ctxt_load"):
        vpmu.load_config(config({"test_ctxt_load": 900.0}), vpmu.PluginManager())


def test_an_undeclared_key_is_an_error_naming_it() -> None:
    with pytest.raises(
        UnpricedMechanism, match=r"events\['nobody_declared'\] has no declared mechanism"
    ):
        price({"events": {"nobody_declared": 1}}, CostTable(), 1.0)


def test_without_the_plugin_its_key_is_undeclared() -> None:
    with pytest.raises(UnpricedMechanism, match="test_ctxt_load"):
        price({"events": {"test_ctxt_load": 1}}, CostTable(), 1.0)


def test_every_builtin_cost_prices_some_mechanism() -> None:
    used: set[str] = set()
    for m in BUILTIN_MECHANISMS:
        if m.cost is not None:
            used.update([m.cost] if isinstance(m.cost, str) else m.cost)
    assert set(CostTable.model_fields) - set(PARAMETERS) == used
    assert used <= set(BUILTIN_COSTS)


def test_every_builtin_default_lies_in_its_range() -> None:
    for name, cost in BUILTIN_COSTS.items():
        assert cost.low <= getattr(CostTable(), name) <= cost.high, name


def test_a_machine_ledger_refuses_an_undeclared_key_at_its_first_count() -> None:
    """Never a silent 0: the count itself fails, naming the key and where it was counted."""
    m = vpmu.Machine.from_dict({"pmu": {"backend": "intel"}})
    m.ledger.events["pmu_handle_event"] += 2  # declared: counts as before
    assert m.ledger.events["pmu_handle_event"] == 2
    with pytest.raises(UnpricedMechanism) as info:
        m.ledger.events["nobody_declared"] += 1
    assert "events['nobody_declared'] has no declared mechanism" in str(info.value)
    assert f"(counted at {__name__}:" in str(info.value)
    assert "nobody_declared" not in m.ledger.events


def test_a_plugin_key_counts_once_the_plugin_declares_it() -> None:
    m = vpmu.Machine.from_dict({"pmu": {"backend": "intel"}}, manager())
    m.ledger.events["test_ctxt_load"] += 3
    assert m.ledger.as_dict()["events"] == {"test_ctxt_load": 3}
    with pytest.raises(UnpricedMechanism, match="test_ctxt_load"):
        vpmu.Machine.from_dict({"pmu": {"backend": "intel"}}).ledger.events["test_ctxt_load"] += 1


# The ranges spec/costs.md gives, in ns (cycles at 2.5 GHz where it gives cycles), and
# whether it calls the figure an estimate. A builtin cost must keep to them: a default,
# low or high moved outside breaks "every value inside the range the spec gives it".
SPEC_RANGES: dict[str, tuple[float, float, bool]] = {
    "host_nmi_handler": (1_000, 5_000, True),  # §3e, weak
    "perf_guest_context": (100, 300, True),  # §3e, estimate
    "mediated_pmi_irq": (200, 500, True),  # §3e, estimate
    "perf_release_fixed": (30_000, 2_000_000, False),  # §3e (§1b Table 1)
    "perf_release": (30_000, 2_000_000, False),  # §1b Table 1, §4c
    "pmu_handle_event": (97, 200, False),  # §2a (97 ns), §1b kvm_pmu_rdpmc 200 ns
    "perf_period": (1_000, 5_378, False),  # §2c, "unstable"
    "perf_pause": (1_000, 5_000, True),  # §7 "unknown; assume 1-5 µs"
    "perf_resume": (1_000, 5_000, True),  # §7
    "perf_sched_rcu": (21_000_000, 30_000_000, False),  # §2b a6da0d77e98e, §1b
    "native_wrmsr": (32, 68, False),  # §3e 80-150 cyc, §7 80-170 cyc
}


@pytest.mark.parametrize("name", sorted(SPEC_RANGES))
def test_a_cost_keeps_to_the_range_the_spec_gives(name: str) -> None:
    low, high, estimate = SPEC_RANGES[name]
    cost = BUILTIN_COSTS[name]
    assert low <= cost.low <= cost.ns <= cost.high <= high, (name, cost)
    assert cost.estimate is estimate, name
