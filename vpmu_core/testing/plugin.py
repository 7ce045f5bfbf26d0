"""pytest plugin: ``--vpmu-backend`` and the fixtures of the conformance suite."""

from __future__ import annotations

from typing import Any

import pytest

from ..plugins import PluginManager, default_manager


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vpmu")
    group.addoption(
        "--vpmu-backend",
        action="append",
        default=[],
        metavar="NAME",
        help="run the vpmu conformance suite on this backend only (repeatable)",
    )


def conformance_params(pm: PluginManager, selected: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(id, config)`` for every conformance config of the selected backends."""
    names = selected or pm.names("backends")
    unknown = [n for n in names if n not in pm.registry["backends"]]
    if unknown:
        raise pytest.UsageError(
            f"--vpmu-backend {', '.join(unknown)}: not installed; "
            f"installed: {', '.join(pm.names('backends'))}"
        )
    params = []
    for name in names:
        cls = pm.registry["backends"][name]
        for label, pmu in cls.conformance_configs().items():
            params.append((f"{name}-{label}", {"pmu": pmu}))
    # Extensions run the same suite loaded on top of a backend they support.
    for ext_name in pm.names("extensions"):
        ext = pm.registry["extensions"][ext_name]
        for label, cfg in getattr(ext, "conformance_configs", dict)().items():
            if cfg["pmu"]["backend"] in names:
                params.append((f"{ext_name}-{label}", cfg))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vpmu_config" not in metafunc.fixturenames:
        return
    pm = default_manager()
    params = conformance_params(pm, metafunc.config.getoption("vpmu_backend"))
    metafunc.parametrize("vpmu_config", [cfg for _, cfg in params], ids=[pid for pid, _ in params])


@pytest.fixture
def vpmu_plugins() -> PluginManager:
    """The plugin manager the suite builds machines with."""
    return default_manager()
