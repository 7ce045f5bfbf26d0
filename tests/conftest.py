"""Shared fixtures: machines built from dicts, one plugin manager per session."""

from __future__ import annotations

from typing import Any

import pytest

import vpmu_core as vpmu

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def plugins() -> vpmu.PluginManager:
    return vpmu.default_manager()


def intel(**pmu: Any) -> dict[str, Any]:
    """A config dict for an Intel machine; keyword arguments override [pmu] keys."""
    return {"pmu": {"backend": "intel", **pmu}}


def amd(**pmu: Any) -> dict[str, Any]:
    """A config dict for an AMD machine; keyword arguments override [pmu] keys."""
    return {"pmu": {"backend": "amd", **pmu}}


@pytest.fixture
def make_machine(plugins: vpmu.PluginManager) -> Any:
    def make(config: dict[str, Any]) -> vpmu.Machine:
        return vpmu.Machine.from_dict(config, plugins)

    return make
