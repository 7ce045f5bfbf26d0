"""The vendor contract holds when a backend registers; a guest's driver follows its CPUID vendor.

Why tests of their own: both rules act at plugin-load time, before any config, and a
broken check would only show as a NotImplementedError deep inside a third party's run
or as a guest silently running another vendor's driver.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import vpmu_amd
import vpmu_intel
from vpmu_amd import AmdBackend, AmdGuestDriver, AmdPmu
from vpmu_intel import IntelGuestDriver

import vpmu_core as vpmu
import vpmu_core.builtins
from vpmu_core.backend import REQUIRED, check_backend


class Bare(vpmu.Backend):
    name: ClassVar[str] = "bare"


class HalfPmu(vpmu.VendorPmu):
    def counters(self) -> list[vpmu.Pmc]:
        return []


class Half(AmdBackend):
    name: ClassVar[str] = "half"
    Pmu: ClassVar[Any] = HalfPmu


def test_a_backend_missing_required_members_is_refused_naming_each() -> None:
    with pytest.raises(vpmu.PluginError) as info:
        check_backend(Bare)
    message = str(info.value)
    assert message.startswith("backend 'bare' (")
    missing = message.split("does not define ")[1].split(":")[0]
    assert missing == "Config, Pmu, capabilities, create_pmu, cpuid_leaves"


def test_a_pmu_class_missing_required_members_is_refused_naming_each() -> None:
    with pytest.raises(vpmu.PluginError, match="does not define") as info:
        check_backend(Half)
    named = str(info.value).split("does not define ")[1].split(":")[0].split(", ")
    assert named == [f"Pmu.{m}" for m in REQUIRED["pmu"] if m != "counters"]


def test_the_builtin_backends_keep_the_contract() -> None:
    check_backend(AmdBackend)
    check_backend(vpmu_intel.IntelBackend)
    assert AmdBackend.Pmu is AmdPmu


class _Registers:
    def __init__(self, *classes: type[Any], kind: str = "backends") -> None:
        self.classes, self.kind = classes, kind

    @vpmu.hookimpl
    def vpmu_register_backends(self, register: Any) -> None:
        if self.kind == "backends":
            for cls in self.classes:
                register(cls)

    @vpmu.hookimpl
    def vpmu_register_guest_drivers(self, register: Any) -> None:
        if self.kind == "guest_drivers":
            for cls in self.classes:
                register(cls)


def _manager(*extra: tuple[str, object]) -> vpmu.PluginManager:
    base = [("core", vpmu_core.builtins), ("intel", vpmu_intel), ("amd", vpmu_amd)]
    return vpmu.PluginManager(entry_points=False, plugins=[*base, *extra])


def test_registering_a_backend_that_breaks_the_contract_fails_at_load() -> None:
    with pytest.raises(vpmu.PluginError, match=r"backend 'bare' .* does not define Config"):
        _manager(("bare", _Registers(Bare)))


def test_each_cpuid_vendor_runs_its_drivers_guest() -> None:
    pm = _manager()
    assert pm.guest_driver_class("GenuineIntel") is IntelGuestDriver
    assert pm.guest_driver_class("AuthenticAMD") is AmdGuestDriver
    assert pm.guest_driver_class("HygonGenuine") is AmdGuestDriver  # amd_pmu_init
    with pytest.raises(
        vpmu.PluginError, match="no installed guest driver serves CPUID vendor 'CentaurHauls'"
    ):
        pm.guest_driver_class("CentaurHauls")


def test_the_driver_follows_the_guests_cpuid_not_the_backend() -> None:
    m = vpmu.Machine.from_dict({"pmu": {"backend": "amd"}}, _manager())
    assert type(m.guest_driver(m.vcpus[0])) is AmdGuestDriver
    assert m.guest_driver(m.vcpus[0]) is m.guest_driver(m.vcpus[0])  # one per vCPU


class Clash(AmdGuestDriver):
    name: ClassVar[str] = "clash"
    vendors: ClassVar[tuple[str, ...]] = ("HygonGenuine",)


class Vendorless(AmdGuestDriver):
    name: ClassVar[str] = "vendorless"
    vendors: ClassVar[tuple[str, ...]] = ()


def test_two_drivers_claiming_one_vendor_is_an_error_naming_both() -> None:
    with pytest.raises(vpmu.PluginError, match="CPUID vendor 'HygonGenuine' is claimed") as info:
        _manager(("clash", _Registers(Clash, kind="guest_drivers")))
    assert "'amd'" in str(info.value) and "'clash'" in str(info.value)


def test_a_driver_without_vendors_is_refused() -> None:
    with pytest.raises(vpmu.PluginError, match="guest driver 'vendorless' without vendors"):
        _manager(("vendorless", _Registers(Vendorless, kind="guest_drivers")))
