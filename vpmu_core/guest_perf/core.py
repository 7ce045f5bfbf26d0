"""perf's core on one vCPU: scheduling, rotation, frequency mode, throttling, PMIs.

Each method names the ``kernel/events/core.c`` (or ``arch/x86/events/core.c``)
function it follows; no code is copied. Every MSR access goes through the
backend's :class:`~vpmu_core.guest.GuestDriver` and the public vCPU API, so the
strategy counts exits, perf operations and PMIs exactly as for any other guest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..counters import FIXED_BASE
from ..errors import ConfigError
from .event import MAX_INTERRUPTS, NSEC_PER_SEC, PEvent
from .schedule import assign, fixed_counter, gp_indexes
from .session import Session
from .throttle import SampleRateLimit

if TYPE_CHECKING:
    from ..guest import GuestDriver
    from ..vcpu import Vcpu
    from .meter import CostMeter


class GuestPerf:
    """perf's core on one vCPU: scheduling, rotation, frequency mode, throttling, PMIs."""

    def __init__(
        self,
        vcpu: Vcpu,
        drv: GuestDriver,
        session: Session,
        hz: int,
        handler_cost: CostMeter | None,
    ) -> None:
        self.vcpu = vcpu
        self.drv = drv
        self.session = session
        self.truth = session.truth
        self.ghz = session.ghz
        self.hz = hz
        self.tick_ns = NSEC_PER_SEC // hz
        self.cycles = 0
        self.seq = 0  # perf_throttled_seq: bumped every tick
        caps = vcpu.pmu.caps
        fw = caps.full_width_writes
        # x86_pmu.max_period: 2^47-1 with full-width writes, else 2^31-1 (spec §4.3)
        self.max_period = (1 << (caps.gp_width - 1)) - 1 if fw else (1 << 31) - 1
        self.gp = gp_indexes(vcpu)  # the GP indexes this vCPU has (holes allowed)
        self.events: list[PEvent] = []
        for n, name in enumerate(session.events):
            spec = drv.event(name)
            fixed = fixed_counter(vcpu, drv.fixed_index(spec))
            gp_ok = drv.gp_allowed(spec)
            if fixed is None and not gp_ok:
                raise ConfigError(
                    "workload.events", name, "counts only on a fixed counter this PMU lacks"
                )
            ev = PEvent(n, spec, fixed, name, gp_ok)
            ev.usr, ev.os = session.usr, session.os
            if session.sampling:
                ev.sampling = True
                if session.freq is not None:
                    ev.freq = session.freq
                    ev.sample_period = 1  # perf_event_alloc: freq events start at period 1
                else:
                    ev.sample_period = session.period or 1
            else:
                ev.sample_period = self.max_period  # counting: armed at -max_period
            ev.last_period = ev.sample_period
            ev.period_left = ev.sample_period
            self.events.append(ev)
        self.order = list(self.events)  # flexible groups in rotation order
        self.by_idx: dict[int, PEvent] = {}
        self.rotate_necessary = False
        self.rotations = 0
        # throttling and its auto-lowering (kernel/events/core.c)
        self.limit = SampleRateLimit(session.max_sample_rate, session.cpu_time_max_percent, hz)
        self.handler_cost = handler_cost
        self.seen_pmis = len(vcpu.pmis)
        # the guest's clock beyond its work: the priced time of its PMI handlers (exits
        # included) or, with [guest] clock = "wall", of everything its turns caused
        self.stolen_ns = 0.0
        self.off_ns = 0.0  # host time its thread waited off its pCPU, as of its last turn
        self._mark: list[int] = []  # the ledger's counts at this vCPU's last charge
        self.ledger_events = vcpu.machine.ledger.events
        self.handler_ns = 0.0
        self.throttles = 0
        self.pmis_handled = 0
        self.events_names = sorted({e.name for e in self.events})
        guest = vcpu.machine.config.guest
        self.kernel: tuple[int, int] = guest.version
        self.wall_clock = guest.clock == "wall"
        # 6.2 (bd2756811766) dropped the outer perf_pmu_disable around the tick's loop
        # and 6.10 (0259bf63f71e) restored it: in between every event toggled the PMU.
        self.tick_toggles_per_event = (6, 2) <= self.kernel < (6, 10)
        # perf enables its fds one ioctl at a time: event k starts k gaps after the first
        gap = guest.enable_gap_us if session.staggered else 0.0
        self.enable_gap = round(gap * 1000 * self.ghz)

    # ---------------------------------------------------------------- helpers
    def now_ns(self) -> int:
        """The guest's sched_clock (TSC): its cycles plus the priced time its vCPU spent
        elsewhere (handlers; under the wall clock every mechanism, and waits off-CPU)."""
        return int(self.cycles / self.ghz + self.stolen_ns + self.off_ns)

    def begin(self) -> None:
        """This vCPU's turn starts: the ledger's growth from here on is its own (the
        loop is lockstep, so nobody else counts until the turn ends)."""
        if self.handler_cost is not None:
            self._mark = self.handler_cost.mark()

    def charge(self) -> float:
        """Put the ledger's growth since the last mark on this vCPU's clock."""
        meter = self.handler_cost
        if meter is None:
            return 0.0
        took, self._mark = meter.lap(self._mark)
        self.stolen_ns += took
        return took

    def _truth(self, ev: PEvent) -> int:
        return self.truth.count(ev.name, self.cycles, ev.usr, ev.os, ev.key.qual)

    # ----------------------------------------- x86 scheduling (x86_schedule_events)
    def _sched_in_all(self, upto: int | None = None) -> None:
        """ctx_sched_in of the flexible groups: add in order until one does not fit.

        ``upto``: only the first ``upto`` groups exist yet (perf's start enables them
        one by one); those already running stay where they are.
        """
        chosen: list[PEvent] = []
        plan: dict[int, int] = {}
        self.rotate_necessary = False
        order = self.order if upto is None else self.order[:upto]
        for ev in order:
            trial = assign([*chosen, ev], self.gp)
            if trial is None:
                self.rotate_necessary = True
                break
            chosen.append(ev)
            plan = trial
        moved = [e for e in chosen if self._running(e) and e.idx != plan[e.n]]
        if moved:  # x86_pmu_enable step 1: events whose counter changed are stopped
            self._sched_out_all()
        for ev in chosen:
            if self._running(ev):
                continue  # already in, on the counter the plan keeps it on
            ev.idx = plan[ev.n]
            self.by_idx[ev.idx] = ev
            ev.run_since = self.cycles
            if ev.interrupts == MAX_INTERRUPTS:  # event_sched_in unthrottles
                ev.interrupts = 0
            self._start(ev, reload=True)

    def _running(self, ev: PEvent) -> bool:
        return ev.idx is not None and self.by_idx.get(ev.idx) is ev

    def _sched_out_all(self) -> None:
        for ev in self.order:
            if self._running(ev):
                self._stop(ev, update=True)
                ev.running_cycles += self.cycles - ev.run_since
                if ev.interrupts == MAX_INTERRUPTS:  # throttled until now
                    self._throttle_ends(ev)
                assert ev.idx is not None
                del self.by_idx[ev.idx]

    def _throttle_ends(self, ev: PEvent) -> None:
        """What a throttled event missed from its throttling to now (unthrottled, scheduled
        out or read at the end): the ground truth's events and the cycles."""
        ev.lost_throttled += self._truth(ev) - ev.throttled_at
        ev.throttled_cycles += self.cycles - ev.throttled_since

    # -------------------------------------------- x86_pmu_start / x86_pmu_stop
    def _set_period(self, ev: PEvent) -> int:
        """x86_perf_event_set_period: the raw value armed; ``ev.reloaded`` if it overflowed."""
        left = ev.period_left
        period = ev.sample_period
        ev.reloaded = False
        if left <= -period:
            left = period
            ev.last_period = period
            ev.reloaded = True
        if left <= 0:
            left += period
            ev.last_period = period
            ev.reloaded = True
        ev.period_left = left
        left = max(2, min(left, self.max_period))  # x86: at least 2 (the quirk)
        assert ev.idx is not None
        mask = self.vcpu.counters[ev.idx].mask
        ev.prev_raw = (-left) & mask
        return ev.prev_raw

    def _update(self, ev: PEvent, raw: int) -> None:
        """x86_perf_event_update: fold the counter's delta into count and period_left."""
        assert ev.idx is not None
        pmc = self.vcpu.counters[ev.idx]
        delta = (raw - ev.prev_raw) & pmc.mask
        if delta >> (pmc.width - 1):
            delta -= pmc.mask + 1
        ev.prev_raw = raw
        ev.count += delta
        ev.period_left -= delta

    def _enable(self, ev: PEvent) -> None:
        assert ev.idx is not None
        if ev.idx >= FIXED_BASE:
            self.drv.program_fixed(ev.idx - FIXED_BASE, usr=ev.usr, os=ev.os, intr=True)
        else:
            self.drv.start_gp(ev.idx, ev.key, usr=ev.usr, os=ev.os, intr=True)

    def _disable(self, ev: PEvent) -> None:
        assert ev.idx is not None
        if ev.idx >= FIXED_BASE:
            self.drv.stop_fixed(ev.idx - FIXED_BASE)
        else:
            self.drv.stop_gp(ev.idx, ev.key, usr=ev.usr, os=ev.os, intr=True)

    def _start(self, ev: PEvent, reload: bool) -> None:
        if reload:
            assert ev.idx is not None
            self.drv.write_counter(ev.idx, self._set_period(ev))
        self._enable(ev)
        if ev.stopped:
            ev.run_mark = self._truth(ev)
        ev.stopped = False
        ev.uptodate = False

    def _stop(self, ev: PEvent, update: bool) -> None:
        """x86_pmu_stop: disable only if running; read the counter unless up to date."""
        if not ev.stopped:
            self._disable(ev)
            ev.truth_running += self._truth(ev) - ev.run_mark
            ev.stopped = True
        if update and not ev.uptodate:
            assert ev.idx is not None
            self._update(ev, self.drv.read_counter(ev.idx))
            ev.uptodate = True

    # ---------------------------------------------------- frequency adjustment
    def _adjust_period(self, ev: PEvent, nsec: int, count: int, disable: bool) -> None:
        """perf_adjust_period: the period for ``freq`` samples/s, low-pass filtered by 1/8
        (rounded away from zero, Luo Gengkun 2024); a far-off armed period is reloaded."""
        if nsec <= 0:
            return
        period = count * NSEC_PER_SEC // (nsec * ev.freq)
        delta = period - ev.sample_period
        delta = (delta + 7) // 8 if delta >= 0 else -((-delta + 7) // 8)
        ev.sample_period += delta
        if ev.sample_period <= 0:
            ev.sample_period = 1
        if ev.period_left > 8 * ev.sample_period:
            if disable:
                self._stop(ev, update=True)
            ev.period_left = 0
            if disable:
                self._start(ev, reload=True)

    # ----------------------------------------------------------------- ticks
    def tick(self) -> None:
        """perf_event_task_tick -> perf_adjust_freq_unthr_context, under perf_pmu_disable."""
        self.seq += 1
        freq = [e for e in self.by_idx.values() if e.freq]
        unthr = [e for e in self.by_idx.values() if e.interrupts == MAX_INTERRUPTS]
        if not freq and not unthr:
            return
        drv = self.drv
        per_event = self.tick_toggles_per_event
        if not per_event:
            drv.disable_all()
        for ev in sorted(self.by_idx.values(), key=lambda e: e.n):
            if per_event:
                drv.disable_all()
            if ev.interrupts == MAX_INTERRUPTS:
                ev.interrupts = 0
                self._throttle_ends(ev)
                if not ev.freq:
                    self._start(ev, reload=False)
            if ev.freq:
                self._stop(ev, update=True)
                now = ev.count
                delta = now - ev.freq_count_stamp
                ev.freq_count_stamp = now
                if delta > 0:
                    self._adjust_period(ev, self.tick_ns, delta, False)
                self._start(ev, reload=delta > 0)
            if per_event:
                drv.enable_all()
        if not per_event:
            drv.enable_all()
        self.service()

    def rotate(self) -> None:
        """perf_rotate_context: only when a flexible group did not fit."""
        if not self.rotate_necessary:
            return
        self.rotations += 1
        self.drv.disable_all()
        self._sched_out_all()
        self.order.append(self.order.pop(0))
        self._sched_in_all()
        self.drv.unmask_pmi()  # x86_pmu_enable with events added: perf_events_lapic_init
        self.drv.enable_all()
        self.service()

    # ------------------------------------------------------------------ PMIs
    def update(self, idx: int, raw: int) -> None:
        """PmiClient: the handler read counter ``idx`` (x86_perf_event_update)."""
        ev = self.by_idx.get(idx)
        if ev is not None:
            self._update(ev, raw)

    def rearm(self, idx: int) -> int | None:
        """PmiClient: the value counter ``idx`` is re-armed with (None: not perf's)."""
        ev = self.by_idx.get(idx)
        if ev is None:
            return None
        return self._set_period(ev)

    def overflowed(self, idx: int) -> None:
        """perf_event_overflow -> __perf_event_account_interrupt, then the sample."""
        ev = self.by_idx.get(idx)
        if ev is None or not ev.reloaded or not ev.sampling:
            return
        throttle = False
        if ev.interrupts_seq != self.seq:
            ev.interrupts_seq = self.seq
            ev.interrupts = 1
        else:
            ev.interrupts += 1
            throttle = self.limit.too_many(ev.interrupts)
        if ev.freq:
            now = self.now_ns()
            nsec = now - ev.freq_time_stamp
            ev.freq_time_stamp = now
            if 0 < nsec < 2 * self.tick_ns:
                self._adjust_period(ev, nsec, ev.last_period, True)
        ev.samples += 1
        self.ledger_events["guest_sample"] += 1
        if throttle:
            ev.interrupts = MAX_INTERRUPTS
            ev.throttled_at = self._truth(ev)
            ev.throttled_since = self.cycles
            self.throttles += 1
            self._stop(ev, update=False)  # x86_pmu_stop(event, 0): no update

    def handle_pmi(self) -> None:
        """The vendor handler, timed as perf_event_nmi_handler times it: priced from
        the ledger delta it caused (this vCPU's own, whatever the others did).

        Under the wall clock what the turn caused before the PMI goes on the clock
        first, so the handler's sched_clock reads include it.
        """
        meter = self.handler_cost
        if meter is None:
            self.drv.handle_pmi(self)
            self.pmis_handled += 1
            return
        if self.wall_clock:
            self.charge()
        else:
            self._mark = meter.mark()
        self.drv.handle_pmi(self)
        self.pmis_handled += 1
        took = self.charge()
        self.handler_ns += took
        self.limit.took(took)

    # ------------------------------------------------------------ the engine
    def start(self) -> None:
        """perf enables its events one fd at a time (an ioctl each), so they start apart.

        Each enable is perf_pmu_disable, sched in, x86_pmu_enable (which writes the
        LVTPC because an event was added), perf_pmu_enable; the guest then runs
        ``enable_gap`` cycles to the next ioctl. Frequency events re-arm from their own
        overflows, so the gap de-phases their PMIs for good (costs.md §3e): N events
        at F Hz give about N*F PMIs/s, not F. The gap depends on an event's position
        only, so identical vCPUs stay identical.

        The guest's wall clock starts with the run, once an event is enabled: what an
        enable costs is not on it (one vCPU's first creation pays the host-wide
        ``perf_sched_events`` key for all, workloads/parallel.py, so no vCPU's clock
        may depend on which one paid); PMIs between two ioctls are.
        """
        drv = self.drv
        batches = [len(self.order)] if not self.enable_gap else range(1, len(self.order) + 1)
        for k in batches:
            if k > 1 and self.enable_gap:
                gap_end = self.cycles + self.enable_gap
                while self.cycles < gap_end:
                    self.run_to(gap_end)
            drv.disable_all()
            self._sched_in_all(upto=k)
            drv.unmask_pmi()  # x86_pmu_enable, events added: perf_events_lapic_init
            drv.enable_all()
            self.begin()
            now = self.now_ns()
            for ev in self.order[(k - 1 if self.enable_gap else 0) : k]:
                ev.freq_time_stamp = now  # the ones this ioctl enabled
            self.service()

    def run_to(self, end: int) -> None:
        """Retire the profile up to cycle ``end``, stopping at each overflow for its PMI;
        return after a PMI's handler, so the caller can move ``end`` by the time it took."""
        vcpu = self.vcpu
        truth = self.truth
        names = self.events_names
        while self.cycles < end:
            step = end - self.cycles
            now = self.cycles
            for name in names:
                # the counters of one event and privilege filter overflow in order of
                # their remaining counts: invert the rates once, for the nearest
                nearest: dict[tuple[bool, bool], int] = {}
                for cpl in (3, 0):
                    for pmc in vcpu.counting(name, cpl):
                        f = (pmc.usr, pmc.os)
                        k = pmc.events_to_overflow()
                        if k < nearest.get(f, k + 1):
                            nearest[f] = k
                for (usr, os), k in nearest.items():
                    need = truth.cycles_for(name, now, k, usr, os)
                    if need is not None and need < step:
                        step = max(1, need)
            self._retire(self.cycles + step)
            vcpu.sync()
            if len(vcpu.pmis) > self.seen_pmis:
                self.service()
                return

    def service(self) -> None:
        """Run the handler for every PMI the guest took, including one that arrives
        while a handler, a tick or a rotation runs (taken after it returns, as a
        latched NMI is)."""
        pmis = self.vcpu.pmis
        while len(pmis) > self.seen_pmis:
            self.seen_pmis += 1
            self.handle_pmi()

    def _retire(self, to: int) -> None:
        vcpu = self.vcpu
        truth = self.truth
        u0, k0 = truth.split(self.cycles)
        u1, k1 = truth.split(to)
        self.cycles = to
        vcpu.clock = to
        cu, ck = u1 - u0, k1 - k0  # the cycles the events took: CMASK/INV/EDGE count them
        for name in self.events_names:
            ru, rk = truth.rates(name)
            nu = int(u1 * ru) - int(u0 * ru)
            nk = int(k1 * rk) - int(k0 * rk)
            if nu or cu:
                vcpu.retire(name, nu, 3, cu)
            if nk or ck:
                vcpu.retire(name, nk, 0, ck)

    def finish(self) -> None:
        """perf disables and reads its events (the final read of perf stat/record)."""
        self.drv.disable_all()
        for ev in self.events:
            if self._running(ev):
                assert ev.idx is not None
                if not ev.stopped:
                    ev.truth_running += self._truth(ev) - ev.run_mark
                    ev.stopped = True
                self._update(ev, self.drv.read_counter(ev.idx))
                ev.running_cycles += self.cycles - ev.run_since
                if ev.interrupts == MAX_INTERRUPTS:
                    self._throttle_ends(ev)
            ev.enabled_cycles = self.cycles
