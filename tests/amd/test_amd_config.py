"""The [pmu] table of the AMD backend: counts each generation can have, quirks."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import amd

import vpmu_core as vpmu


@pytest.mark.parametrize(
    ("pmu", "key"),
    [
        ({"generation": "legacy", "gp_counters": 6}, "pmu.gp_counters"),
        ({"generation": "legacy", "gp_counters": 3}, "pmu.gp_counters"),
        ({"generation": "core-ext", "gp_counters": 4}, "pmu.gp_counters"),
        ({"generation": "core-ext", "gp_counters": 7}, "pmu.gp_counters"),
        ({"generation": "perfmon-v2", "gp_counters": 3}, "pmu.gp_counters"),
        ({"generation": "perfmon-v2", "gp_counters": 7}, "pmu.gp_counters"),
        ({"generation": "perfmon-v2", "gp_counters": 16}, "pmu.gp_counters"),
        ({"generation": "perfmon-v2", "gp_counters": 17, "kvm_cap": False}, "pmu.gp_counters"),
        ({"generation": "perfmon-v2", "gp_counters": 3, "kvm_cap": False}, "pmu.gp_counters"),
        ({"generation": "core-ext", "kvm_cap": False}, "pmu.kvm_cap"),
        ({"generation": "zen5"}, "pmu.generation"),
        ({"quirks": ["kvm-no-status-set"]}, "pmu.quirks[0]"),
        ({"version": 2}, "pmu.version"),
    ],
)
def test_counts_a_generation_cannot_have_are_config_errors(
    make_machine: Any, pmu: dict[str, Any], key: str
) -> None:
    with pytest.raises(vpmu.ConfigError) as exc:
        make_machine(amd(**pmu))
    assert exc.value.key == key
    assert isinstance(exc.value, ValueError)


def test_config_error_names_what_is_allowed(make_machine: Any) -> None:
    with pytest.raises(vpmu.ConfigError, match=r"4\.\.6 \(KVM caps AMD guests at 6"):
        make_machine(amd(generation="perfmon-v2", gp_counters=8))


@pytest.mark.parametrize(
    ("pmu", "n"),
    [
        ({"generation": "legacy"}, 4),
        ({"generation": "core-ext"}, 6),
        ({"generation": "perfmon-v2"}, 6),
        ({}, 6),
        ({"generation": "perfmon-v2", "gp_counters": 4}, 4),
        ({"generation": "perfmon-v2", "gp_counters": 16, "kvm_cap": False}, 16),
    ],
)
def test_valid_counts(make_machine: Any, pmu: dict[str, Any], n: int) -> None:
    machine = make_machine(amd(**pmu))
    assert machine.vcpus[0].pmu.caps.gp_counters == n
    assert len(machine.vcpus[0].counters) == n


def test_quirks_default_off(make_machine: Any) -> None:
    assert make_machine(amd()).config.pmu.quirks == []
