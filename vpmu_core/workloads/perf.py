"""``perf-stat`` and ``perf-record``: Linux perf inside the guest, event to event.

Why a model of perf's core and not a script of MSR writes: what a vPMU costs under
perf depends on what perf decides at run time -- which counter an event lands
on, when the multiplexer rotates, how the frequency-mode period converges, when
an event is throttled, and how a slow PMI handler makes the kernel lower its own
sample rate. Those decisions are made here, the way ``kernel/events/core.c``
makes them (each function names the one it follows; no code is copied); every
MSR access they cause goes through the backend's :class:`~vpmu_core.guest.GuestDriver`
and the public vCPU API, so exits, perf operations and PMIs are counted by the
strategy exactly as for any other guest.

Time: each vCPU runs from one interesting moment to the next -- the earliest
counter overflow (``Truth.cycles_for`` inverts the profile's rates), the guest
tick (frequency adjustment, unthrottling), the mux rotation, a host boundary --
never cycle by cycle. vCPUs that cannot interact are simulated in separate
processes (``workers``); the ledgers are summed in vCPU order, so the result is
the same with any number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..counters import FIXED_BASE
from ..errors import ConfigError
from .base import CounterRow, Workload, WorkloadOutput
from .profiles import Profile, Truth, resolve

if TYPE_CHECKING:
    from ..guest import GuestDriver
    from ..machine import Machine
    from ..vcpu import Vcpu

NSEC_PER_SEC = 1_000_000_000
NR_ACCUMULATED_SAMPLES = 128  # kernel/events/core.c
MAX_INTERRUPTS = -1  # hwc->interrupts while throttled

ProgressFn = Callable[[float], None]


class PerfConfigBase(BaseModel):
    """What ``perf stat`` and ``perf record`` share: events, profile, scope, duration."""

    model_config = ConfigDict(extra="forbid")
    events: list[str] = Field(
        default_factory=lambda: ["instructions"],
        min_length=1,
        description="one perf event per entry, each its own group (repeat a name for N "
        "instances, as `-e instructions,instructions,...`)",
    )
    profile: str | Profile = Field(
        "specint", description="event rates: 'specint', 'idle', or a table of rates by CPL"
    )
    duration_ms: float = Field(100.0, gt=0, description="guest time perf runs for")
    system_wide: bool = Field(True, description="-a: every vCPU (else vCPU 0 only)")
    count: Literal["all", "user", "kernel"] = Field(
        "all", description="privilege filter (`--all-user` = user, `--all-kernel` = kernel)"
    )
    mux_interval_ms: float | None = Field(
        None, gt=0, description="perf_event_mux_interval_ms of the guest (default 1000/HZ)"
    )
    workers: int = Field(
        1, ge=1, le=64, description="processes vCPUs are simulated in when they cannot interact"
    )

    @model_validator(mode="after")
    def _check_profile(self) -> PerfConfigBase:
        resolve(self.profile)
        return self


class PerfStatConfig(PerfConfigBase):
    kind: Literal["perf-stat"]


class PerfRecordConfig(PerfConfigBase):
    kind: Literal["perf-record"]
    freq: int | None = Field(
        4000,
        ge=1,
        description="-F: samples per second per event (perf record's default 4000, costs.md §5)",
    )
    period: int | None = Field(
        None, ge=2, description="-c: fixed sample period (set freq to null to use it)"
    )
    max_sample_rate: int = Field(
        100_000, ge=1, description="kernel.perf_event_max_sample_rate (default 100000)"
    )
    cpu_time_max_percent: int = Field(
        25,
        ge=0,
        le=100,
        description="kernel.perf_cpu_time_max_percent: 0 disables the auto-lowering",
    )

    @model_validator(mode="after")
    def _check_mode(self) -> PerfRecordConfig:
        if (self.freq is None) == (self.period is None):
            raise ConfigError(
                "workload.freq", self.freq, "give exactly one of freq (-F) and period (-c)"
            )
        return self


# --------------------------------------------------------------- the guest perf
class PEvent:
    """One perf event in the guest: perf's ``struct hw_perf_event`` state that matters."""

    __slots__ = (
        "count",
        "enabled_cycles",
        "fixed",
        "freq",
        "freq_count_stamp",
        "freq_time_stamp",
        "idx",
        "interrupts",
        "interrupts_seq",
        "key",
        "last_period",
        "lost_throttled",
        "n",
        "name",
        "os",
        "period_left",
        "prev_raw",
        "reloaded",
        "run_mark",
        "run_since",
        "running_cycles",
        "sample_period",
        "samples",
        "sampling",
        "stopped",
        "throttled_at",
        "throttled_cycles",
        "throttled_since",
        "truth_running",
        "uptodate",
        "usr",
    )

    def __init__(self, n: int, name: str, key: tuple[int, int], fixed: int | None) -> None:
        self.n = n
        self.name = name
        self.key = key
        self.fixed = fixed  # the fixed counter that can count it, if any
        self.usr = self.os = True
        self.sampling = False
        self.freq = 0
        self.sample_period = 0
        self.last_period = 0
        self.period_left = 0
        self.idx: int | None = None  # the PMC it runs on now
        self.prev_raw = 0
        self.count = 0
        self.running_cycles = 0
        self.enabled_cycles = 0
        self.run_since = 0
        self.freq_time_stamp = 0
        self.freq_count_stamp = 0
        self.interrupts = 0
        self.interrupts_seq = -1
        self.stopped = True  # not counting (never started, stopped, throttled)
        self.uptodate = True  # count folded since the last stop
        self.throttled_at = 0
        self.samples = 0
        self.reloaded = False
        self.truth_running = 0  # ground-truth events while it counted
        self.run_mark = 0  # the ground truth when it last started counting
        self.lost_throttled = 0  # ground-truth events while throttled
        self.throttled_cycles = 0  # guest cycles spent throttled
        self.throttled_since = 0


class GuestPerf:
    """perf's core on one vCPU: scheduling, rotation, frequency mode, throttling, PMIs."""

    def __init__(
        self,
        vcpu: Vcpu,
        drv: GuestDriver,
        cfg: PerfConfigBase,
        truth: Truth,
        ghz: float,
        hz: int,
        handler_cost: Callable[[], float] | None,
    ) -> None:
        self.vcpu = vcpu
        self.drv = drv
        self.cfg = cfg
        self.truth = truth
        self.ghz = ghz
        self.hz = hz
        self.tick_ns = NSEC_PER_SEC // hz
        self.cycles = 0
        self.seq = 0  # perf_throttled_seq: bumped every tick
        caps = vcpu.pmu.caps
        fw = caps.full_width_writes
        # x86_pmu.max_period: 2^47-1 with full-width writes, else 2^31-1 (spec §4.3)
        self.max_period = (1 << (caps.gp_width - 1)) - 1 if fw else (1 << 31) - 1
        self.gp = caps.gp_counters
        usr = cfg.count in ("all", "user")
        os = cfg.count in ("all", "kernel")
        record = isinstance(cfg, PerfRecordConfig)
        self.events: list[PEvent] = []
        for n, name in enumerate(cfg.events):
            fixed = drv.fixed_index(name)
            ev = PEvent(n, name, drv.gp_key(name), fixed)
            ev.usr, ev.os = usr, os
            if record:
                assert isinstance(cfg, PerfRecordConfig)
                ev.sampling = True
                if cfg.freq is not None:
                    ev.freq = cfg.freq
                    ev.sample_period = 1  # perf_event_alloc: freq events start at period 1
                else:
                    ev.sample_period = cfg.period or 1
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
        self.max_rate = getattr(cfg, "max_sample_rate", 100_000)
        self.percent = getattr(cfg, "cpu_time_max_percent", 25)
        self.mspt = math.ceil(self.max_rate / hz)  # max_samples_per_tick
        self.allowed_ns = NSEC_PER_SEC / self.max_rate * self.percent / 100
        self.running_len = 0.0
        self.lowered = 0
        self.handler_cost = handler_cost
        self.seen_pmis = len(vcpu.pmis)
        self.stolen_ns = 0.0  # guest clock time spent in handlers (exits included)
        self.ledger_events = vcpu.machine.ledger.events
        self.handler_ns = 0.0
        self.throttles = 0
        self.pmis_handled = 0
        self.events_names = sorted({e.name for e in self.events})
        self.retired: dict[str, tuple[int, int]] = {}

    # ---------------------------------------------------------------- helpers
    def now_ns(self) -> int:
        """The guest's sched_clock: its cycles plus the time its handlers took."""
        return int(self.cycles / self.ghz + self.stolen_ns)

    def _truth(self, ev: PEvent) -> int:
        return self.truth.count(ev.name, self.cycles, ev.usr, ev.os)

    # ----------------------------------------- x86 scheduling (x86_schedule_events)
    def _assign(self, evs: list[PEvent]) -> dict[int, int] | None:
        """Counters for ``evs``: keep every previous counter if all can (the fast
        path), else greedy in order, a fixed counter first where one counts the event."""
        used: set[int] = set()
        out: dict[int, int] = {}
        fast = True
        for ev in evs:
            i = ev.idx
            if i is None or i in used:
                fast = False
                break
            used.add(i)
            out[ev.n] = i
        if fast:
            return out
        used.clear()
        out.clear()
        for ev in evs:
            if ev.fixed is not None and FIXED_BASE + ev.fixed not in used:
                i = FIXED_BASE + ev.fixed
            else:
                free = [g for g in range(self.gp) if g not in used]
                if not free:
                    return None
                i = free[0]
            used.add(i)
            out[ev.n] = i
        return out

    def _sched_in_all(self) -> None:
        """ctx_sched_in of the flexible groups: add in order until one does not fit."""
        chosen: list[PEvent] = []
        plan: dict[int, int] = {}
        self.rotate_necessary = False
        for ev in self.order:
            trial = self._assign([*chosen, ev])
            if trial is None:
                self.rotate_necessary = True
                break
            chosen.append(ev)
            plan = trial
        for ev in chosen:
            ev.idx = plan[ev.n]
            self.by_idx[ev.idx] = ev
            ev.run_since = self.cycles
            if ev.interrupts == MAX_INTERRUPTS:  # event_sched_in unthrottles
                ev.interrupts = 0
            self._start(ev, reload=True)

    def _sched_out_all(self) -> None:
        for ev in self.order:
            if ev.idx is not None and self.by_idx.get(ev.idx) is ev:
                self._stop(ev, update=True)
                ev.running_cycles += self.cycles - ev.run_since
                if ev.interrupts == MAX_INTERRUPTS:  # throttled until now
                    ev.lost_throttled += self._truth(ev) - ev.throttled_at
                    ev.throttled_cycles += self.cycles - ev.throttled_since
                del self.by_idx[ev.idx]

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
        drv.disable_all()
        for ev in sorted(self.by_idx.values(), key=lambda e: e.n):
            if ev.interrupts == MAX_INTERRUPTS:
                ev.interrupts = 0
                ev.lost_throttled += self._truth(ev) - ev.throttled_at
                ev.throttled_cycles += self.cycles - ev.throttled_since
                if not ev.freq:
                    self._start(ev, reload=False)
            if not ev.freq:
                continue
            self._stop(ev, update=True)
            now = ev.count
            delta = now - ev.freq_count_stamp
            ev.freq_count_stamp = now
            if delta > 0:
                self._adjust_period(ev, self.tick_ns, delta, False)
            self._start(ev, reload=delta > 0)
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
        self.drv.enable_all()
        self.service()

    # ------------------------------------------------------------------ PMIs
    def update(self, idx: int, raw: int) -> None:
        ev = self.by_idx.get(idx)
        if ev is not None:
            self._update(ev, raw)

    def rearm(self, idx: int) -> int | None:
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
            # Linux 4.x-6.15 checks from the second interrupt of a tick, with >=
            if self.mspt and ev.interrupts >= self.mspt:
                throttle = True
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
        """The vendor handler, timed as perf_event_nmi_handler times it."""
        before = self.handler_cost() if self.handler_cost is not None else 0.0
        self.drv.handle_pmi(self)
        self.pmis_handled += 1
        if self.handler_cost is None:
            return
        took = self.handler_cost() - before
        self.handler_ns += took
        self.stolen_ns += took
        self._sample_took(took)

    def _sample_took(self, ns: float) -> None:
        """perf_sample_event_took (Linux 4.x+): a running average over 128 samples;
        above the allowed time the sample rate is lowered to fit 25% of a tick."""
        if self.allowed_ns <= 0 or not self.percent:
            return
        self.running_len += ns - self.running_len / NR_ACCUMULATED_SAMPLES
        avg = self.running_len / NR_ACCUMULATED_SAMPLES
        if avg <= self.allowed_ns:
            return
        avg += avg / 4
        budget = self.tick_ns / 100 * self.percent
        mspt = int(budget // avg) if avg < budget else 1
        self.allowed_ns = avg
        self.mspt = max(1, mspt)
        self.max_rate = self.mspt * self.hz
        self.lowered += 1

    # ------------------------------------------------------------ the engine
    def start(self) -> None:
        """perf enables its events: perf_pmu_disable, sched in, perf_pmu_enable."""
        drv = self.drv
        drv.disable_all()
        if any(e.sampling for e in self.events):
            drv.unmask_pmi()  # perf_events_lapic_init: LVTPC = NMI
        self._sched_in_all()
        drv.enable_all()
        for ev in self.events:
            ev.freq_time_stamp = self.now_ns()
        self.service()

    def run_to(self, end: int) -> None:
        """Retire the profile up to cycle ``end``, stopping at each overflow for its PMI."""
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
        for name in self.events_names:
            ru, rk = truth.rates(name)
            nu = int(u1 * ru) - int(u0 * ru)
            nk = int(k1 * rk) - int(k0 * rk)
            if nu:
                vcpu.retire(name, nu, 3)
            if nk:
                vcpu.retire(name, nk, 0)

    def finish(self) -> None:
        """perf disables and reads its events (the final read of perf stat/record)."""
        self.drv.disable_all()
        for ev in self.events:
            if ev.idx is not None and self.by_idx.get(ev.idx) is ev:
                if not ev.stopped:
                    ev.truth_running += self._truth(ev) - ev.run_mark
                    ev.stopped = True
                self._update(ev, self.drv.read_counter(ev.idx))
                ev.running_cycles += self.cycles - ev.run_since
                if ev.interrupts == MAX_INTERRUPTS:
                    ev.lost_throttled += self._truth(ev) - ev.throttled_at
                    ev.throttled_cycles += self.cycles - ev.throttled_since
            ev.enabled_cycles = self.cycles


# ------------------------------------------------------------------- the run
class VcpuResult(BaseModel):
    vcpu: int
    rows: list[dict[str, Any]]
    pmis: int
    pmis_dropped: int
    throttles: int
    lowered_to: int
    handler_avg_ns: float
    rotations: int


def _cost_meter(machine: Machine) -> Callable[[], float]:
    """The ns the ledger stands for so far: what the guest's clock sees a handler take."""
    from ..costs import EVENT_COSTS, PERF_OP_COSTS, PMI_COSTS, exit_cost

    table = machine.config.costs
    led = machine.ledger
    exit_c: dict[str, float] = {}

    def meter() -> float:
        total = 0.0
        for r, n in led.exits.items():
            c = exit_c.get(r)
            if c is None:
                c = exit_c[r] = exit_cost(table, r)
            total += n * c
        for k, n in led.perf_ops.items():
            f = PERF_OP_COSTS.get(k)
            if f is not None:
                total += n * float(getattr(table, f))
        for k, n in led.pmis.items():
            f = PMI_COSTS.get(k)
            if f is not None:
                total += n * float(getattr(table, f))
        for k, n in led.events.items():
            f = EVENT_COSTS.get(k)
            if f is not None:
                total += n * float(getattr(table, f))
        return total

    return meter


class PerfWorkload(Workload):
    """Shared engine of perf-stat and perf-record."""

    config: PerfConfigBase
    progress: ProgressFn | None = None

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        wl = config.workload
        known = sorted(plugins.registry["backends"][config.pmu.backend].event_names())
        for name in wl.events:
            if name not in known:
                raise ConfigError(
                    "workload.events", name, f"unknown event; known: {', '.join(known)}"
                )

    def targets(self) -> list[int]:
        n = len(self.machine.vcpus)
        return list(range(n)) if self.config.system_wide else [0]

    def run(self) -> WorkloadOutput:
        from .parallel import can_shard, run_sharded

        cfg = self.config
        vcpus = self.targets()
        if cfg.workers > 1 and len(vcpus) > 1 and can_shard(self.machine, vcpus):
            results, ledgers = run_sharded(self.machine, vcpus, cfg.workers, self.progress)
            for led in ledgers:
                self.machine.ledger.merge(led)
            self._settle_shards(results)
        else:
            results = simulate(self.machine, vcpus, self.progress)
        return self._output(results)

    def _settle_shards(self, results: list[VcpuResult]) -> None:
        """Per-vCPU state the parent machine reports (PMIs) from the shards' runs."""
        from ..vcpu import Pmi

        for r in results:
            v = self.machine.vcpus[r.vcpu]
            v.pmis = [Pmi(0, 2, "nmi", 0)] * r.pmis
            v.pmis_dropped = r.pmis_dropped

    def _output(self, results: list[VcpuResult]) -> WorkloadOutput:
        cfg = self.config
        out = WorkloadOutput(guest_ns=cfg.duration_ms * 1e6 * len(self.machine.vcpus))
        taken = expected = lost_thr = lost_host = 0
        dropped = sum(r.pmis_dropped for r in results)
        for r in results:
            for row in r.rows:
                out.rows.append(
                    CounterRow(r.vcpu, row["counter"], row["event"], row["value"], row["truth"])
                )
                taken += row["samples"]
                expected += row["expected_samples"]
                lost_thr += row["lost_throttle"]
                lost_host += row["lost_host"]
        record = isinstance(cfg, PerfRecordConfig)
        scaled_err = [
            abs(row["scaled"] - row["truth"]) / row["truth"]
            for r in results
            for row in r.rows
            if row["truth"]
        ]
        out.extra = {
            "perf": [r.model_dump() for r in results],
            "vcpus_profiled": len(results),
            "scaled_error_max_pct": 100 * max(scaled_err) if scaled_err else 0.0,
            "rotations": sum(r.rotations for r in results),
            "pmis_handled": sum(r.pmis for r in results),
        }
        if record:
            out.extra |= {
                "samples_taken": taken,
                "samples_expected": expected,
                "samples_lost_throttling": lost_thr,
                "samples_lost_host_contention": lost_host,
                "pmis_dropped_lvtpc_masked": dropped,
                "throttles": sum(r.throttles for r in results),
                "max_sample_rate_final": min((r.lowered_to for r in results), default=0),
                "guest_handler_avg_ns": (
                    sum(r.handler_avg_ns for r in results) / len(results) if results else 0.0
                ),
            }
        return out


def simulate(
    machine: Machine, vcpus: list[int], progress: ProgressFn | None = None
) -> list[VcpuResult]:
    """Run the workload's perf on ``vcpus`` of ``machine`` in lockstep with the host."""
    wl_cfg = machine.config.workload
    profile = resolve(wl_cfg.profile)
    truth = Truth(profile)
    ghz = profile.ghz
    host = machine.host
    hz = machine.config.host.hz
    meter = _cost_meter(machine) if isinstance(wl_cfg, PerfRecordConfig) else None
    perfs: list[GuestPerf] = []
    for i in vcpus:
        v = machine.vcpus[i]
        drv = machine.backend.guest_driver(v)
        perfs.append(GuestPerf(v, drv, wl_cfg, truth, ghz, hz, meter))
    tick_ns = NSEC_PER_SEC / hz
    mux_ns = (wl_cfg.mux_interval_ms or 1000.0 / hz) * 1e6
    end_ns = wl_cfg.duration_ms * 1e6
    for p in perfs:
        p.start()
    t = 0.0
    next_tick = tick_ns
    next_mux = mux_ns
    last_report = 0.0
    while t < end_ns:
        nxt = min(next_tick, next_mux, host.next_boundary(), end_ns)
        stop = round(nxt * ghz)
        for p in perfs:
            p.run_to(stop)
        t = nxt
        host.advance(t)
        if t == next_tick:
            next_tick += tick_ns
            for p in perfs:
                p.tick()
        if t == next_mux:
            next_mux += mux_ns
            for p in perfs:
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
    rows = []
    for ev in p.events:
        truth = p.truth.count(ev.name, p.cycles, ev.usr, ev.os)
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
                "event": ev.name,
                "value": ev.count,
                "scaled": scaled,
                "truth": truth,
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
        lowered_to=p.max_rate,
        handler_avg_ns=p.handler_ns / p.pmis_handled if p.pmis_handled else 0.0,
        rotations=p.rotations,
    )


class PerfStat(PerfWorkload):
    """``perf stat -a -e ...``: counting, multiplexed when the events do not fit."""

    name: ClassVar[str] = "perf-stat"
    Config: ClassVar[type[BaseModel]] = PerfStatConfig


class PerfRecord(PerfWorkload):
    """``perf record -a -F/-c -e ...``: sampling with the vendor PMI handler."""

    name: ClassVar[str] = "perf-record"
    Config: ClassVar[type[BaseModel]] = PerfRecordConfig
