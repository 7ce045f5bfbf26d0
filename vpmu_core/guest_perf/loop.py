"""The per-vCPU simulation loop: every profiled vCPU, event to event, in lockstep.

Time: each vCPU runs from one interesting moment to the next -- the earliest
counter overflow (``GroundTruth.cycles_for`` inverts the profile's rates), the
guest tick (frequency adjustment, unthrottling), the mux rotation, a host
boundary -- never cycle by cycle. The host advances once per moment for all
vCPUs, so vCPUs that share a pCPU see each other's host events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .core import GuestPerf
from .event import NSEC_PER_SEC
from .meter import cost_meter
from .session import Session

if TYPE_CHECKING:
    from ..machine import Machine

ProgressFn = Callable[[float], None]


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


def simulate(
    machine: Machine, vcpus: list[int], session: Session, progress: ProgressFn | None = None
) -> list[VcpuResult]:
    """Run ``session`` on ``vcpus`` of ``machine`` in lockstep with the host.

    ``progress`` is told the share of guest time done; it never changes the result.
    """
    ghz = session.ghz
    host = machine.host
    guest = machine.config.guest
    hz = guest.hz or machine.config.host.hz  # the guest's own tick ([guest] hz)
    meter = cost_meter(machine) if session.sampling else None
    perfs: list[GuestPerf] = []
    for i in vcpus:
        v = machine.vcpus[i]
        drv = machine.guest_driver(v)
        perfs.append(GuestPerf(v, drv, session, hz, meter))
    tick_ns = NSEC_PER_SEC / hz
    mux_ns = (session.mux_interval_ms or guest.mux_interval_ms or 1000.0 / hz) * 1e6
    end_ns = session.duration_ms * 1e6
    for p in perfs:
        p.start()
    t = 0.0
    next_tick = tick_ns
    next_mux = mux_ns
    last_report = 0.0
    while t < end_ns:
        nxt = min(next_tick, next_mux, host.next_boundary(), end_ns)
        for p in perfs:
            # A vCPU whose thread waits for its pCPU executes nothing (its guest time
            # is the time its thread ran); threads switch only at host boundaries.
            if host.on_cpu(p.vcpu):
                p.run_to(round((nxt - host.off_cpu_ns(p.vcpu)) * ghz))
        t = nxt
        host.advance(t)
        if t == next_tick:
            next_tick += tick_ns
            for p in perfs:
                if host.on_cpu(p.vcpu):  # a waiting vCPU's timer fires once it runs
                    p.tick()
        if t == next_mux:
            next_mux += mux_ns
            for p in perfs:
                if host.on_cpu(p.vcpu):
                    p.rotate()
        if progress is not None and t - last_report >= end_ns / 200:
            last_report = t
            progress(t / end_ns)
    for p in perfs:
        p.finish()
        p.vcpu.sync()
    if progress is not None:
        progress(1.0)
    return [_result(p) for p in perfs]


def _result(p: GuestPerf) -> VcpuResult:
    """The report rows of one vCPU: counts, scaled counts and samples against the truth."""
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
    )
