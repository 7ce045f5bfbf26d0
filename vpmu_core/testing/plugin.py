"""pytest plugin: the options and fixtures of the conformance suite.

Loaded through the ``pytest11`` entry point wherever vpmu is installed, so a
plugin package gets the suite by importing it into one test module. The options:

* ``--vpmu-backend NAME`` (repeatable): run over these backends only; default all.
* ``--vpmu-extension NAME`` (repeatable): run only the configs these extensions
  contribute (each extension on a backend it supports); default every extension's
  configs in addition to the bare backends'.
* ``--vpmu-strategy NAME[:KEY=VALUE[:KEY=VALUE]...]`` (repeatable): build every
  machine under this strategy, with these ``[strategy]`` options (the syntax of
  ``vpmu compare --strategies``; values read as TOML literals, else strings);
  default the config default, ``emulated``. A strategy plugin is held to the same
  rules; a config its ``check`` refuses (ConfigError) is a skip saying why.

The plugin manager comes from the ``pytest_vpmu_plugin_manager`` hook when a
conftest answers it (fsspec-style: the suite is fixed, what it runs over is not).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from .. import overrides
from ..errors import ConfigError
from ..machine import Machine
from ..plugins import PluginManager, default_manager
from . import hooks

MachineFactory = Callable[..., Machine]
_MANAGER = pytest.StashKey[PluginManager]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vpmu")
    group.addoption(
        "--vpmu-backend",
        action="append",
        default=[],
        metavar="NAME",
        help="run the vpmu conformance suite on this backend only (repeatable)",
    )
    group.addoption(
        "--vpmu-extension",
        action="append",
        default=[],
        metavar="NAME",
        help="run only the conformance configs of this extension (repeatable)",
    )
    group.addoption(
        "--vpmu-strategy",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="build every conformance machine under this strategy, with options (repeatable)",
    )


def parse_strategy(spec: str) -> dict[str, Any]:
    """``name:key=value:key=value`` as a ``[strategy]`` table (the syntax of ``--strategies``)."""
    try:
        name, options = overrides.parse_strategy(spec, "--vpmu-strategy")
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None
    return {"name": name, **options}


def suite_manager(config: pytest.Config) -> PluginManager:
    """The plugin manager of this session: a conftest's answer, else the installed plugins."""
    pm = config.stash.get(_MANAGER, None)
    if pm is None:
        pm = config.hook.pytest_vpmu_plugin_manager(config=config) or default_manager()
        config.stash[_MANAGER] = pm
    return pm


def _check_names(pm: PluginManager, kind: str, names: list[str], option: str) -> None:
    unknown = [n for n in names if n not in pm.registry[kind]]
    if unknown:
        raise pytest.UsageError(
            f"{option} {', '.join(unknown)}: not installed; "
            f"installed: {', '.join(pm.names(kind)) or 'none'}"
        )


def conformance_params(
    pm: PluginManager,
    selected: list[str],
    extensions: list[str] | None = None,
    strategy: str | list[str] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``(id, config)`` for every conformance config of the selected backends/extensions."""
    _check_names(pm, "backends", selected, "--vpmu-backend")
    _check_names(pm, "extensions", extensions or [], "--vpmu-extension")
    specs = [strategy] if isinstance(strategy, str) else list(strategy or [])
    tables = [parse_strategy(spec) for spec in dict.fromkeys(specs)]
    _check_names(pm, "strategies", [t["name"] for t in tables], "--vpmu-strategy")
    names = list(dict.fromkeys(selected)) or pm.names("backends")  # addopts + CLI may repeat
    extensions = list(dict.fromkeys(extensions or []))
    params: list[tuple[str, dict[str, Any]]] = []
    if not extensions:
        for name in names:
            cls = pm.registry["backends"][name]
            for label, pmu in cls.conformance_configs().items():
                params.append((f"{name}-{label}", {"pmu": pmu}))
    # Extensions run the same suite loaded on top of a backend they support.
    for ext_name in extensions or pm.names("extensions"):
        ext = pm.registry["extensions"][ext_name]
        for label, cfg in getattr(ext, "conformance_configs", dict)().items():
            if cfg["pmu"]["backend"] in names:
                params.append((f"{ext_name}-{label}", cfg))
    if tables:
        params = [
            (f"{pid}-{spec}", {**cfg, "strategy": table})
            for spec, table in zip(dict.fromkeys(specs), tables, strict=True)
            for pid, cfg in params
        ]
    return params


def pytest_configure(config: pytest.Config) -> None:
    """A malformed ``--vpmu-strategy`` is a usage error before anything is collected."""
    for spec in config.getoption("vpmu_strategy", None) or []:
        parse_strategy(spec)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vpmu_config" not in metafunc.fixturenames:
        return
    opt = metafunc.config.getoption
    params = conformance_params(
        suite_manager(metafunc.config),
        opt("vpmu_backend"),
        opt("vpmu_extension"),
        opt("vpmu_strategy"),
    )
    metafunc.parametrize("vpmu_config", [cfg for _, cfg in params], ids=[pid for pid, _ in params])


@pytest.fixture
def vpmu_plugins(request: pytest.FixtureRequest) -> PluginManager:
    """The plugin manager the suite builds machines with."""
    return suite_manager(request.config)


@pytest.fixture
def vpmu_backend(vpmu_config: dict[str, Any], vpmu_plugins: PluginManager) -> type[Any]:
    """The backend class under test (what ``[pmu] backend`` names in ``vpmu_config``)."""
    return vpmu_plugins.registry["backends"][vpmu_config["pmu"]["backend"]]


@pytest.fixture
def vpmu_machine(vpmu_config: dict[str, Any], vpmu_plugins: PluginManager) -> MachineFactory:
    """A factory of fresh machines for ``vpmu_config``: ``vpmu_machine(**top_level_tables)``.

    A factory rather than one machine, because a hypothesis test needs a fresh
    machine per example and a differential test needs two.
    """

    def make(**top: Any) -> Machine:
        cfg = copy.deepcopy(vpmu_config)
        cfg.update(top)
        try:
            return Machine.from_dict(cfg, vpmu_plugins)
        except ConfigError as exc:
            _skip_if_strategy_refuses(cfg, vpmu_plugins, exc)
            raise

    return make


def _skip_if_strategy_refuses(cfg: dict[str, Any], pm: PluginManager, exc: ConfigError) -> None:
    """Skip when the config is valid but the chosen strategy refuses it (its ``check``).

    The same config under the default strategy must build; otherwise the error is the
    config's own and the test fails with it.
    """
    strategy = cfg.get("strategy")
    if not strategy:
        return
    bare = {k: v for k, v in cfg.items() if k != "strategy"}
    try:
        Machine.from_dict(bare, pm)
    except ConfigError:
        return
    pytest.skip(f"strategy {strategy.get('name')!r} refuses this config: {exc}")
