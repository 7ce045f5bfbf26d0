"""The plugin manager: an object, so that a sweep or a test can build as many as it likes.

It loads the plugin modules named by the ``vpmu`` entry-point group (built-in ones
included: they are registered exactly like a third-party package), skips those in
``VPMU_DISABLE_PLUGINS=a,b``, keeps the import failures to report them instead of
dying, and asks every module's registration hooks what it provides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from loguru import logger

from . import hookspecs
from .backend import check_backend
from .costs import BUILTIN_COSTS, BUILTIN_PRICES
from .errors import ConfigError, PluginError, VpmuError
from .mechanisms import BUILTIN, BUILTIN_MECHANISMS, Mechanism, PriceList

ENTRY_POINT_GROUP = "vpmu"
KINDS = ("backends", "strategies", "workloads", "extensions", "guest_drivers")
SINGULAR = {
    "backends": "backend",
    "strategies": "strategy",
    "workloads": "workload",
    "extensions": "extension",
    "guest_drivers": "guest driver",
}


@dataclass
class PluginInfo:
    """What ``vpmu plugins`` shows of one plugin."""

    name: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


def new_pluggy_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("vpmu")
    pm.add_hookspecs(hookspecs)
    return pm


def hook_impls(pm: pluggy.PluginManager, hook: str) -> list[Any]:
    """Implementations of ``hook`` in call order (pluggy calls the last registered first)."""
    return list(reversed(getattr(pm.hook, hook).get_hookimpls()))


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """Call ``hook`` one implementation at a time, yielding ``(plugin name, result)``.

    Used instead of ``pm.hook.X(...)`` wherever the caller must know *who* answered
    (to name both sides of a conflict) or must name the plugin when it raises.
    """
    for impl in hook_impls(pm, hook):
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            result = impl.function(**args)
        except VpmuError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} raised in hook {hook}: {type(exc).__name__}: {exc}"
            ) from exc
        yield impl.plugin_name, result


class PluginManager:
    """Loads plugins and holds what they registered, by kind and name."""

    def __init__(
        self,
        *,
        entry_points: bool = True,
        plugins: Iterable[tuple[str, ModuleType | object]] = (),
        disable: Iterable[str] | None = None,
    ) -> None:
        if disable is None:
            disable = [d.strip() for d in os.environ.get("VPMU_DISABLE_PLUGINS", "").split(",")]
        self.disabled = {d for d in disable if d}
        self.pm = new_pluggy_manager()
        self.infos: dict[str, PluginInfo] = {}
        self.registry: dict[str, dict[str, type[Any]]] = {k: {} for k in KINDS}
        self.origin: dict[tuple[str, str], str] = {}
        self.driver_for_vendor: dict[str, type[Any]] = {}
        self._root_model: Any = None  # the config model for these plugins, built on first use
        self.prices: PriceList = BUILTIN_PRICES  # vpmu's own, until plugins declare more
        if entry_points:
            self._load_entry_points()
        for name, module in plugins:
            self.add(name, module)
        self._collect()

    # ------------------------------------------------------------------ loading
    def _load_entry_points(self) -> None:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in self.disabled or ep.name in self.infos:
                continue
            version = ep.dist.version if ep.dist is not None else "?"
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                logger.warning("plugin {} failed to load: {}", ep.name, exc)
                self.infos[ep.name] = PluginInfo(
                    ep.name, version, ep.value, error=f"{type(exc).__name__}: {exc}"
                )
                continue
            self._register(ep.name, module, version)

    def add(self, name: str, module: ModuleType | object, version: str | None = None) -> None:
        """Register a plugin object by hand (tests, embedding code)."""
        if name in self.disabled:
            return
        self._register(name, module, version or str(getattr(module, "__version__", "local")))

    def _register(self, name: str, module: ModuleType | object, version: str) -> None:
        self.pm.register(module, name=name)
        hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        mod_name = getattr(module, "__name__", type(module).__name__)
        self.infos[name] = PluginInfo(name, version, mod_name, hooks=hooks)

    def _collect_mechanisms(self) -> None:
        """Build the price list: vpmu's mechanisms, then every plugin's, each once."""
        declared: list[tuple[str, Mechanism]] = [(BUILTIN, m) for m in BUILTIN_MECHANISMS]
        for impl in hook_impls(self.pm, "vpmu_register_mechanisms"):

            def register(mech: Mechanism, plugin: str = impl.plugin_name) -> None:
                if not isinstance(mech, Mechanism):
                    raise PluginError(f"plugin {plugin!r} registered {mech!r}, not a Mechanism")
                declared.append((plugin, mech))

            impl.function(register=register)
        if len(declared) > len(BUILTIN_MECHANISMS):
            self.prices = PriceList(BUILTIN_COSTS, declared)

    def _collect(self) -> None:
        self._collect_mechanisms()
        for kind in KINDS:
            hook = f"vpmu_register_{kind}"
            for impl in hook_impls(self.pm, hook):
                try:
                    impl.function(register=self._registrar(kind, impl.plugin_name))
                except PluginError:
                    raise
                except Exception as exc:  # listed as failed; every other plugin still works
                    reason = f"raised in hook {hook}: {type(exc).__name__}: {exc}"
                    logger.warning("plugin {} {}", impl.plugin_name, reason)
                    self.infos[impl.plugin_name].error = reason

    def _registrar(self, kind: str, plugin: str) -> Any:
        def register(cls: type[Any]) -> None:
            name = getattr(cls, "name", "")
            if not name:
                raise PluginError(f"plugin {plugin!r} registered a {SINGULAR[kind]} without a name")
            other = self.origin.get((kind, name))
            if other is not None and other != plugin:
                raise PluginError(
                    f"{SINGULAR[kind]} {name!r} is registered by both {other!r} and {plugin!r}"
                )
            if kind == "backends":
                check_backend(cls)
            if kind == "guest_drivers":
                self._claim_vendors(cls, plugin)
            self.registry[kind][name] = cls
            self.origin[(kind, name)] = plugin
            self.infos[plugin].provides.setdefault(kind, []).append(name)

        return register

    def _claim_vendors(self, cls: type[Any], plugin: str) -> None:
        vendors = tuple(getattr(cls, "vendors", ()))
        if not vendors:
            raise PluginError(
                f"plugin {plugin!r} registered guest driver {cls.name!r} "
                "without vendors (the CPUID vendor strings it serves)"
            )
        for vendor in vendors:
            other = self.driver_for_vendor.get(vendor)
            if other is not None:
                raise PluginError(
                    f"CPUID vendor {vendor!r} is claimed by guest drivers {other.name!r} "
                    f"and {cls.name!r} (plugin {plugin!r})"
                )
            self.driver_for_vendor[vendor] = cls

    # ------------------------------------------------------------------ queries
    def guest_driver_class(self, vendor: str) -> type[Any]:
        """The guest perf driver a guest with CPUID vendor ``vendor`` runs."""
        found = self.driver_for_vendor.get(vendor)
        if found is None:
            known = ", ".join(sorted(self.driver_for_vendor)) or "none"
            raise PluginError(
                f"no installed guest driver serves CPUID vendor {vendor!r}; served: {known}"
            )
        return found

    def get(self, kind: str, name: str, key: str) -> type[Any]:
        """The class registered as ``name``; a ConfigError naming what is installed otherwise."""
        found = self.registry[kind].get(name)
        if found is None:
            installed = ", ".join(sorted(self.registry[kind])) or "none"
            raise ConfigError(
                key, name, f"no installed {SINGULAR[kind]} of that name; installed: {installed}"
            )
        return found

    def names(self, kind: str) -> list[str]:
        return sorted(self.registry[kind])

    def plugins(self) -> list[PluginInfo]:
        return [self.infos[n] for n in sorted(self.infos)]


_default: PluginManager | None = None


def default_manager() -> PluginManager:
    """The process-wide manager for the installed plugins (built on first use)."""
    global _default
    if _default is None:
        _default = PluginManager()
    return _default


def reset_default_manager() -> None:
    global _default
    _default = None
