"""The generic all-in-one counter: fields, wraps, PMIs, one read, config errors, snapshots."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from grouped_helpers import (
    CTRL,
    DATA,
    FIELD_EVENTS,
    GLOBAL_STATUS,
    IDX,
    LVTPC,
    OVF_CTRL,
    RDPMC,
    four_fields,
    grouped_config,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from vpmu_grouped import GroupedPmc, field_values

import vpmu_core as vpmu

OS_USR = 0b0011
OS_USR_PMI = 0b1011


def enabled(build: Any, ctrl: int = OS_USR, **kw: Any) -> tuple[vpmu.Machine, Any]:
    m = build(grouped_config(**kw))
    cpu = m.vcpus[0]
    cpu.wrmsr(LVTPC, 0x400)
    cpu.wrmsr(CTRL, ctrl)
    return m, cpu


def test_pmc_shape(build: Any) -> None:
    _, cpu = enabled(build)
    pmc = cpu.counters[IDX]
    assert isinstance(pmc, GroupedPmc)
    assert pmc.max_nr_events == 4
    assert len(pmc.host_events) == 4
    assert all(e is not None for e in pmc.host_events)  # counting: the group exists
    assert [v.key for v in pmc.views] == [cpu.pmu.events[e][0] for e in FIELD_EVENTS]


def test_one_read_returns_all_fields_spliced(build: Any) -> None:
    _, cpu = enabled(build)
    for event, n in zip(FIELD_EVENTS, (0x11, 0x22, 0x33, 0x44), strict=True):
        cpu.retire(event, n)
    assert cpu.rdmsr(DATA) == 0x44332211
    assert cpu.rdpmc(RDPMC) == 0x44332211
    assert field_values(cpu.counters[IDX]) == [0x11, 0x22, 0x33, 0x44]


def test_field_wrap_does_not_disturb_the_others(build: Any) -> None:
    _, cpu = enabled(build)
    cpu.retire("branches", 0xFE)
    cpu.retire("cache-references", 0x7F)
    cpu.retire("cache-misses", 0xFF)
    cpu.retire("branch-misses", 0x1FF + 0x05)  # wraps twice inside bits 15:8
    assert cpu.rdmsr(DATA) == 0xFF7F04FE
    cpu.retire("cache-misses", 1)  # top field wraps: nothing carries out or into bit 23
    assert cpu.rdmsr(DATA) == 0x007F04FE


def test_wrap_raises_pmi_exactly_when_a_field_passes_its_maximum(build: Any) -> None:
    _, cpu = enabled(build, OS_USR_PMI)
    cpu.retire("cache-references", 0xFF)  # field 2 at its maximum: no wrap yet
    assert cpu.pmis == []
    assert cpu.rdmsr(GLOBAL_STATUS) == 0
    cpu.retire("cache-references", 1)  # passes it
    assert len(cpu.pmis) == 1
    assert cpu.pmis[0].status == 1 << IDX
    assert cpu.rdmsr(DATA) == 0


def test_wrap_without_pmi_bit_sets_status_only(build: Any) -> None:
    _, cpu = enabled(build, OS_USR)
    cpu.wrmsr(DATA, 0xFE << 8)
    cpu.retire("branch-misses", 1)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0
    cpu.retire("branch-misses", 1)
    assert cpu.rdmsr(GLOBAL_STATUS) == 1 << IDX
    assert cpu.pmis == []
    cpu.wrmsr(OVF_CTRL, 1 << IDX)  # the opened status bit clears like any other
    assert cpu.rdmsr(GLOBAL_STATUS) == 0


def test_disabled_and_privilege_filtered(build: Any) -> None:
    _, cpu = enabled(build, 0b0001)  # OS only
    cpu.retire("branches", 5, cpl=3)
    cpu.retire("branches", 7, cpl=0)
    assert cpu.rdmsr(DATA) == 7
    cpu.wrmsr(CTRL, 0)
    cpu.retire("branches", 9)
    assert cpu.rdmsr(DATA) == 7


def test_reserved_bits_fault(build: Any) -> None:
    _, cpu = enabled(build)
    with pytest.raises(vpmu.GuestFault):
        cpu.wrmsr(CTRL, 0x4)
    with pytest.raises(vpmu.GuestFault):
        cpu.wrmsr(DATA, 1 << 32)


def test_snapshot_round_trips_exactly(build: Any) -> None:
    _, cpu = enabled(build, OS_USR_PMI)
    for event, n in zip(FIELD_EVENTS, (0x1F0, 3, 0xFE, 0x80), strict=True):
        cpu.retire(event, n)
    snap = cpu.snapshot()
    text = snap.model_dump_json()
    other = build(grouped_config())
    twin = other.vcpus[0]
    twin.restore(text)
    assert twin.snapshot() == snap
    assert twin.rdmsr(DATA) == cpu.rdmsr(DATA) == 0x80FE03F0
    for c in (cpu, twin):  # and both go on identically, wrap and PMI included
        c.retire("cache-references", 2)
    assert twin.rdmsr(DATA) == cpu.rdmsr(DATA) == 0x800003F0
    assert twin.rdmsr(GLOBAL_STATUS) == cpu.rdmsr(GLOBAL_STATUS) == 1 << IDX


def _error(build: Any, counter: dict[str, Any]) -> str:
    with pytest.raises(vpmu.ConfigError) as exc:
        build(grouped_config([counter]))
    return str(exc.value)


def test_overlapping_fields_are_named(build: Any) -> None:
    c = four_fields()
    c["fields"][2] = {"event": "cache-references", "offset": 12, "width": 8, "name": "refs"}
    msg = _error(build, c)
    assert "grouped.counters[0].fields[2]" in msg
    assert "'refs'" in msg and "overlap fields[1] (branch-misses" in msg


def test_field_beyond_register_width_is_named(build: Any) -> None:
    c = four_fields()
    c["fields"][3]["width"] = 9
    msg = _error(build, c)
    assert "grouped.counters[0].fields[3]" in msg
    assert "'cache-misses'" in msg and "reach past the 32-bit register" in msg


def test_unknown_event_is_named(build: Any) -> None:
    c = four_fields()
    c["fields"][1]["event"] = "cache-teleports"
    msg = _error(build, c)
    assert "grouped.counters[0].fields[1].event = 'cache-teleports'" in msg
    assert msg.startswith(
        "grouped.counters[0].fields[1].event = 'cache-teleports': unknown event; known: "
    )
    c["fields"][1]["event"] = "cpu/event=0xc4,cmask=1/"
    assert _error(build, c) == (
        "grouped.counters[0].fields[1].event = 'cpu/event=0xc4,cmask=1/': "
        "a field counts an event: no cmask/inv/edge"
    )
    c["fields"][1]["event"] = "r00c5"  # perf's raw spelling of branch-misses is one
    cpu = build(grouped_config([c])).vcpus[0]
    assert [v.key for v in cpu.counters[next(iter(cpu.ext["grouped"])).idx].views][1] == (
        0xC5,
        0,
    )


def test_msr_claimed_twice_names_both(build: Any) -> None:
    with pytest.raises(vpmu.PluginError, match="0x186 is claimed by both"):
        build(grouped_config([four_fields(msr=0x186)]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(FIELD_EVENTS), st.integers(0, 1000), st.booleans()),
        max_size=25,
    )
)
def test_fields_match_a_reference_model(
    plugins: vpmu.PluginManager, ops: list[tuple[str, int, bool]]
) -> None:
    m = vpmu.Machine.from_dict(grouped_config(), plugins)
    cpu = m.vcpus[0]
    cpu.wrmsr(CTRL, OS_USR)
    want = [0, 0, 0, 0]
    wraps = 0
    for event, n, user in ops:
        cpu.retire(event, n, cpl=3 if user else 0)
        i = FIELD_EVENTS.index(event)
        wraps += (want[i] + n) > 0xFF
        want[i] = (want[i] + n) & 0xFF
    assert field_values(cpu.counters[IDX]) == want
    assert bool(cpu.rdmsr(GLOBAL_STATUS)) == bool(wraps)


@settings(max_examples=60, deadline=None)
@given(
    msr=st.sampled_from([DATA, CTRL, 0x329, 0x38F, 0x38E, 0x390]), value=st.integers(0, 2**64 - 1)
)
def test_any_write_is_architectural(plugins: vpmu.PluginManager, msr: int, value: int) -> None:
    m = vpmu.Machine.from_dict(grouped_config(pmu={"topdown_metrics": 8}), plugins)
    cpu = m.vcpus[0]
    with contextlib.suppress(vpmu.GuestFault):
        cpu.wrmsr(msr, value)
    cpu.retire("branches", 3)
    cpu.retire("topdown-slots", 3)
    cpu.rdmsr(msr)


def test_vcpu_reset_clears_the_fields_and_the_control(build: Any) -> None:
    m = build(grouped_config())
    cpu = m.vcpus[0]
    cpu.wrmsr(CTRL, 0b1011)  # OS, USR, PMI
    cpu.retire("branches", 5)
    assert cpu.rdmsr(DATA) != 0
    cpu.reset()
    assert (cpu.rdmsr(DATA), cpu.rdmsr(CTRL)) == (0, 0)
    cpu.retire("branches", 5)
    assert cpu.rdmsr(DATA) == 0  # the control is off again: nothing counts
