"""The host schedules like Linux: pauses free counters, guest events are task events.

Linux (kernel/events/core.c at torvalds/linux 9b18d42dda98): a paused event is
disabled and scheduled out (``perf_event_pause`` → ``_perf_event_disable``), so its
counter is free; KVM's backing events are task events of the vCPU thread, scheduled
in with it (``perf_event_task_sched_in``) in the order cpu pinned, task pinned, cpu
flexible, task flexible.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vpmu_core as vpmu
from vpmu_core.host import PROFILER, WATCHDOG, HostEvent
from vpmu_core.workloads.perf import simulate

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GLOBAL_CTRL, FIXED_CTR_CTRL, EVTSEL0, PMC0, FIXED_CTR0 = 0x38F, 0x38D, 0x186, 0xC1, 0x309
INSTRUCTIONS_EN = 0x4300C0  # INST_RETIRED.ANY_P, USR + OS + EN


def shipped(name: str, **tables: dict[str, Any]) -> dict[str, Any]:
    """A shipped config as a dict, with some of its tables' keys replaced."""
    data = tomllib.loads((CONFIGS / name).read_text())
    for table, keys in tables.items():
        data[table] = {**data.get(table, {}), **keys}
    return data


def intel(**host: Any) -> dict[str, Any]:
    return {
        "pmu": {"backend": "intel", "version": 2, "gp_counters": 2, "fixed_counters": 0},
        "host": {"gp_counters": 2, "fixed_counters": 0, **host},
        "strategy": {"name": "emulated"},
    }


# --------------------------------------------------------------- pause frees
def test_a_paused_event_gives_its_counter_back() -> None:
    """Issue 11 item 6 on intel-kvm: the paused fixed-counter-1 event held a GP counter.

    The watchdog's pinned cycles event holds host fixed counter 1, so the guest's
    fixed counter 1 is backed on a GP counter; FIXED_CTR_CTRL = 0 pauses it, which
    frees that counter, and all eight GP events get one. Each PMC counts the 1000
    instructions plus the WRMSRs from its own enabling one on (8 - i of them).
    """
    m = vpmu.Machine.from_dict(shipped("intel-kvm.toml"))
    cpu = m.vcpus[0]
    cpu.wrmsr(GLOBAL_CTRL, 0x7000000FF)
    cpu.wrmsr(FIXED_CTR_CTRL, 0x0B0)
    cpu.wrmsr(FIXED_CTR_CTRL, 0)
    for i in range(8):
        cpu.wrmsr(EVTSEL0 + i, INSTRUCTIONS_EN)
    cpu.retire("instructions", 1000, cpl=3)
    assert [cpu.host_rdmsr(PMC0 + i) for i in range(8)] == [1008 - i for i in range(8)]
    assert [cpu.host_rdmsr(FIXED_CTR0 + i) for i in range(3)] == [0, 0, 0]
    watchdog = [e for e in m.host.pcpus[0].events if e.owner == WATCHDOG]
    assert [(e.counter, e.running) for e in watchdog] == [("fixed1", True)]
    (paused,) = [e for e in m.host.tasks[0] if e.paused]
    assert (paused.counter, paused.running) == (None, False)
    assert "guest_event_sched_out" not in m.ledger.events  # nothing was denied a counter


def test_a_restored_machine_continues_as_the_original_after_a_pause() -> None:
    """The fuzzer's finding: the original's paused event no longer holds a counter
    that the restored copy (which never had that event) has free."""
    data = shipped("intel-kvm.toml")
    a = vpmu.Machine.from_dict(data).vcpus[0]
    a.wrmsr(GLOBAL_CTRL, 0x7000000FF)
    a.wrmsr(FIXED_CTR_CTRL, 0x0B0)
    a.wrmsr(FIXED_CTR_CTRL, 0)
    b = vpmu.Machine.from_dict(data).vcpus[0]
    b.restore(a.snapshot().model_dump_json())
    for v in (a, b):
        for i in range(8):
            v.wrmsr(EVTSEL0 + i, INSTRUCTIONS_EN)
        v.retire("instructions", 1000, cpl=3)
    assert [a.host_rdmsr(PMC0 + i) for i in range(8)] == [1008 - i for i in range(8)]
    assert [b.host_rdmsr(PMC0 + i) for i in range(8)] == [1008 - i for i in range(8)]


def test_a_paused_guest_counter_goes_to_host_perf_until_the_guest_resumes() -> None:
    m = vpmu.Machine.from_dict(intel(perf_record=["cycles"]))
    cpu = m.vcpus[0]
    (profiler,) = m.host.pcpus[0].events
    assert profiler.owner == PROFILER and profiler.running
    cpu.wrmsr(EVTSEL0, 0x4300C4)
    cpu.wrmsr(EVTSEL0 + 1, 0x4300C5)
    assert not profiler.running  # task pinned before cpu flexible
    cpu.wrmsr(EVTSEL0 + 1, 0x0300C5)  # EN clear: paused, its counter is free
    assert not profiler.running  # until perf reschedules: the next rotation
    m.host.advance(m.host.mux_ns)
    assert profiler.running
    cpu.wrmsr(EVTSEL0 + 1, 0x4300C5)  # resumed (perf_event_enable reschedules)
    assert not profiler.running
    cpu.retire("branch-misses", 10)
    assert cpu.rdmsr(PMC0 + 1) == 10


def test_the_instruction_that_reenables_a_paused_counter_counts_on_it() -> None:
    """KVM counts the emulated WRMSR in software after the write, before the next
    entry resumes the paused event: the freed counter does not lose it."""
    m = vpmu.Machine.from_dict(intel(nmi_watchdog=True, gp_counters=3))
    cpu = m.vcpus[0]
    cpu.wrmsr(GLOBAL_CTRL, 0)
    cpu.wrmsr(EVTSEL0, INSTRUCTIONS_EN)
    for _ in range(3):
        cpu.wrmsr(GLOBAL_CTRL, 0x3)  # counts itself
        cpu.wrmsr(GLOBAL_CTRL, 0)  # pauses the event: not counted
    assert cpu.host_rdmsr(PMC0) == 3
    assert all(e.paused and e.counter is None for e in m.host.tasks[0])


def test_priority_is_cpu_pinned_task_pinned_cpu_flexible_task_flexible() -> None:
    m = vpmu.Machine.from_dict(intel(nmi_watchdog=True, perf_record=["cycles"], gp_counters=2))
    cpu = m.vcpus[0]
    cpu.wrmsr(EVTSEL0, 0x4300C4)
    cpu.wrmsr(EVTSEL0 + 1, 0x4300C5)
    host = m.host.pcpus[0].events
    assert [(e.owner, e.running) for e in host] == [(WATCHDOG, True), (PROFILER, False)]
    assert [e.running for e in m.host.tasks[0]] == [True, False]  # the watchdog keeps its own
    assert m.ledger.events["guest_event_sched_out"] == 1


# ------------------------------------------------------------ task events
def test_guest_events_compete_only_while_their_vcpu_thread_runs() -> None:
    """Two vCPUs on one pCPU with two counters: each gets both while it runs."""
    m = vpmu.Machine.from_dict({**intel(), "machine": {"vcpus": 2}})
    a, b = m.vcpus
    for v in (a, b):
        v.wrmsr(EVTSEL0, 0x4300C4)
        v.wrmsr(EVTSEL0 + 1, 0x4300C5)
    assert m.host.on_cpu(b) and not m.host.on_cpu(a)
    assert [e.running for e in m.host.tasks[0]] == [False, False]  # off its pCPU
    b.retire("branches", 7)
    a.retire("branches", 5)  # a executes: its thread takes the pCPU back
    assert m.host.on_cpu(a) and not m.host.on_cpu(b)
    a.retire("branch-misses", 3)
    b.retire("branch-misses", 2)
    assert [(v.rdmsr(PMC0), v.rdmsr(PMC0 + 1)) for v in (a, b)] == [(5, 3), (7, 2)]
    assert "guest_event_sched_out" not in m.ledger.events
    assert m.ledger.events["vcpu_switch"] == 5  # b programs, a runs, b runs, a reads, b reads


def test_register_masks_counters_only_for_the_running_thread() -> None:
    m = vpmu.Machine.from_dict(
        {
            "machine": {"vcpus": 2},
            "pmu": {"backend": "intel", "version": 2, "gp_counters": 4, "fixed_counters": 0},
            "host": {"gp_counters": 8, "fixed_counters": 0, "perf_record": ["cycles"]},
            "strategy": {"name": "register"},
        }
    )
    cpu0 = m.host.pcpus[0]
    assert cpu0.masked_gp == 4  # vCPU 0 runs; vCPU 1 waits and holds nothing
    m.vcpus[1].wrmsr(EVTSEL0, 0x4300C4)  # vCPU 1 takes the pCPU: 0 gives back, 1 masks
    assert cpu0.masked_gp == 4
    assert (m.ledger.events["counters_masked"], m.ledger.events["counters_returned"]) == (8, 4)
    m.teardown()
    assert cpu0.masked_gp == 0


def test_a_vcpu_alone_on_its_pcpu_sees_no_other_host_context() -> None:
    def host(vcpus: int, **cfg: Any) -> Any:
        return vpmu.Machine.from_dict({**intel(**cfg), "machine": {"vcpus": vcpus}})

    m = host(2, pcpus=2)
    assert m.host.alone(m.vcpus[0]) and m.host.alone(m.vcpus[1])
    m = host(3, pcpus=2)  # vCPUs 0 and 2 share pCPU 0
    assert [m.host.alone(v) for v in m.vcpus] == [False, True, False]
    m = host(2, pcpus=2, migrate_every_slices=1)
    assert not m.host.alone(m.vcpus[0]) and not m.host.alone(m.vcpus[1])
    m = host(2, pcpus=2)  # a guest event in pCPU 1's cpu context would be vCPU 0's too
    m.host.pcpus[1].events.append(HostEvent(0xC0, vcpu=m.vcpus[0]))
    assert [m.host.alone(v) for v in m.vcpus] == [True, False]


# ------------------------------------------------ more vCPUs than pCPUs, end to end
@pytest.mark.parametrize("vcpus", [2, 64])
def test_intel_kvm_every_vcpu_counts_on_one_pcpu(vcpus: int) -> None:
    """Issue 11 item 7: every vCPU reads what vCPU 0 of a 1-vCPU machine reads."""
    one = vpmu.run(shipped("intel-kvm.toml"))
    many = vpmu.run(shipped("intel-kvm.toml", machine={"vcpus": vcpus}))
    rows = [(r.counter, r.event, r.value, r.expected) for r in one.counters]
    for v in range(vcpus):
        mine = [(r.counter, r.event, r.value, r.expected) for r in many.counters if r.vcpu == v]
        assert mine == rows, v
    assert many.count_error_pct == one.count_error_pct  # the +1 of the guest's own WRMSR
    assert many.ledger["events"]["vcpu_switch"] == vcpus - 1
    assert "guest_event_sched_out" not in many.ledger["events"]


def perf_stat(vcpus: int, pcpus: int = 1, **host: Any) -> vpmu.RunResult:
    data = shipped("host-contention.toml", machine={"vcpus": vcpus}, host={"pcpus": pcpus, **host})
    events = ["cycles", "branches", "branch-misses", "cache-misses"]
    data["workload"] = {"kind": "perf-stat", "events": events, "duration_ms": 40.0}
    return vpmu.run(data)


@pytest.mark.parametrize("vcpus", [2, 3])
def test_watchdog_and_host_perf_record_with_more_vcpus_than_pcpus(vcpus: int) -> None:
    """host-contention's host (watchdog + `perf record -a`, 4 GP counters) on one pCPU.

    Each vCPU's pinned events take three counters while its thread runs (the
    watchdog keeps the fourth, `perf record` gets none); the fourth event finds
    none. The vCPUs share the pCPU: their guest time sums to the run's 40 ms.
    """
    one = perf_stat(1)
    shared = perf_stat(vcpus)
    by_vcpu: dict[int, dict[str, tuple[int, int]]] = {}
    for r in shared.counters:
        by_vcpu.setdefault(r.vcpu, {})[r.event] = (r.value, r.expected or 0)
    assert sorted(by_vcpu) == list(range(vcpus))
    for rows in by_vcpu.values():
        for event in ("cycles", "branches", "branch-misses"):
            value, truth = rows[event]
            assert value == truth > 0, event
        assert rows["cache-misses"][0] == 0 < rows["cache-misses"][1]  # denied, as with one vCPU
    ghz_cycles = next(r.expected for r in one.counters if r.event == "cycles")
    assert ghz_cycles == 100_000_000  # 40 ms at 2.5 GHz
    assert sum(rows["cycles"][1] for rows in by_vcpu.values()) == ghz_cycles
    events = shared.ledger["events"]
    assert events["guest_event_sched_out"] == vcpus  # each vCPU's fourth event, once
    assert events["vcpu_switch"] >= 10  # a 4 ms slice each, 40 ms


def test_loop_runs_a_vcpu_only_while_its_thread_runs() -> None:
    data = shipped("host-contention.toml", machine={"vcpus": 2})
    data["workload"] = {"kind": "perf-stat", "events": ["cycles"], "duration_ms": 8.0}
    m = vpmu.Machine.from_dict(data)
    out = simulate(m, [0, 1])
    truth = [r.rows[0]["truth"] for r in out]
    assert sum(truth) == 20_000_000  # 8 ms at 2.5 GHz, shared
    off = [m.host.off_cpu_ns(v) for v in m.vcpus]
    assert [round(8e6 - o) for o in off] == [round(t / 2.5) for t in truth]


# ------------------------------------------------------------------ property
OP = st.tuples(
    st.integers(0, 2),  # which vCPU acts
    st.sampled_from(["evtsel", "global", "retire", "slice"]),
    st.integers(0, 3),  # which counter / event
    st.booleans(),  # enable or not
    st.integers(0, 1000),  # how many events
)
EVENTS = ["branches", "branch-misses", "cache-misses", "instructions"]
CODES = [0xC4, 0xC5, 0x2E, 0xC0]
UMASKS = [0x00, 0x00, 0x41, 0x00]


def _apply(m: vpmu.Machine, op: tuple[int, str, int, bool, int]) -> None:
    who, verb, i, on, n = op
    v = m.vcpus[who]
    if verb == "evtsel":
        en = 0x400000 if on else 0
        v.wrmsr(EVTSEL0 + i, 0x030000 | en | UMASKS[i] << 8 | CODES[i])
    elif verb == "global":
        v.wrmsr(GLOBAL_CTRL, 0xF if on else 0x5)
    elif verb == "retire":
        v.retire(EVENTS[i], n, cpl=3 if on else 0)
    else:
        m.host.advance(m.host.now_ns + m.host.slice_ns)


@settings(max_examples=60, deadline=None)
@given(st.lists(OP, max_size=40), st.sampled_from(["emulated", "emulated-legacy", "fastpath"]))
def test_sharing_a_pcpu_never_changes_what_a_vcpu_counts(ops: list[Any], strategy: str) -> None:
    """Task events: three vCPUs taking turns on one pCPU (watchdog on) read exactly
    what they read each on a pCPU of its own, whatever the interleaving."""

    def build(pcpus: int) -> vpmu.Machine:
        return vpmu.Machine.from_dict(
            {
                "machine": {"vcpus": 3},
                "pmu": {"backend": "intel", "version": 2, "gp_counters": 4, "fixed_counters": 0},
                "host": {"pcpus": pcpus, "nmi_watchdog": True, "gp_counters": 5},
                "strategy": {"name": strategy},
            }
        )

    shared, apart = build(1), build(3)
    for op in ops:
        _apply(shared, op)
        _apply(apart, op)
    for a, b in zip(shared.vcpus, apart.vcpus, strict=True):
        assert [a.rdmsr(PMC0 + i) for i in range(4)] == [b.rdmsr(PMC0 + i) for i in range(4)]
    assert "guest_event_sched_out" not in shared.ledger.events


@pytest.mark.parametrize(("charged", "expected"), [(True, 8), (False, 4)])
def test_pmc_refcount_reserves_at_the_first_hold_and_releases_at_the_last(
    charged: bool, expected: int
) -> None:
    """x86_reserve_hardware runs as pmc_refcount leaves zero and x86_release_hardware
    as it returns there, each over every CPU; an uncharged first hold (an event older
    than the VM) reserves without the ledger counting it, a nested hold does nothing."""
    host = vpmu.Machine.from_dict(intel(pcpus=4)).host
    assert host.hw_refcount == 0
    host.get_hardware(charged=charged)
    host.get_hardware()  # nested: the buffers are already there
    host.put_hardware()
    assert host.ledger.events.get("ds_buffers_cpu", 0) == expected - 4
    host.put_hardware()
    assert (host.hw_refcount, host.ledger.events.get("ds_buffers_cpu", 0)) == (0, expected)


def test_the_host_keeps_the_lowest_sched_count_a_release_left() -> None:
    """What a unit of workloads/parallel.py reads to see its own events all gone:
    a release-and-create leaves perf_sched_count at zero for a moment (the last count
    is the delayed work's), and the low-water mark remembers it after the creation."""
    m = vpmu.Machine.from_dict({**intel(), "strategy": {"name": "emulated-legacy"}})
    host, cpu = m.host, m.vcpus[0]
    assert host.sched_low is None
    cpu.wrmsr(GLOBAL_CTRL, 0x3)
    cpu.wrmsr(EVTSEL0 + 1, INSTRUCTIONS_EN)
    cpu.wrmsr(EVTSEL0, INSTRUCTIONS_EN)
    assert (host.sched_count, host.sched_low) == (2, None)
    cpu.wrmsr(EVTSEL0, INSTRUCTIONS_EN | 1)  # release (2 -> 1) + create (1 -> 2)
    assert (host.sched_count, host.sched_low) == (2, 1)
    cpu.wrmsr(EVTSEL0 + 1, 0)  # the event of PMC1 goes: 2 -> 1
    cpu.wrmsr(EVTSEL0, INSTRUCTIONS_EN | 2)  # 1 stays, for the delayed work
    assert (host.sched_count, host.sched_low) == (2, 1)


@pytest.mark.parametrize(
    ("constraint", "parsed"),
    [
        ("gp", (-1, True, False)),
        ("fixed:1", (1, True, False)),
        ("fixed-only:3", (3, False, False)),
        ("metrics", (-1, False, True)),
    ],
)
def test_a_host_event_parses_its_constraint_once(
    constraint: str, parsed: tuple[int, bool, bool]
) -> None:
    ev = HostEvent(0xC0, constraint=constraint)
    assert (ev.fixed, ev.gp_ok, ev.metric) == parsed
