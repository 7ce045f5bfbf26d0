"""What one vCPU's guest perf saw, as the report gives it: a row per event and its
PMI, throttling and timer counts.

Why its own module: the result is a pydantic model (validated, serialised into the
run's JSON), while the loop that produces it is compiled with the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .event import NSEC_PER_SEC

if TYPE_CHECKING:
    from .core import GuestPerf


class VcpuResult(BaseModel):
    """What one vCPU's perf saw: a row per event and its PMI/throttling counts."""

    vcpu: int
    rows: list[dict[str, Any]]
    pmis: int
    pmis_dropped: int
    throttles: int
    lowered_to: int
    handler_avg_ns: float
    rotations: int
    ticks: int = Field(description="perf_event_task_tick runs (one per tick interrupt)")
    lost_ns: float = Field(
        description="wall time of the run the vCPU spent in priced mechanisms instead "
        "of working (0 under [guest] clock = 'work')"
    )
    timer_hangs: int = Field(
        description="hrtimer interrupts that found a timer expired again three times and "
        "deferred the next one ('hrtimer: interrupt took ... ns')"
    )


def result_of(p: GuestPerf, end_ns: float, off_ns: float | None, hangs: int) -> VcpuResult:
    """The report rows of one vCPU: counts, scaled counts and samples against the truth.

    ``off_ns``: the vCPU's off-CPU time at the end under the wall clock (None: the
    work clock, whose guest time is the whole run by definition).
    """
    rows = []
    for ev in p.events:
        qual = ev.key.qual
        truth = p.truth.count(ev.name, p.cycles, ev.usr, ev.os, qual)
        scaled = int(ev.count * ev.enabled_cycles / ev.running_cycles) if ev.running_cycles else 0
        expected = (
            ev.freq * p.cycles / p.ghz / NSEC_PER_SEC
            if ev.freq
            else (truth / ev.sample_period if ev.sampling else 0)
        )
        running_truth = ev.truth_running
        lost_host = max(0, running_truth - ev.count) if ev.sampling else 0
        per = max(1, ev.sample_period)
        if ev.freq:  # samples the asked rate would have given while throttled
            lost_thr = round(ev.freq * ev.throttled_cycles / p.ghz / NSEC_PER_SEC)
        else:
            lost_thr = ev.lost_throttled // per if ev.sampling else 0
        rows.append(
            {
                "counter": f"perf{ev.n}",
                "event": ev.label,
                "value": ev.count,
                "scaled": scaled,
                "truth": truth if p.truth.exact(qual) else None,  # EDGE: depends on the cuts
                "running_pct": 100.0 * ev.running_cycles / max(1, ev.enabled_cycles),
                "samples": ev.samples,
                "expected_samples": round(expected),
                "lost_throttle": lost_thr,
                "lost_host": lost_host // per,
                "period": ev.sample_period,
            }
        )
    return VcpuResult(
        vcpu=p.vcpu.index,
        rows=rows,
        pmis=len(p.vcpu.pmis),
        pmis_dropped=p.vcpu.pmis_dropped,
        throttles=p.throttles,
        lowered_to=p.limit.max_rate,
        handler_avg_ns=p.handler_ns / p.pmis_handled if p.pmis_handled else 0.0,
        rotations=p.rotations,
        ticks=p.seq,
        lost_ns=0.0 if off_ns is None else max(0.0, end_ns - p.cycles / p.ghz - off_ns),
        timer_hangs=hangs,
    )
