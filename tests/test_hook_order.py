"""The machine hooks run in the order docs/plugins.md states, on the components pluggy calls.

Why a test: the order is a contract a plugin author relies on (a strategy's allocator
exists before ``vpmu_vcpu_ready``, an extension's rows after the backend's), and the
docs once stated it backwards. Two probe extensions record every machine hook they
are called with; the recorded order must equal ``MACHINE_HOOK_ORDER``, each hook must
reach the components in pluggy's order (the last registered first: the strategy, the
extensions in reverse config order, the backend, vpmu's APIC), a firstresult hook
must stop at the strategy's answer, and the lifecycle paragraph of docs/plugins.md
must say all of that.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

import vpmu_core as vpmu
import vpmu_core.builtins
from vpmu_core.hookspecs import MACHINE_HOOK_ORDER

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
LOG: list[tuple[str, str]] = []


def _probe(label: str) -> type[Any]:
    class Cfg(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Probe:
        name: ClassVar[str] = label
        Config: ClassVar[type[BaseModel]] = Cfg

        def __init__(self, config: Any, machine: Any) -> None:
            self.machine = machine

        @vpmu.hookimpl
        def vpmu_vcpu_counters(self, vcpu: vpmu.VcpuPort) -> list[vpmu.Pmc]:
            LOG.append(("vpmu_vcpu_counters", label))
            return []

        @vpmu.hookimpl
        def vpmu_vcpu_msr_handlers(self, vcpu: vpmu.VcpuPort) -> list[vpmu.MsrHandler]:
            LOG.append(("vpmu_vcpu_msr_handlers", label))
            return []

        @vpmu.hookimpl
        def vpmu_vcpu_cpuid(self, vcpu: vpmu.VcpuPort) -> dict[Any, Any]:
            LOG.append(("vpmu_vcpu_cpuid", label))
            return {}

        @vpmu.hookimpl
        def vpmu_counter_allocator(self, vcpu: vpmu.VcpuPort) -> None:
            LOG.append(("vpmu_counter_allocator", label))

        @vpmu.hookimpl
        def vpmu_pmi_path(self, vcpu: vpmu.VcpuPort) -> None:
            LOG.append(("vpmu_pmi_path", label))

        @vpmu.hookimpl
        def vpmu_vcpu_ready(self, vcpu: vpmu.VcpuPort) -> None:
            # bound by now: the strategy's allocator is in place
            assert isinstance(vcpu.allocator, vpmu.CounterAllocator)
            LOG.append(("vpmu_vcpu_ready", label))

    return Probe


class _Plugin:
    @vpmu.hookimpl
    def vpmu_register_extensions(self, register: Any) -> None:
        register(_probe("probe-b"))
        register(_probe("probe-a"))


def _machine() -> vpmu.Machine:
    pm = vpmu.PluginManager(
        entry_points=False,
        plugins=[("core", vpmu_core.builtins), ("intel", _intel()), ("probes", _Plugin())],
    )
    LOG.clear()
    return vpmu.Machine.from_dict(
        {"pmu": {"backend": "intel"}, "extensions": ["probe-b", "probe-a"]}, pm
    )


def _intel() -> Any:
    import vpmu_intel

    return vpmu_intel


FIRSTRESULT = ("vpmu_counter_allocator", "vpmu_pmi_path")


def test_machine_hooks_run_in_the_declared_order() -> None:
    _machine()
    hooks = list(dict.fromkeys(h for h, _ in LOG))
    # the strategy answers the firstresult hooks: the extensions registered before it
    # are never asked
    assert hooks == [h for h in MACHINE_HOOK_ORDER if h not in FIRSTRESULT]
    # every other hook reaches the extensions last-registered first, once per vCPU
    for hook in hooks:
        assert [who for h, who in LOG if h == hook] == ["probe-a", "probe-b"]


def test_components_are_called_last_registered_first() -> None:
    m = _machine()
    names = [name for name, _ in m.components.list_name_plugin()]
    assert names == ["apic", "intel", "probe-b", "probe-a", "strategy:emulated"]
    for hook, called in (
        ("vpmu_vcpu_ready", ["strategy:emulated", "probe-a", "probe-b", "intel"]),
        ("vpmu_vcpu_msr_handlers", ["probe-a", "probe-b", "intel", "apic"]),
        ("vpmu_counter_allocator", ["strategy:emulated", "probe-a", "probe-b"]),
    ):
        impls = vpmu_core.plugins.hook_impls(m.components, hook)
        assert [i.plugin_name for i in impls] == called


def test_the_docs_state_the_order_of_the_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    para = re.search(r"4\. \*\*Each vCPU\.\*\*(.*?)\n5\. ", text, re.S)
    assert para, "docs/plugins.md lost its lifecycle step 4"
    named = re.findall(r"`(vpmu_\w+)`", para.group(1))
    assert [h for h in dict.fromkeys(named) if h in MACHINE_HOOK_ORDER] == list(MACHINE_HOOK_ORDER)
    words = " ".join(para.group(1).split())
    assert "the strategy, the extensions in reverse config order, the backend, vpmu's APIC" in (
        words
    )
