"""The plugin manager: an object, entry points, disabling, conflicts named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import vpmu_core as vpmu
from vpmu_core import PluginError
from vpmu_core.config import root_model
from vpmu_core.msr import MsrHandler


def test_builtins_come_through_entry_points() -> None:
    pm = vpmu.PluginManager(disable=[])
    assert "intel" in pm.names("backends")
    assert "emulated" in pm.names("strategies")
    assert pm.infos["intel"].version == "0.1.0"
    assert "vpmu_register_backends" in pm.infos["intel"].hooks


def test_vpmu_disable_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPMU_DISABLE_PLUGINS", "intel, nothing")
    pm = vpmu.PluginManager()
    assert "intel" not in pm.names("backends")
    assert "intel" not in pm.infos


def test_managers_are_independent_objects() -> None:
    a = vpmu.PluginManager(disable=["intel"])
    b = vpmu.PluginManager(disable=[])
    assert "intel" not in a.names("backends") and "intel" in b.names("backends")


class Claimer:
    """An extension that claims an MSR the Intel backend already owns."""

    name = "claimer"

    class Config(BaseModel):
        pass

    def __init__(self, config: Any, machine: Any) -> None:
        pass

    @vpmu.hookimpl
    def vpmu_vcpu_msr_handlers(self, vcpu: Any) -> list[MsrHandler]:
        return [MsrHandler(0x186, "MINE", "other", lambda: 0, lambda v: None)]


class ClaimerPlugin:
    @vpmu.hookimpl
    def vpmu_register_extensions(self, register: Any) -> None:
        register(Claimer)


def test_two_components_claiming_one_msr_is_an_error_naming_both() -> None:
    pm = vpmu.PluginManager(plugins=[("claimer-plugin", ClaimerPlugin())])
    with pytest.raises(
        PluginError, match=r"MSR 0x186 is claimed by both '(intel|claimer)' and '(intel|claimer)'"
    ):
        vpmu.Machine.from_dict({"pmu": {"backend": "intel"}, "extensions": ["claimer"]}, pm)


class Raiser:
    @vpmu.hookimpl
    def vpmu_register_backends(self, register: Any) -> None:
        raise RuntimeError("boom")


def test_a_plugin_raising_in_a_registration_hook_is_listed_failed_and_others_work() -> None:
    pm = vpmu.PluginManager(plugins=[("raiser", Raiser())])
    assert pm.infos["raiser"].error == "raised in hook vpmu_register_backends: RuntimeError: boom"
    assert "intel" in pm.names("backends")


class Duplicate:
    @vpmu.hookimpl
    def vpmu_register_backends(self, register: Any) -> None:
        from vpmu_intel import IntelBackend

        register(IntelBackend)


def test_two_plugins_registering_one_name_is_an_error_naming_both() -> None:
    with pytest.raises(PluginError, match="'intel' is registered by both"):
        vpmu.PluginManager(plugins=[("dup", Duplicate())])


def test_each_manager_has_the_config_schema_of_its_own_plugins() -> None:
    import gc

    # alternate managers, collecting each, so a new one is likely allocated where a
    # collected one lived (a cache keyed by id() then hands it the wrong schema)
    for _ in range(5):
        without = root_model(vpmu.PluginManager(disable=["amd"])).model_json_schema()
        gc.collect()
        assert '"amd"' not in str(without).replace("'", '"')
        full = root_model(vpmu.PluginManager(disable=[])).model_json_schema()
        gc.collect()
        assert '"amd"' in str(full).replace("'", '"')
