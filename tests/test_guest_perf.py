"""The guest perf engine and the workloads on a PMU with holes: counters by index.

Why a built vCPU with counters removed: the GP counters a vCPU has are the keys
of ``vcpu.counters``; taking GP 1, 3 and 6 out of an 8-counter Intel vCPU leaves
indexes 0, 2, 4, 5, 7 (the GP bitmap 0b10110101 of Architectural PerfMon v6)
whatever the backend can express. Every counter the guest then touches must be
one of those; ``range(n)`` would reach 1 and die with a KeyError.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from vpmu_core.costs import price
from vpmu_core.counters import FIXED_BASE
from vpmu_core.errors import ConfigError
from vpmu_core.events import EventSpec
from vpmu_core.guest_perf import SampleRateLimit, assign, gp_indexes
from vpmu_core.guest_perf.event import PEvent
from vpmu_core.guest_perf.meter import cost_meter
from vpmu_core.ledger import with_transitions
from vpmu_core.machine import Machine
from vpmu_core.workloads.counting import Counting
from vpmu_core.workloads.parallel import can_shard, key_held
from vpmu_core.workloads.perf import simulate
from vpmu_core.workloads.scripts import Sampling, Toggle

ROOT = Path(__file__).parent.parent
HOLES = (1, 3, 6)
PRESENT = [0, 2, 4, 5, 7]


def _record(strategy: str, events: list[str]) -> dict[str, Any]:
    data = tomllib.loads((ROOT / "configs" / "seed-mediated-table.toml").read_text())
    data.pop("compare")
    data["machine"]["vcpus"] = 1
    data["host"]["pcpus"] = 1
    # the seed's guest is v5: under `mediated` only the RFC showed one
    data["strategy"] = {"name": strategy} | ({"mode": "rfc"} if strategy == "mediated" else {})
    data["workload"] |= {"events": events, "duration_ms": 20, "workers": 1}
    return data


def _holed(data: dict[str, Any]) -> Machine:
    m = Machine.from_dict(data)
    for v in m.vcpus:
        for i in HOLES:
            del v.counters[i]
    return m


def _spy(m: Machine) -> set[int]:
    """The PMC indexes every guest driver built from now on touches."""
    touched: set[int] = set()
    real = m.guest_driver

    def driver(vcpu: Any) -> Any:
        # A subclass, not instance attributes: the compiled engine (mypyc) calls the
        # driver's verbs natively, reaching only methods a subclass overrides.
        drv = real(vcpu)
        if getattr(drv, "spied", False):
            return drv
        verbs: dict[str, Any] = {"spied": True}
        for verb, base in (
            ("program_gp", 0),
            ("start_gp", 0),
            ("stop_gp", 0),
            ("program_fixed", FIXED_BASE),
            ("stop_fixed", FIXED_BASE),
            ("write_counter", 0),
            ("read_counter", 0),
        ):
            inner = getattr(type(drv), verb)

            def rec(
                self: Any, i: int, *a: Any, inner: Any = inner, base: int = base, **k: Any
            ) -> Any:
                touched.add(base + i)
                return inner(self, i, *a, **k)

            verbs[verb] = rec
        spy = type("Spied" + type(drv).__name__, (type(drv),), verbs)(vcpu)
        vcpu.ext["guest-driver"] = spy
        return spy

    m.guest_driver = driver  # type: ignore[method-assign]
    return touched


@pytest.mark.parametrize("strategy", ["mediated", "emulated"])
def test_perf_record_six_events_uses_only_existing_counters(strategy: str) -> None:
    m = _holed(_record(strategy, ["branches"] * 6))  # 6 GP-only events, 5 GP counters
    assert gp_indexes(m.vcpus[0]) == PRESENT
    touched = _spy(m)
    (r,) = simulate(m, [0])
    assert touched == set(PRESENT)  # every existing GP counter, by rotation, and no other
    assert r.rotations > 0
    assert all(row["samples"] > 0 for row in r.rows)
    assert [row["counter"] for row in r.rows] == [f"perf{n}" for n in range(6)]


def test_perf_record_fixed_counters_by_index() -> None:
    events = ["instructions", "cycles", "branches", "branches", "branch-misses", "cache-misses"]
    m = _holed(_record("mediated", events))
    touched = _spy(m)
    (r,) = simulate(m, [0])
    assert touched == {FIXED_BASE, FIXED_BASE + 1, 0, 2, 4, 5}  # all fit: no rotation
    assert r.rotations == 0


def test_counting_takes_gp_indexes_in_order() -> None:
    data = {
        "pmu": {"backend": "intel", "gp_counters": 8},
        "workload": {
            "kind": "counting",
            "events": ["branches", "branch-misses", "branches", "branches", "branches"],
            "mix": {"branches": 1000, "branch-misses": 10},
            "steps": 1,
        },
    }
    m = _holed(data)
    out = Counting(m.config.workload, m).run()
    assert [r.counter for r in out.rows] == [f"gp{i}" for i in PRESENT]
    assert [r.value for r in out.rows] == [1000, 10, 1000, 1000, 1000]


def test_assign_keeps_counters_then_fills_lowest_free_index() -> None:
    a, b, c = (PEvent(n, EventSpec("branches", (0xC4, 0)), None) for n in range(3))
    assert assign([a, b, c], PRESENT) == {0: 0, 1: 2, 2: 4}
    a.idx, b.idx = 7, 5  # the fast path: every event keeps its counter
    assert assign([a, b], PRESENT) == {0: 7, 1: 5}
    b.idx = 7  # a clash: greedy again, in order, from the lowest index
    assert assign([a, b], PRESENT) == {0: 0, 1: 2}
    assert assign([a, b, c], [0, 2]) is None


def test_sample_rate_lowers_to_fit_the_cpu_time_budget() -> None:
    lim = SampleRateLimit(100_000, 25, 1000)
    assert (lim.mspt, lim.allowed_ns) == (100, 2500.0)
    for _ in range(128):
        lim.took(10_000.0)  # every handler 10 µs: the average climbs past 2.5 µs
    assert lim.lowered > 0
    assert lim.max_rate == lim.mspt * 1000
    assert lim.mspt == int(250_000 // lim.allowed_ns)


def test_handler_meter_is_the_one_pricer() -> None:
    m = Machine.from_dict(_record("mediated", ["instructions"] * 2))
    meter = cost_meter(m)
    simulate(m, [0])
    per_exit = m.strategy.transition_msrs_per_exit
    whole = price(with_transitions(m.ledger.as_dict(), per_exit), m.config.costs, 0.0)
    assert meter.total() == pytest.approx(whole.total_ns, rel=1e-12)


def test_handler_meter_prices_the_delta_not_the_totals() -> None:
    """The same growth prices to the same bits whatever the ledger held before it
    (a serial run's totals hold every vCPU's counts; a shard's only its own)."""
    m = Machine.from_dict(_record("mediated", ["instructions"] * 2))
    meter = cost_meter(m)
    m.ledger.exits["wrmsr:eventsel"] += 3
    mark = meter.mark()
    m.ledger.exits["wrmsr:eventsel"] += 2
    m.ledger.pmis["delivered"] += 1
    small = meter.since(mark)
    m.ledger.exits["wrmsr:eventsel"] += 10**9 + 7  # a busy machine's totals
    m.ledger.pmis["delivered"] += 10**9 + 7
    mark = meter.mark()
    m.ledger.exits["wrmsr:eventsel"] += 2
    m.ledger.pmis["delivered"] += 1
    assert meter.since(mark) == small > 0


def _four(strategy: str, watchdog: bool) -> Machine:
    data = _record(strategy, ["instructions"])
    data["machine"]["vcpus"] = data["host"]["pcpus"] = 4
    data["host"]["nmi_watchdog"] = watchdog
    return Machine.from_dict(data)


@pytest.mark.parametrize(
    ("strategy", "watchdog", "shards", "held"),
    [
        ("mediated", False, True, True),  # no host perf events: nothing shared host-wide
        ("emulated", False, True, False),  # the first creation flips perf_sched_events once
        ("emulated", True, True, True),  # the watchdog already holds the key
    ],
)
def test_sharding_asks_the_strategy(
    strategy: str, watchdog: bool, shards: bool, held: bool
) -> None:
    m = _four(strategy, watchdog)
    assert can_shard(m, [0, 1, 2, 3]) is shards
    assert key_held(m) is held


def test_a_strategy_that_promises_nothing_runs_serially(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _four("mediated", False)
    monkeypatch.setattr(type(m.strategy), "shardable", False)
    assert can_shard(m, [0, 1, 2, 3]) is False


def test_toggle_refuses_a_counter_the_vcpu_lacks_and_sampling_takes_the_lowest() -> None:
    m = _holed({"pmu": {"backend": "intel"}, "workload": {"kind": "toggle", "counter": 1}})
    with pytest.raises(ConfigError, match="no such GP counter"):
        Toggle(m.config.workload, m).run()
    m = Machine.from_dict(
        {"pmu": {"backend": "intel"}, "workload": {"kind": "sampling", "duration_ms": 5}}
    )
    del m.vcpus[0].counters[0]
    touched = _spy(m)
    out = Sampling(m.config.workload, m).run()
    assert touched == {1}
    assert out.rows[0].counter == "gp1"
