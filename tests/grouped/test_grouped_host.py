"""Host side of a grouped PMC: N perf operations per group, all-or-nothing placement."""

from __future__ import annotations

from typing import Any

import pytest
from grouped_helpers import CTRL, DATA, IDX, four_fields, grouped_config
from vpmu_grouped.sampling import EVENTS, SAMPLES, per_ms, sample

OS_USR = 0b11


def test_group_create_and_release_are_n_perf_ops(build: Any) -> None:
    m = build(grouped_config())
    cpu = m.vcpus[0]
    ops = m.ledger.perf_ops
    before = dict(ops)
    cpu.wrmsr(CTRL, OS_USR)
    pmc = cpu.counters[IDX]
    assert ops["create"] - before.get("create", 0) == 4  # leader + 3 siblings, disabled
    assert ops["enable"] - before.get("enable", 0) == 4  # then enabled in order
    assert [e.paused for e in pmc.host_events] == [False] * 4
    cpu.wrmsr(CTRL, 0)  # paused as a group
    assert all(e.paused for e in pmc.host_events)
    assert ops["pause"] - before.get("pause", 0) == 4
    cpu.allocator.release(pmc)  # released as a group
    assert ops["release"] - before.get("release", 0) == 4
    assert pmc.host_events == [None] * 4


def with_host_gp(config: dict[str, Any], gp: int) -> dict[str, Any]:
    """The same config on a host with only ``gp`` GP counters for perf to place."""
    return {**config, "host": {"gp_counters": gp}}


def test_group_that_does_not_fit_gets_no_counter(build: Any) -> None:
    m = build(with_host_gp(grouped_config(), 3))
    cpu = m.vcpus[0]
    cpu.wrmsr(CTRL, OS_USR)
    pmc = cpu.counters[IDX]
    assert len([e for e in pmc.host_events if e is not None]) == 4  # one perf group
    assert [e.running for e in pmc.host_events] == [False] * 4  # not 3 of 4: none
    assert [e.counter for e in pmc.host_events] == [None] * 4
    cpu.retire("branches", 5)
    assert cpu.rdmsr(DATA) == 0  # an unscheduled group counts nothing


def test_second_group_waits_for_the_first(build: Any) -> None:
    second = four_fields(name="second", msr=DATA + 2, ctrl_msr=CTRL + 2, rdpmc=None)
    m = build(with_host_gp(grouped_config([four_fields(), second]), 5))
    cpu = m.vcpus[0]
    cpu.wrmsr(CTRL, OS_USR)
    cpu.wrmsr(CTRL + 2, OS_USR)
    first, other = cpu.counters[IDX], cpu.counters[IDX + 1]
    assert all(e.running for e in first.host_events)
    assert not any(e.running for e in other.host_events)
    cpu.retire("branches", 7)
    assert (cpu.rdmsr(DATA), cpu.rdmsr(DATA + 2)) == (7, 0)
    cpu.allocator.release(first)  # the first group goes: its 4 counters come back
    assert all(e.running for e in other.host_events)
    cpu.retire("branches", 2)
    assert (cpu.rdmsr(DATA + 2)) == 2


@pytest.mark.parametrize("n", [1, 4, 8])
def test_sampling_figure(plugins: Any, n: int) -> None:
    sep = sample(n, "separate", plugins)
    grp = sample(n, "grouped", plugins)
    assert (sep.guest_reads, sep.vm_exits) == (n * SAMPLES, n * SAMPLES)
    assert (grp.guest_reads, grp.vm_exits) == (SAMPLES, SAMPLES)
    truth = tuple(per_ms(i) * SAMPLES for i in range(n))
    assert sep.totals == grp.totals == truth


def test_sampling_rejects_too_many_events() -> None:
    with pytest.raises(ValueError, match=r"must be 1\.\.8"):
        sample(len(EVENTS) + 1, "grouped")
