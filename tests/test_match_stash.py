"""The matcher's lists per global-control value (Vcpu.reprogram_counters) are exact.

Why: a guest PMI handler writes GLOBAL_CTRL = 0 and then its old value back; the vCPU
returns to the lists it had under that value instead of rebuilding them, and drops
every kept list at any other change (a control write, a host event scheduled out).
The reference here is the same guest with every list dropped after each operation
(``rematch``), so a list kept one step too long shows as a different count, ledger,
PMI or fault.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import vpmu_core as vpmu
from vpmu_core.errors import GuestFault

GLOBAL_CTRL = 0x38F
EVTSEL0, PMC0, FIXED_CTRL = 0x186, 0x4C1, 0x38D
EVENTS = (0xC0, 0x3C, 0xC4)  # instructions, cycles, branches
MACHINE = {
    "pmu": {"backend": "intel", "version": 5, "gp_counters": 4, "fixed_counters": 3},
    "host": {"version": 5, "full_width_writes": True},
}

OPS = st.one_of(
    st.tuples(st.just("global"), st.sampled_from([0, 0x7, 0x3, 0x7_0000_000F, 0x1_0000_0005])),
    st.tuples(
        st.just("select"),
        st.tuples(
            st.integers(0, 3), st.sampled_from(EVENTS), st.booleans(), st.sampled_from([1, 2, 3])
        ),
    ),
    st.tuples(st.just("fixed"), st.sampled_from([0, 0x3, 0xB, 0x333, 0xBBB])),
    st.tuples(st.just("counter"), st.tuples(st.integers(0, 3), st.integers(0, 2**48 - 1))),
    st.tuples(
        st.just("retire"),
        st.tuples(
            st.sampled_from(["instructions", "cycles", "branches"]),
            st.integers(0, 2**20),
            st.sampled_from([0, 3]),
        ),
    ),
    st.tuples(st.just("rdpmc"), st.integers(0, 3)),
)


def _apply(cpu: Any, op: tuple[str, Any]) -> object:
    kind, arg = op
    try:
        if kind == "global":
            cpu.wrmsr(GLOBAL_CTRL, arg)
        elif kind == "select":
            i, event, en, ring = arg
            cpu.wrmsr(EVTSEL0 + i, event | (ring << 16) | (1 << 20) | ((1 << 22) if en else 0))
        elif kind == "fixed":
            cpu.wrmsr(FIXED_CTRL, arg)
        elif kind == "counter":
            cpu.wrmsr(PMC0 + arg[0], arg[1])
        elif kind == "retire":
            cpu.retire(*arg)
        else:
            return cpu.rdpmc(arg)
    except GuestFault as fault:
        return ("fault", fault.vector)
    return None


def _state(m: Any) -> tuple[object, ...]:
    cpu = m.vcpus[0]
    values = tuple(p.value for p in cpu.counters.values())
    return values, len(cpu.pmis), m.ledger.as_dict()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["emulated", "mediated"]), st.lists(OPS, max_size=40))
def test_kept_lists_count_as_rebuilt_ones(strategy: str, ops: list[tuple[str, Any]]) -> None:
    cfg = {**MACHINE, "strategy": {"name": strategy, "mode": "rfc"}}
    if strategy != "mediated":
        cfg["strategy"] = {"name": strategy}
    kept, fresh = vpmu.Machine.from_dict(cfg), vpmu.Machine.from_dict(cfg)
    for op in ops:
        assert _apply(kept.vcpus[0], op) == _apply(fresh.vcpus[0], op)
        fresh.vcpus[0].rematch()
        assert _state(kept) == _state(fresh)


def test_a_disable_enable_pair_returns_to_the_same_lists() -> None:
    strategy = {"name": "mediated", "mode": "rfc"}  # no host events to schedule in between
    cpu = vpmu.Machine.from_dict({**MACHINE, "strategy": strategy}).vcpus[0]
    cpu.wrmsr(EVTSEL0, 0xC0 | (3 << 16) | (1 << 22))
    cpu.wrmsr(GLOBAL_CTRL, 0x1)
    before = cpu.counting("instructions", 0)
    assert [p.idx for p in before] == [0]
    cpu.wrmsr(GLOBAL_CTRL, 0)
    assert cpu.counting("instructions", 0) == []
    cpu.wrmsr(GLOBAL_CTRL, 0x1)
    assert cpu.counting("instructions", 0) is before  # kept, not rebuilt
    cpu.wrmsr(GLOBAL_CTRL, 0)
    cpu.wrmsr(EVTSEL0, 0xC0 | (3 << 16))  # a control write in between drops them all
    cpu.wrmsr(GLOBAL_CTRL, 0x1)
    assert cpu.counting("instructions", 0) == []
