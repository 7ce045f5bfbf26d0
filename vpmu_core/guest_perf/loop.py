"""The per-vCPU simulation loop: every profiled vCPU, event to event, in lockstep.

Time: each vCPU runs from one interesting moment to the next -- the earliest
counter overflow (``GroundTruth.cycles_for`` inverts the profile's rates), the
guest tick (frequency adjustment, unthrottling), the mux rotation, a host
boundary -- never cycle by cycle. The host advances once per moment for all
vCPUs, so vCPUs that share a pCPU see each other's host events.

Compiled with the engine (setup.py); what a vCPU's run reports is :mod:`.result`.

Whose time: host time is the guest's wall time (its TSC runs on while KVM
handles an exit, switches the PMU or waits for the pCPU). Under ``[guest] clock
= "wall"`` (the default) a vCPU's work reaches ``host time - off-CPU time -
stolen time``, where stolen time is the priced ledger growth of everything its
turns caused (:meth:`GuestPerf.charge`; counts the host makes in
``Host.advance`` belong to no vCPU). Its tick and mux hrtimers fire on wall
time, and a vCPU that is in a stall (or off its pCPU) when one expires takes it
once, when the stall ends: tick_nohz_handler runs update_process_times -- so
perf_event_task_tick -- once per expiry and forwards the hrtimer past every
period missed (``hrtimer_forward(timer, now, TICK_NSEC)``, kernel/time/tick-sched.c),
and perf_mux_hrtimer_handler rotates once and forwards likewise
(kernel/events/core.c). ``clock = "work"`` is the what-if of the model before
that: every tick period of *work* gets its tick and every overhead comes on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from .core import GuestPerf
from .event import NSEC_PER_SEC
from .meter import cost_meter
from .result import VcpuResult, result_of
from .session import Session

if TYPE_CHECKING:
    from ..host import Host
    from ..machine import Machine

ProgressFn = Callable[[float], None]
#: hrtimer_interrupt defers the next interrupt by the time it hung, at most 100 ms
HANG_DEFER_MAX_NS = 100e6


def simulate(
    machine: Machine, vcpus: list[int], session: Session, progress: ProgressFn | None = None
) -> list[VcpuResult]:
    """Run ``session`` on ``vcpus`` of ``machine`` in lockstep with the host.

    ``progress`` is told the share of guest time done; it never changes the result.
    """
    ghz = session.ghz
    host = machine.host
    guest = machine.config.guest
    wall = guest.clock == "wall"
    hz = guest.hz or machine.config.host.hz  # the guest's own tick ([guest] hz)
    meter = cost_meter(machine) if session.sampling or wall else None
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
    timers = _WallTimers(perfs, host, ghz, tick_ns, mux_ns) if wall else None
    t = 0.0
    next_tick = tick_ns
    next_mux = mux_ns
    kt = km = 0  # tick and mux grid points passed
    last_report = 0.0
    while t < end_ns:
        nxt = min(next_tick, next_mux, host.next_boundary(), end_ns)
        for n, p in enumerate(perfs):
            # A vCPU whose thread waits for its pCPU executes nothing (its guest time
            # is the time its thread ran); threads switch only at host boundaries.
            if not host.on_cpu(p.vcpu):
                continue
            if timers is not None:
                timers.turn(n, nxt, kt, km)
                continue
            end = round((nxt - host.off_cpu_ns(p.vcpu)) * ghz)
            while p.cycles < end:
                p.run_to(end)
        t = nxt
        host.advance(t)
        tick, mux = t == next_tick, t == next_mux
        if tick:
            next_tick += tick_ns
            kt += 1
        if mux:
            next_mux += mux_ns
            km += 1
        if timers is not None:
            if tick or mux:
                timers.expire(t, kt, km)
        else:  # every tick first, then every rotation; a waiting vCPU's timer is lost
            if tick:
                for p in perfs:
                    if host.on_cpu(p.vcpu):
                        p.tick()
            if mux:
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
    if timers is None:
        return [result_of(p, end_ns, None, 0) for p in perfs]
    return [
        result_of(p, end_ns, host.off_cpu_ns(p.vcpu), timers.hangs[n]) for n, p in enumerate(perfs)
    ]


class _WallTimers:
    """The guest's tick and mux hrtimers on its wall clock, one pair per vCPU.

    Each vCPU's timers keep their own next expiry, as a grid index (tick ``k``
    expires at ``k * tick_ns``). One that expires while the vCPU is stalled (its
    clock past the grid point: a handler, a tick or a switch still runs) or off its
    pCPU is pending and fires once, when the vCPU works again. A delivery is one
    ``hrtimer_interrupt`` (kernel/time/hrtimer.c): the expired callbacks run (tick
    first), the tick re-arms from the time its callback started (tick_nohz_handler's
    ``hrtimer_forward(timer, now, TICK_NSEC)``), the mux from its end
    (``hrtimer_forward_now``); if one has expired again meanwhile the interrupt
    retries, three runs in all, and then defers the next interrupt by the time it
    took (at most 100 ms) so the CPU can do something else: a guest whose tick costs
    more than a tick period still works.
    """

    def __init__(
        self, perfs: list[GuestPerf], host: Host, ghz: float, tick_ns: float, mux_ns: float
    ) -> None:
        self.perfs = perfs
        self.host = host
        self.ghz = ghz
        self.tick_ns = tick_ns
        self.mux_ns = mux_ns
        self.tick_k = [1] * len(perfs)  # each vCPU's next tick expiry, as a grid index
        self.mux_k = [1] * len(perfs)
        self.defer = [0.0] * len(perfs)  # no interrupt before (a hang's deferral)
        self.hangs = [0] * len(perfs)

    def _target(self, p: GuestPerf, t: float) -> int:
        """The cycles the vCPU has retired when its clock reads host time ``t``."""
        return round((t - p.off_ns - p.stolen_ns) * self.ghz)

    def _wall(self, p: GuestPerf) -> float:
        return p.cycles / self.ghz + p.stolen_ns + p.off_ns

    def turn(self, n: int, nxt: float, kt: int, km: int) -> None:
        """vCPU ``n`` runs to host time ``nxt`` (``kt``/``km``: the tick and mux grid
        points passed): its pending timers fire when its stall (or deferral) ends, and
        its work is re-aimed after every PMI by the time the handler took."""
        p = self.perfs[n]
        p.off_ns = self.host.off_cpu_ns(p.vcpu)
        p.begin()
        while True:
            end = self._target(p, nxt)
            if end <= p.cycles:
                break  # stalled past nxt: no work in this interval
            tick, mux = self.tick_k[n] <= kt, self.mux_k[n] <= km
            if tick or mux:
                fire = self._target(p, self.defer[n])
                if fire <= p.cycles:
                    at = max(self.defer[n], self._wall(p), self._expiry(n, tick, mux))
                    self._interrupt(n, at, tick, mux)
                    continue
                end = min(end, fire)  # works until the deferred interrupt comes
            p.run_to(end)
        p.charge()

    def expire(self, t: float, kt: int, km: int) -> None:
        """Grid point ``t`` (``kt``/``km``: the tick and mux grid points passed, this
        one included): every running vCPU that is caught up takes what expired now."""
        host = self.host
        for n, p in enumerate(self.perfs):
            tick, mux = self.tick_k[n] <= kt, self.mux_k[n] <= km
            if not (tick or mux) or not host.on_cpu(p.vcpu) or self.defer[n] > t:
                continue
            p.off_ns = host.off_cpu_ns(p.vcpu)
            if self._target(p, t) >= p.cycles:
                p.begin()
                self._interrupt(n, t, tick, mux)

    def _expiry(self, n: int, tick: bool, mux: bool) -> float:
        """When the earliest of the expired timers expired (none fires before it)."""
        t = self.tick_k[n] * self.tick_ns if tick else math.inf
        return min(t, self.mux_k[n] * self.mux_ns if mux else math.inf)

    def _interrupt(self, n: int, at: float, tick: bool, mux: bool) -> None:
        """hrtimer_interrupt delivered at guest wall time ``at``. A timer is forwarded
        past the time given and at least one period (it expired, so its next expiry
        is after the last): every run moves it on, whatever the rounding."""
        p = self.perfs[n]
        now = at
        for _ in range(3):
            if tick:
                p.tick()
                p.charge()
                k = math.floor(now / self.tick_ns) + 1  # forwarded from its start
                self.tick_k[n] = max(self.tick_k[n] + 1, k)
                now = max(now, self._wall(p))
            if mux:
                p.rotate()
                p.charge()
                now = max(now, self._wall(p))
                k = math.floor(now / self.mux_ns) + 1  # forwarded from its end
                self.mux_k[n] = max(self.mux_k[n] + 1, k)
            tick = self.tick_k[n] * self.tick_ns <= now
            mux = self.mux_k[n] * self.mux_ns <= now
            if not (tick or mux):
                return
        self.hangs[n] += 1
        self.defer[n] = now + min(now - at, HANG_DEFER_MAX_NS)
