"""The xen strategy: the whole conformance suite, plus what makes it Xen."""

from __future__ import annotations

import pytest

import vpmu_core as vpmu
from vpmu_core.testing.suite import *  # noqa: F403

PERFCTR0 = 0xC1
EVNTSEL0 = 0x186


def machine(save: str = "eager", **pmu: object) -> vpmu.Machine:
    return vpmu.Machine.from_dict(
        {"pmu": {"backend": "intel", **pmu}, "strategy": {"name": "xen", "save": save}}
    )


def test_first_pmu_access_loads_the_context_and_opens_the_bitmap() -> None:
    m = machine()
    cpu = m.vcpus[0]
    cpu.wrmsr(PERFCTR0, 5)  # unloaded: exits, loads
    cpu.wrmsr(PERFCTR0, 6)  # loaded: passes through
    assert cpu.rdmsr(PERFCTR0) == 6
    cpu.rdmsr(EVNTSEL0)  # event selects are readable directly
    cpu.wrmsr(EVNTSEL0, 0x4300C0)  # control writes still exit
    assert m.ledger.events["xen_ctxt_load"] == 1
    assert {k: v for k, v in m.ledger.exits.items() if v} == {
        "wrmsr:counter": 1,
        "wrmsr:eventsel": 1,
    }


@pytest.mark.parametrize(("save", "saves"), [("eager", 1), ("lazy", 0)])
def test_eager_save_on_deschedule_lazy_keeps_the_context(save: str, saves: int) -> None:
    m = machine(save)
    cpu = m.vcpus[0]
    cpu.wrmsr(PERFCTR0, 5)
    m.host.sched_out(cpu)
    m.host.sched_in(cpu)
    assert m.ledger.events["xen_ctxt_save"] == saves
    cpu.wrmsr(PERFCTR0, 6)
    assert m.ledger.events["xen_ctxt_load"] == 1 + saves


def test_pmu_version_1_is_refused_in_one_line() -> None:
    with pytest.raises(vpmu.ConfigError) as info:
        machine(version=1, fixed_counters=0)
    assert str(info.value) == (
        "pmu.version = 1: Xen's vPMU supports architectural PerfMon versions 2 to 5 "
        "(core2_vpmu_init returns -EINVAL otherwise)"
    )


def test_own_mechanisms_are_declared() -> None:
    declared: list[vpmu.Mechanism] = []
    import vpmu_xen

    vpmu_xen.vpmu_register_mechanisms(declared.append)
    assert [m.key for m in declared] == [
        "xen_ctxt_load",
        "xen_ctxt_save",
        "xen_pmi",
        "xen_vlapic_inject",
    ]
