"""The five strategies end to end on Intel: what exits, what the host does, what it costs."""

from __future__ import annotations

from typing import Any

import pytest

import vpmu_core as vpmu
from vpmu_core.costs import CostTable

STRATEGIES = ["emulated-legacy", "emulated", "register", "fastpath", "mediated"]


def machine(strategy: str | dict[str, Any], **extra: Any) -> vpmu.Machine:
    """A v5 guest: under `mediated` only the RFC showed one (6.20 caps the guest at v2)."""
    if strategy == "mediated":
        strategy = {"name": "mediated", "mode": "rfc"}
    cfg: dict[str, Any] = {
        "pmu": {"backend": "intel", "version": 5, "gp_counters": 8, "fixed_counters": 4},
        "strategy": {"name": strategy} if isinstance(strategy, str) else strategy,
    }
    cfg.update(extra)
    return vpmu.Machine.from_dict(cfg)


V2_GUEST = {"backend": "intel", "version": 2, "gp_counters": 8, "fixed_counters": 3}


def mediated(host: dict[str, Any] | None = None, **options: Any) -> vpmu.Machine:
    """What 6.20 builds: a v2 guest (8 GP, 3 fixed) on a v5 host with full-width writes."""
    return vpmu.Machine.from_dict(
        {
            "pmu": V2_GUEST,
            "host": {"version": 5, "full_width_writes": True, **(host or {})},
            "strategy": {"name": "mediated", **options},
        }
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_counts_exactly(strategy: str) -> None:
    m = machine(strategy)
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C4)  # branches, OS+USR, EN
    cpu.retire("branches", 1000)
    assert cpu.rdmsr(0xC1) == 1000
    m.teardown()


def test_mediated_passes_counters_and_globals_through_but_not_eventsels() -> None:
    m = mediated()
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C4)
    cpu.rdmsr(0xC1)
    cpu.wrmsr(0x38F, 0xFF)
    cpu.rdpmc(0)
    assert dict(m.ledger.exits) == {"wrmsr:eventsel": 1}
    assert not m.ledger.perf_ops


def test_mediated_all_passthrough_option_passes_eventsels_too() -> None:
    m = mediated(passthrough_controls=True)
    m.vcpus[0].wrmsr(0x186, 0x4300C4)
    assert not m.ledger.exits


def test_mediated_refuses_a_pmu_without_status_set_saying_why() -> None:
    with pytest.raises(vpmu.ConfigError, match=r"host\.version = 2: .* version 4\+"):
        vpmu.Machine.from_dict(
            {"pmu": {"backend": "intel", "version": 2}, "strategy": {"name": "mediated"}}
        )


def test_mediated_refuses_a_host_with_the_nmi_watchdog() -> None:
    with pytest.raises(vpmu.ConfigError, match="system-wide"):
        mediated(host={"nmi_watchdog": True})


def test_mediated_intercepts_globals_when_host_has_more_counters() -> None:
    m = mediated(host={"gp_counters": 16})
    m.vcpus[0].wrmsr(0x38F, 0xFF)
    assert m.ledger.exits["wrmsr:global_ctrl"] == 1


@pytest.mark.parametrize(
    ("host", "exits"),
    [
        ({}, False),
        ({"gp_counters": 16}, True),  # counts differ
        ({"fixed_counters": 4}, True),
        ({"gp_width": 64}, True),  # widths differ (spec/intel.md §7)
        ({"fixed_width": 40}, True),
    ],
)
def test_mediated_rdpmc_passes_through_only_when_counts_and_widths_match(
    host: dict[str, int], exits: bool
) -> None:
    m = mediated(host=host)
    m.vcpus[0].rdpmc(0)
    assert m.ledger.exits.get("rdpmc", 0) == (1 if exits else 0)


def test_mediated_fixed_ctrl_is_always_intercepted_and_counters_never() -> None:
    m = mediated(host={"gp_counters": 16})
    cpu = m.vcpus[0]
    cpu.wrmsr(0x38D, 0x3)
    cpu.wrmsr(0x309, 5)
    cpu.wrmsr(0x4C1, 5)
    cpu.wrmsr(0xC1, 5)
    assert dict(m.ledger.exits) == {"wrmsr:fixed_ctrl": 1}


def test_legacy_recreates_on_enable_toggle_emulated_reuses_fastpath_writes_hw() -> None:
    creates = {}
    for s in ("emulated-legacy", "emulated", "fastpath"):
        m = machine(s)
        cpu = m.vcpus[0]
        cpu.wrmsr(0x186, 0x4300C4)
        before = m.ledger.perf_ops["create"]
        for _ in range(10):
            cpu.wrmsr(0x186, 0x0300C4)  # EN clear
            cpu.wrmsr(0x186, 0x4300C4)  # EN set
        creates[s] = m.ledger.perf_ops["create"] - before
    assert creates == {"emulated-legacy": 10, "emulated": 0, "fastpath": 0}


def test_first_creation_on_an_idle_host_pays_the_static_key_rcu_once() -> None:
    m = machine("emulated-legacy")
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C4)
    cpu.wrmsr(0x186, 0x4300C5)
    assert m.ledger.perf_ops["create"] == 2
    assert m.ledger.perf_ops["create_sched_rcu"] == 1


def test_register_masks_counters_from_host_perf_and_returns_them() -> None:
    m = machine("register", host={"perf_record": ["cycles"]})
    cpu0 = m.host.pcpus[0]
    assert cpu0.masked_gp == 8
    profiler = [e for e in cpu0.events if e.owner != "guest"]
    assert profiler and not profiler[0].running  # every counter went to the guest
    m.teardown()
    assert cpu0.masked_gp == 0 and profiler[0].running


def test_host_contention_schedules_a_guest_event_out_and_it_loses_counts() -> None:
    m = machine(
        "emulated",
        pmu={"backend": "intel", "version": 2, "gp_counters": 2, "fixed_counters": 0},
        host={"nmi_watchdog": True, "gp_counters": 2, "fixed_counters": 0},
    )
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C4)
    cpu.wrmsr(0x187, 0x4300C5)
    cpu.wrmsr(0x38F, 0x3)
    cpu.retire("branches", 1000)
    cpu.retire("branch-misses", 1000)
    # watchdog (pinned, created first) + 2 pinned guest events on 2 counters: the
    # second guest event finds no counter and its PMC silently stops counting
    assert m.ledger.events["guest_event_sched_out"] == 1
    assert cpu.rdmsr(0xC1) == 1000
    assert cpu.rdmsr(0xC2) == 0


def test_flexible_host_events_rotate_at_the_mux_interval() -> None:
    m = machine(
        "emulated",
        host={"perf_record": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]},
    )
    m.host.advance(10e6)
    assert m.ledger.events["host_mux_rotation"] == 10


def test_lazy_release_after_an_unused_slice() -> None:
    m = machine("emulated")
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C4)
    cpu.wrmsr(0x186, 0x0300C4)  # disabled, event kept (paused)
    assert m.ledger.perf_ops["release"] == 0
    m.host.advance(m.host.slice_ns * 2.5)
    assert m.ledger.perf_ops["release"] == 1
    assert m.ledger.events["lazy_release"] == 1


def test_unknown_cost_key_is_an_error() -> None:
    with pytest.raises(vpmu.ConfigError, match="unknown key"):
        vpmu.load_config({"pmu": {"backend": "intel"}, "costs": {"vm_exit_typo": 1}})


def test_every_default_cost_cites_costs_md() -> None:
    for name, field in CostTable.model_fields.items():
        if name == "ghz":
            continue
        assert field.description and "costs.md" in field.description, name


def test_compare_cli_writes_json_with_the_documented_keys(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from vpmu_core.cli import app

    out = tmp_path / "c.json"
    res = CliRunner().invoke(
        app,
        [
            "compare",
            "configs/seed-register.toml",
            "--strategies",
            "emulated-legacy,register",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    for s in ("emulated-legacy", "register"):
        for key in (
            "overhead_pct",
            "exits",
            "perf_ops",
            "pmis",
            "context_switches",
            "count_error_pct",
            "host_blind_s",
            "ns_per_op",
        ):
            assert key in data[s]
        assert set(data[s]["perf_ops"]) >= {"create", "release", "reuse", "period"}


def test_compare_cli_unknown_strategy_is_one_line_error() -> None:
    from typer.testing import CliRunner

    from vpmu_core.cli import app

    res = CliRunner().invoke(app, ["compare", "configs/seed-register.toml", "--strategies", "nope"])
    assert res.exit_code == 2
