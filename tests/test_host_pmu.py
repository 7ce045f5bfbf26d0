"""The host PMU is its own: each strategy's needs are checked against it, the guest's
view against the guest (issue 12; spec/intel.md §10, costs.md §3e)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import vpmu_core as vpmu
from vpmu_core.cli import app
from vpmu_core.host_pmu import resolve

V2 = {"backend": "intel", "version": 2, "gp_counters": 8, "fixed_counters": 3}
V5 = {"backend": "intel", "version": 5, "gp_counters": 8, "fixed_counters": 4}


def build(pmu: dict[str, Any], host: dict[str, Any], **strategy: Any) -> vpmu.Machine:
    return vpmu.Machine.from_dict(
        {"pmu": pmu, "host": host, "strategy": {"name": "mediated", **strategy}}
    )


def test_a_v2_guest_on_a_v5_host_with_full_width_writes_runs_mediated() -> None:
    m = build(V2, {"version": 5, "full_width_writes": True})
    assert m.host.pmu.version == 5 and m.vcpus[0].pmu.caps.version == 2
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C4)
    cpu.retire("branches", 1000)
    assert cpu.rdmsr(0xC1) == 1000
    assert dict(m.ledger.exits) == {"wrmsr:eventsel": 1}  # 6.20: selects always exit


def test_a_v5_guest_on_a_v3_host_is_refused_naming_host(tmp_path: Any) -> None:
    with pytest.raises(vpmu.ConfigError) as exc:
        vpmu.Machine.from_dict(
            {"pmu": V5, "host": {"version": 3}, "strategy": {"name": "emulated"}}
        )
    assert exc.value.key == "host.version"
    path = tmp_path / "c.toml"
    path.write_text(
        '[pmu]\nbackend = "intel"\nversion = 5\n[host]\nversion = 3\n', encoding="utf-8"
    )
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "host.version = 3" in lines[0]


def test_unset_host_keys_are_the_guests() -> None:
    m = vpmu.Machine.from_dict({"pmu": V5})
    caps = m.vcpus[0].pmu.caps
    pmu = m.host.pmu
    assert (pmu.version, pmu.gp, pmu.fixed) == (caps.version, caps.gp_counters, 4)
    assert (pmu.gp_width, pmu.fixed_width) == (caps.gp_width, caps.fixed_width)
    assert pmu.full_width_writes == caps.full_width_writes
    assert pmu.global_status_set == caps.has_global_status_set


def test_a_given_host_version_decides_global_status_set() -> None:
    caps = vpmu.Machine.from_dict({"pmu": V2}).vcpus[0].pmu.caps
    host = vpmu.config.HostConfig
    assert resolve(host(version=4), caps).global_status_set is True
    assert resolve(host(version=3), caps).global_status_set is False
    assert resolve(host(version=5, global_status_set=False), caps).global_status_set is False


@pytest.mark.parametrize(
    ("pmu", "host", "strategy", "key"),
    [
        (V2, {"version": 3, "full_width_writes": True}, {}, "host.version"),
        (V2, {"version": 5, "full_width_writes": False}, {}, "host.full_width_writes"),
        (
            V2,
            {"version": 5, "full_width_writes": True, "global_status_set": False},
            {},
            "host.global_status_set",
        ),
        (V5, {"version": 5, "full_width_writes": True}, {}, "pmu.version"),  # 6.20: v2 max
        (
            {**V2, "fixed_counters": 4},
            {"version": 5, "full_width_writes": True},
            {},
            "pmu.fixed_counters",
        ),  # 6.20: 3 fixed at most
        (V5, {"version": 4, "full_width_writes": True}, {"mode": "rfc"}, "host.version"),
        (
            {**V5, "version": 6, "fixed_counters": 3},
            {"version": 6, "full_width_writes": True},
            {"mode": "rfc"},
            "pmu.version",  # the RFC: min(host, 5)
        ),
        (
            {**V2, "gp_counters": 8},
            {"version": 5, "full_width_writes": True, "gp_counters": 4},
            {},
            "host.gp_counters",
        ),
    ],
)
def test_mediated_checks_the_host_and_the_guest_view(
    pmu: dict[str, Any], host: dict[str, Any], strategy: dict[str, Any], key: str
) -> None:
    with pytest.raises(vpmu.ConfigError) as exc:
        build(pmu, host, **strategy)
    assert exc.value.key == key
    assert "\n" not in str(exc.value)


def test_the_rfc_shows_a_v5_guest_on_a_v5_host() -> None:
    m = build(
        {**V5, "fixed_counters": 3},
        {"version": 5, "full_width_writes": True, "fixed_counters": 4},
        mode="rfc",
    )
    cpu = m.vcpus[0]
    cpu.wrmsr(0x38F, 0xFF)
    cpu.rdpmc(0)
    assert dict(m.ledger.exits) == {}  # the RFC passed GLOBAL_* and RDPMC through


def test_on_spr_a_6_20_guest_has_globals_and_rdpmc_intercepted() -> None:
    """6.20 caps the guest at 3 fixed counters; SPR has 4: the counts differ (§3e)."""
    m = build(V2, {"version": 5, "full_width_writes": True, "fixed_counters": 4})
    cpu = m.vcpus[0]
    cpu.wrmsr(0x38F, 0xFF)
    cpu.rdmsr(0x38E)
    cpu.rdpmc(0)
    assert dict(m.ledger.exits) == {
        "wrmsr:global_ctrl": 1,
        "rdmsr:global_status": 1,
        "rdpmc": 1,
    }
