"""The ground truth of CMASK/INV/EDGE counters (workloads/qualified.py) is what they count.

The truth is a second, threshold-based formulation of qualifiers.py's spread, so
these tests set the two against each other: call by call (differential, for all
inputs), through the counting workload (whose call cuts are fixed by its config,
EDGE included) and through the perf engine (whose cuts follow overflows, so only
CMASK/INV have a truth there; an EDGE row says it has none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu_core.errors import ConfigError
from vpmu_core.machine import Machine
from vpmu_core.qualifiers import qualifier_of
from vpmu_core.workloads.counting import Counting
from vpmu_core.workloads.perf import simulate
from vpmu_core.workloads.profiles import Profile, Truth
from vpmu_core.workloads.qualified import cycles_meeting, decode, edges

ROOT = Path(__file__).resolve().parent.parent
INTEL = {"backend": "intel", "version": 2, "gp_counters": 8, "fixed_counters": 3}
ZEN4 = {"backend": "amd", "generation": "perfmon-v2", "event_map": "zen4"}
BRANCHES = {"intel": "0xc4", "amd": "0xc2"}  # retired branch instructions, per vendor


class _State:
    edge_state = False


quals = st.builds(
    lambda c, inv, edge: (c << 24) | (inv << 23) | (edge << 18),
    st.integers(0, 5),
    st.booleans(),
    st.booleans(),
)
calls = st.lists(
    st.integers(1, 50).flatmap(lambda c: st.tuples(st.integers(0, 5 * c), st.just(c))),
    max_size=8,
)


@given(quals, calls)
def test_truth_formulation_agrees_with_the_counter_for_every_call_sequence(
    qual: int, seq: list[tuple[int, int]]
) -> None:
    q = qualifier_of(0xC0 | qual)
    threshold, invert, edge = decode(qual)
    pmc = _State()
    counted = 0
    for n, c in seq:
        counted += n if q is None else q.count(pmc, n, c)
    if edge:
        assert edges(seq, threshold, invert, False)[0] == counted
    else:
        assert sum(cycles_meeting(n, c, threshold, invert) for n, c in seq) == counted


def test_cycles_meeting_by_hand() -> None:
    # 7 events over 3 cycles: 3, 2, 2
    assert [cycles_meeting(7, 3, t, False) for t in (1, 2, 3, 4)] == [3, 3, 1, 0]
    assert [cycles_meeting(7, 3, t, True) for t in (1, 2, 3, 4)] == [0, 0, 2, 3]
    assert cycles_meeting(7, 3, 0, False) == 7  # CMASK = 0: plain


def counting(pmu: dict[str, Any], workload: dict[str, Any]) -> list[Any]:
    m = Machine.from_dict({"pmu": pmu, "workload": {"kind": "counting", **workload}})
    return Counting(m.config.workload, m).run().rows


@pytest.mark.parametrize(
    "path", ["configs/intel-perf-names.toml", "configs/amd-zen4-perf-names.toml"]
)
def test_perf_names_cmask_row_is_exact(path: str) -> None:
    """20M instructions over 12.5M cycles in 10 steps, 3/4 at CPL3: per step 1.5M user
    instructions over 937,500 cycles (562,500 cycles carry 2) and 500,000 kernel ones
    over 312,500 (187,500 carry 2): 7,500,000 cycles with >= 2. The +1 is the guest's
    enabling WRMSR, which KVM counts as an emulated instruction whatever CMASK says."""
    m = Machine.from_toml(ROOT / path)
    row = Counting(m.config.workload, m).run().rows[3]
    assert row.event == "cpu/event=0xc0,umask=0x0,cmask=2/"
    assert (row.value, row.expected) == (7_500_001, 7_500_000)


@settings(max_examples=40, deadline=None)
@given(
    pmu=st.sampled_from([INTEL, ZEN4]),
    qual=st.sampled_from(
        [
            "cmask=1",
            "cmask=2",
            "cmask=3",
            "inv,cmask=2",
            "edge",
            "edge,cmask=2",
            "edge,inv,cmask=2",
            "inv",
            "cmask=0",
        ]
    ),
    branches=st.integers(0, 40_000),
    cycles=st.integers(0, 20_000),
    steps=st.integers(1, 13),
    share=st.sampled_from([0.0, 0.3, 0.75, 1.0]),
    count=st.sampled_from(["all", "user", "kernel"]),
)
def test_counting_truth_is_exact_for_every_mix(
    pmu: dict[str, Any],
    qual: str,
    branches: int,
    cycles: int,
    steps: int,
    share: float,
    count: str,
) -> None:
    """Branches (no guest access retires one) on a qualified counter read their truth."""
    workload = {
        "events": [f"cpu/event={BRANCHES[pmu['backend']]},umask=0x0,{qual}/", "branches"],
        "mix": {"branches": branches, "cycles": cycles},
        "steps": steps,
        "user_share": share,
        "count": count,
    }
    try:
        rows = counting(pmu, workload)
    except ConfigError as exc:  # a slice with events and no cycles is refused up front
        assert "no cycles" in str(exc)
        return
    assert [r.value for r in rows[:2]] == [r.expected for r in rows[:2]]


def test_counting_without_cycles_spreads_one_event_a_cycle() -> None:
    rows = counting(
        INTEL,
        {
            "events": [
                "cpu/event=0xc4,cmask=1/",
                "cpu/event=0xc4,cmask=2/",
                "cpu/event=0xc4,inv,cmask=2/",
            ],
            "mix": {"branches": 1000},
        },
    )
    assert [(r.value, r.expected) for r in rows] == [(1000, 1000), (0, 0), (1000, 1000)]


def test_counting_edge_truth_follows_the_calls() -> None:
    """Per step 6 branches over 4 cycles, half at CPL3: each call spreads 3 over 2
    cycles (2, then 1), so CMASK=2 EDGE rises once per call (its second cycle
    deasserts): 4 steps, 8 edges counting both levels, 4 counting CPL3 only."""
    wl = {"events": ["cpu/event=0xc4,edge,cmask=2/"], "steps": 4, "user_share": 0.5}
    rows = counting(INTEL, {**wl, "mix": {"branches": 24, "cycles": 16}})
    assert (rows[0].value, rows[0].expected) == (8, 8)
    rows = counting(INTEL, {**wl, "mix": {"branches": 24, "cycles": 16}, "count": "user"})
    assert (rows[0].value, rows[0].expected) == (4, 4)


def test_a_mix_with_too_few_cycles_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^workload\.mix\.instructions = 100: retires events"):
        counting(INTEL, {"mix": {"cycles": 5, "instructions": 100}})


PROFILE = {
    "user_share": 0.9,
    "user": {"rates": {"branches": 1.6}},
    "kernel": {"rates": {"branches": 0.4}},
}


@pytest.mark.parametrize("pmu", [INTEL, ZEN4])
def test_perf_stat_truth_of_qualified_events(pmu: dict[str, Any]) -> None:
    """1 ms at 2.5 GHz: 2,250,000 user cycles with 3,600,000 branches (1,350,000 cycles
    carry 2) and 250,000 kernel cycles with 100,000 (100,000 carry 1)."""
    b = BRANCHES[pmu["backend"]]
    events = [f"cpu/event={b},{q}/" for q in ("cmask=2", "inv,cmask=2", "cmask=1", "edge")]
    m = Machine.from_dict(
        {
            "pmu": pmu,
            "workload": {
                "kind": "perf-stat",
                "events": events,
                "duration_ms": 1,
                "profile": PROFILE,
            },
        }
    )
    rows = simulate(m, [0])[0].rows
    assert [r["truth"] for r in rows] == [1_350_000, 900_000 + 250_000, 2_250_000 + 100_000, None]
    assert [r["value"] for r in rows[:3]] == [r["truth"] for r in rows[:3]]
    assert all(r["running_pct"] == 100.0 for r in rows)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0, 4.0),
    qual=st.sampled_from([2 << 24, 1 << 24, 3 << 24, (2 << 24) | (1 << 23)]),
    cuts=st.lists(st.integers(1, 5000), min_size=1, max_size=12),
)
def test_engine_cuts_do_not_change_a_cmask_truth(rate: float, qual: int, cuts: list[int]) -> None:
    """The engine retires int(u1*r) - int(u0*r) events over u1 - u0 cycles per step:
    however it cuts, the counter reads Truth.count's closed form."""
    truth = Truth(Profile(user_share=1.0, user={"rates": {"branches": rate}}))
    q = qualifier_of(0xC4 | qual)
    assert q is not None
    pmc = _State()
    counted = u0 = 0
    ru = truth.rates("branches")[0]
    for cut in cuts:
        u1 = u0 + cut
        counted += q.count(pmc, int(u1 * ru) - int(u0 * ru), cut)
        u0 = u1
    assert counted == truth.count("branches", u0, True, False, qual)
