from __future__ import annotations

from typing import Any

import pytest

import vpmu_core as vpmu

LVTPC = 0x834


@pytest.fixture
def cpu() -> Any:
    """One vCPU of a KVM-shaped Intel PMU: v2, 8 GP + 3 fixed, 48-bit, full-width writes."""

    return make()


def make(**pmu: Any) -> Any:
    cfg = {"backend": "intel", "version": 2, "gp_counters": 8, "fixed_counters": 3}
    cfg.update(pmu)
    return vpmu.Machine.from_dict({"pmu": cfg}).vcpus[0]


def machine(**pmu: Any) -> Any:
    cfg = {"backend": "intel", "version": 2, "gp_counters": 8, "fixed_counters": 3}
    cfg.update(pmu)
    return vpmu.Machine.from_dict({"pmu": cfg})
