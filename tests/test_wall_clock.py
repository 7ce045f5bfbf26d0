"""The guest's timers run on its wall clock: work plus every priced mechanism its vCPU caused.

Why exact values from the legacy seed: its PMI handler takes 5.5 ms of the guest's
clock (two reprograms through ``pmc_refcount`` zero, costs.md §1b), several tick
periods, so the two clocks part at once. Under ``clock = "work"`` (the what-if of
the model before) every millisecond of work gets its tick and the handler's time
comes on top; under ``"wall"`` the ticks that expire during a stall fire once when
it ends (tick_nohz_handler forwards its hrtimer past every missed period,
kernel/time/tick-sched.c), and a tick interrupt that finds the tick expired again
three times defers the next by the time it took (hrtimer_interrupt,
kernel/time/hrtimer.c).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import vpmu_core as vpmu
from vpmu_core.errors import ConfigError

ROOT = Path(__file__).parent.parent


def _legacy(clock: str, ms: float, period: int | None = None) -> dict[str, Any]:
    data = tomllib.loads((ROOT / "configs" / "seed-legacy-sample-loss.toml").read_text())
    data.pop("compare")
    data["guest"]["clock"] = clock
    data["workload"]["duration_ms"] = ms
    if period is not None:  # perf record -c: no frequency feedback, only the clocks differ
        data["workload"] |= {"freq": None, "period": period}
    return data


def _perf(data: dict[str, Any]) -> tuple[vpmu.RunResult, dict[str, Any]]:
    r = vpmu.run(data)
    (p,) = r.extra["perf"]
    return r, p


def test_a_stall_of_many_tick_periods_gets_one_tick_when_it_ends() -> None:
    """-c 400000 (0.18 ms of work at 2.2 GHz) for 20 ms: each PMI stalls the guest
    5.5-11 ms. Work-paced: 20 ticks, two samples per tick before the throttle stops
    the event, 41 of 119 samples. Wall-paced: the guest works 0.34 ms in all, one
    tick comes at the end of the first stall, and with a tick after every stall the
    per-tick throttle never trips: both of its 2 samples are kept."""
    work, pw = _perf(_legacy("work", 20, 400_000))
    assert (pw["ticks"], pw["throttles"], pw["lost_ns"]) == (20, 20, 0.0)
    assert (work.extra["samples_taken"], work.extra["samples_expected"]) == (41, 119)
    assert work.cost.guest_ns == 20e6  # the handlers' time came on top
    wall, pv = _perf(_legacy("wall", 20, 400_000))
    assert (pv["ticks"], pv["throttles"], pv["timer_hangs"]) == (1, 0, 0)
    assert (wall.extra["samples_taken"], wall.extra["samples_expected"]) == (2, 2)
    assert pv["lost_ns"] == 19663157.6
    assert wall.cost.guest_ns == 20e6 - pv["lost_ns"]  # the work is what the stalls left
    assert pv["ticks"] <= 20  # at most one tick per tick period of wall time


def test_a_tick_dearer_than_its_period_hangs_the_timer_interrupt_and_defers_it() -> None:
    """The seed as shipped (-F 4000) on the wall clock: each tick reprograms the fixed
    counter (5.5 ms under the legacy vPMU), so the tick expires again while it runs.
    Each timer interrupt runs it three times (16.7 ms) and defers the next interrupt
    by as long: 60 ms hold two such hangs, six ticks. Between them the frequency
    feedback -- perf aims at 4000 samples per second of its sched_clock, which the
    stalls fill -- keeps the period at its floor, so the guest retires 6 cycles."""
    r, p = _perf(_legacy("wall", 60))
    assert (p["timer_hangs"], p["ticks"], p["rows"][0]["value"]) == (2, 6, 6)
    assert r.extra["samples_taken"] == 3
    _, pw = _perf(_legacy("work", 60))
    assert (pw["timer_hangs"], pw["ticks"]) == (0, 60)


def test_the_clock_is_a_guest_key_and_a_bad_one_is_named() -> None:
    with pytest.raises(ConfigError, match="clock"):
        vpmu.run(_legacy("tsc", 1))


@pytest.mark.parametrize("strategy", ["emulated", "mediated"])
def test_identical_vcpus_stay_identical_on_the_wall_clock(strategy: str) -> None:
    """Each vCPU's clock takes only its own turns' ledger growth (a CostMeter lap in a
    lockstep loop), so four identical vCPUs end with identical results."""
    data = tomllib.loads((ROOT / "configs" / "seed-mediated-table.toml").read_text())
    data.pop("compare")
    data["machine"]["vcpus"] = data["host"]["pcpus"] = 4
    data["strategy"] = {"name": strategy, **({"mode": "rfc"} if strategy == "mediated" else {})}
    data["workload"] |= {"duration_ms": 10, "workers": 1, "symmetry": False}
    perf = vpmu.run(data).extra["perf"]
    assert all(p["lost_ns"] > 0 for p in perf)
    first = {k: v for k, v in perf[0].items() if k != "vcpu"}
    assert all({k: v for k, v in p.items() if k != "vcpu"} == first for p in perf)


def test_the_work_clock_is_the_model_before() -> None:
    """clock = "work" gives the figures of the work-paced model bit for bit: the 100 ms
    emulated run of tests/test_reproduce.py took 941 PMIs there (744 on the wall clock)."""
    data = tomllib.loads((ROOT / "configs" / "seed-mediated-table.toml").read_text())
    data.pop("compare")
    data["machine"]["vcpus"] = 1
    data["strategy"] = {"name": "emulated"}
    data["workload"] |= {"duration_ms": 100, "workers": 1}
    data["costs"] = {"host_nmi_handler": 1000.0}
    assert vpmu.run(data).pmis == [744]
    data["guest"]["clock"] = "work"
    work = vpmu.run(data)
    assert work.pmis == [941]
    assert work.cost.guest_ns == 100e6


def test_a_timer_pending_over_a_wait_fires_once_when_the_thread_runs_again() -> None:
    """Two vCPUs time-share one pCPU (4 ms slices) under perf stat at HZ 300, whose
    tick period (3.33 ms) is no float multiple of itself: a tick that expired while a
    thread waited fires once when it runs again and is forwarded past its expiry
    (an interrupt delivered a rounding error before its grid point looped forever)."""
    data = tomllib.loads((ROOT / "configs" / "seed-mediated-table.toml").read_text())
    data.pop("compare")
    data["machine"]["vcpus"], data["host"]["pcpus"] = 2, 1
    data["guest"]["hz"] = 300
    data["strategy"] = {"name": "emulated"}
    data["workload"] = {
        "kind": "perf-stat",
        "events": ["instructions"] * 3,
        "system_wide": True,
        "duration_ms": 50,
        "profile": "specint",
    }
    perf = vpmu.run(data).extra["perf"]
    assert [p["ticks"] for p in perf] == [12, 12]  # 15 periods, each thread away for some
