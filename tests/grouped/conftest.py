"""The grouped tests' machine builder."""

from __future__ import annotations

from typing import Any

import pytest

import vpmu_core as vpmu


@pytest.fixture
def build(plugins: vpmu.PluginManager) -> Any:
    def make(config: dict[str, Any]) -> vpmu.Machine:
        return vpmu.Machine.from_dict(config, plugins)

    return make
