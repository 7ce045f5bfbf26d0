"""The host underneath the guests: pCPUs, their hardware counters, vCPU threads, host perf.

Why a model of the host at all: what an emulated vPMU costs and how much it
miscounts depends on what else the host does with its PMU. Host perf keeps two
kinds of context (kernel/events/core.c, torvalds/linux 9b18d42dda98):

* the **cpu context** of each pCPU: per-CPU events, here the NMI watchdog's pinned
  cycles event and a host-wide ``perf record -a`` (flexible, one group per event);
* the **task context** of each thread: KVM creates a guest counter's backing
  event as a task event of the vCPU thread (``perf_event_create_kernel_counter(
  &attr, -1, current, ...)``, pinned), so it competes for counters only while
  that thread runs on a pCPU (``perf_event_task_sched_out/in``).

On a pCPU the events are scheduled in Linux's priority order
(``perf_event_context_sched_in`` → ``perf_event_sched_in``): cpu pinned, then the
running task's pinned, then cpu flexible, then task flexible; a group gets all its
counters or none; each event a counter its constraint allows; flexible groups
rotate at the mux interval when one of them found no counter
(``perf_rotate_context`` rotates the cpu and the task context alike). A paused
event (``perf_event_pause`` → ``_perf_event_disable`` → ``event_sched_out``,
state OFF) gives its counter back; re-enabling it (``perf_event_enable`` →
``ctx_resched``) schedules again.

vCPU threads time-share a pCPU when there are more vCPUs than pCPUs: one runs at
a time, in round robin at each slice end, and a vCPU that executes guest code is
put on its pCPU first (``Host.run``, from the vCPU's matcher). The time a thread
spent off its pCPU is :meth:`Host.off_cpu_ns`: the guest engine runs a vCPU only
while its thread is on a pCPU.

And the first perf event a host creates flips the ``perf_sched_events`` static
key, whose ``synchronize_rcu()`` makes that one creation cost milliseconds
(spec/costs.md §2b, ``account_event()``); the disable is deferred by one second
(``unaccount_event()`` → ``schedule_delayed_work(..., HZ)``).

Time only moves when a workload calls :meth:`Host.advance`; the host then runs the
boundaries it passed (multiplex rotation, time-slice end, migration) in order.
Every piece of scheduling state is per pCPU (its cpu context, its run queue) or
per thread (its task context): pCPUs interact only through migrations and the
host-wide static key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .host_events import GUEST, METRICS, PROFILER, SLOTS, WATCHDOG, HostEvent
from .host_threads import PCpu, VcpuThreads

if TYPE_CHECKING:
    from .config import HostConfig
    from .host_pmu import HostPmu
    from .ledger import Ledger
    from .port import VcpuPort

__all__ = ["GUEST", "METRICS", "PROFILER", "SLOTS", "WATCHDOG", "Host", "HostEvent", "PCpu"]


SCHED_DISABLE_DELAY_NS = 1e9  # unaccount_event: schedule_delayed_work(&perf_sched_work, HZ)


class Host(VcpuThreads):
    """The host of one machine. Built by :class:`~vpmu_core.machine.Machine`."""

    def __init__(self, cfg: HostConfig, pmu: HostPmu, ledger: Ledger) -> None:
        super().__init__()
        self.cfg = cfg
        self.pmu = pmu
        self.ledger = ledger
        self.gp = pmu.gp
        self.fixed = pmu.fixed
        self.pcpus = [PCpu(i, self.gp, self.fixed) for i in range(cfg.pcpus)]
        self.now_ns = 0.0
        self.sched_count = 0  # perf_sched_count: accounted events
        # The lowest perf_sched_count a release has left (None: none yet): whether the
        # key could have gone off mid-run, as a unit of workloads/parallel.py asks.
        self.sched_low: int | None = None
        # pmc_refcount (arch/x86/events/core.c): live hardware events host-wide. Crossing
        # zero runs x86_reserve_hardware / x86_release_hardware, which allocate or free
        # every possible CPU's DS, PEBS and BTS buffers and map them in or out of the
        # cpu_entry_area with a kernel TLB shootdown each (intel/ds.c).
        self.hw_refcount = 0
        self._disable_at: float | None = None
        self._group = 0
        self._task_rotation: dict[int, int] = {}
        # The pCPUs whose own boundaries (mux rotation) this model runs; None: all.
        # A shard or a symmetry class runs only its vCPUs' pCPUs, so a pCPU's
        # rotations are counted by exactly one machine (workloads/parallel.py).
        self.owned: set[int] | None = None
        self.slice_ns = cfg.slice_ms * 1e6
        self.mux_ns = (cfg.mux_interval_ms or 1000.0 / cfg.hz) * 1e6
        self.tick_ns = 1e9 / cfg.hz
        self._next_slice = self.slice_ns
        self._next_mux = self.mux_ns
        self._next_tick = self.tick_ns
        for cpu in self.pcpus:
            # Host events predate the VM: they hold perf_sched_events (no flip charged
            # to the guest), which is why the first guest creation is cheap with the
            # watchdog on and costs an RCU grace period with it off (costs.md §2b).
            if cfg.nmi_watchdog:
                # kernel/watchdog_perf.c: one pinned cycles event per CPU (costs.md §5)
                self._add(
                    cpu.events, cpu.index, HostEvent(0x3C, constraint="fixed:1", owner=WATCHDOG)
                )
                self.sched_count += 1
                self.get_hardware(charged=False)
            for i, _ in enumerate(cfg.perf_record):
                ev = HostEvent(0x100 + i, pinned=False, owner=PROFILER)
                self._add(cpu.events, cpu.index, ev)
                self.sched_count += 1
                self.get_hardware(charged=False)
            self.schedule(cpu)

    # ------------------------------------------------------- perf API
    def _add(self, ctx: list[HostEvent], pcpu: int, ev: HostEvent) -> None:
        self._group += 1
        ev.group = self._group
        ev.cpu = ev.home = pcpu
        ctx.append(ev)

    def _account(self) -> None:
        """account_event(): the first accounted event pays the static key + synchronize_rcu."""
        if self.sched_count == 0:
            self.ledger.perf_ops["create_sched_rcu"] += 1
        self.sched_count += 1

    def create(
        self,
        vcpu: VcpuPort,
        pmc: Any,
        config: int,
        constraints: list[str],
        leader: HostEvent | None = None,
    ) -> list[HostEvent]:
        """perf_event_create_kernel_counter for a guest PMC: pinned, a task event of its thread.

        One event per entry of ``constraints``. Several back a grouped PMC with one
        perf group: the leader first, every member created disabled and then enabled
        in order, so none counts alone; the scheduler places the group all-or-nothing.
        With ``leader`` every event joins that event's group instead (the
        ``group_leader`` argument of the KVM grouped-events RFC, spec §7.3): the
        topdown metrics join the slots event that backs fixed counter 3.
        """
        ops = self.ledger.perf_ops
        pcpu = self.pcpu_of(vcpu) if leader is None else leader.home
        cpu = self.pcpus[pcpu]
        task = self.tasks.setdefault(vcpu.index, [])
        members = len(constraints)
        group: list[HostEvent] = []
        for constraint in constraints:
            ev = HostEvent(config, constraint=constraint, pmc=pmc, vcpu=vcpu)
            self._add(task, pcpu, ev)
            self._account()
            ops["create"] += 1
            self.get_hardware()
            if leader is not None:
                ev.group = leader.group
            elif group:
                ev.group = group[0].group
            group.append(ev)
        if members > 1 or leader is not None:
            ops["enable"] += members
        if cpu.current is vcpu:
            self.schedule(cpu)
        else:  # installed in a task context that is not running: inactive until it runs
            for ev in group:
                self._set_running(ev, False)
        return group

    def release(self, ev: HostEvent) -> None:
        """perf_event_release_kernel; the last one disables the key a second later.

        A fixed-counter event's release is its own mechanism: costs.md §1b measured it
        at 2 ms against 30 µs for a GP one.
        """
        self.ledger.perf_ops["release_fixed" if ev.fixed >= 0 else "release"] += 1
        self.put_hardware()
        ctx = self._context_of(ev)
        if ev in ctx:
            ctx.remove(ev)
        if self.sched_count == 1:
            # atomic_add_unless(-1, unless 1): the last one is dropped by delayed work
            if self._disable_at is None:
                self._disable_at = self.now_ns + SCHED_DISABLE_DELAY_NS
        else:
            self.sched_count -= 1
        if self.sched_low is None or self.sched_count < self.sched_low:
            self.sched_low = self.sched_count
        self.schedule(self.pcpus[ev.home])

    def get_hardware(self, charged: bool = True) -> None:
        """One hardware event more host-wide; the first runs x86_reserve_hardware.

        ``charged=False`` for a hold whose reservation the ledger does not count: a
        host event that predates the VM (its DS buffers were there before the guest),
        or a unit's stand-in for the other units' events, whose one reservation the
        parent counts (workloads/parallel.py).
        """
        if self.hw_refcount == 0 and charged:  # x86_reserve_hardware: reserve_ds_buffers
            self.ledger.events["ds_buffers_cpu"] += len(self.pcpus)
        self.hw_refcount += 1

    def put_hardware(self) -> None:
        """One hardware event fewer host-wide; the last runs x86_release_hardware.

        Also how a machine whose vCPUs ran as units (workloads/parallel.py) drops the
        hold standing for their events, at its teardown.
        """
        self.hw_refcount -= 1
        if self.hw_refcount == 0:  # x86_release_hardware: release_ds_buffers
            self.ledger.events["ds_buffers_cpu"] += len(self.pcpus)

    def pause(self, events: list[HostEvent]) -> None:
        """perf_event_pause: disable (state OFF) and give the counter back.

        ``_perf_event_disable`` → ``event_sched_out``: the event stops counting and
        its counter is free; as in Linux nothing is rescheduled now, so a waiting
        event takes it at the next reschedule (a rotation, an enable, a creation).
        The PMC keeps its backing flag: KVM pauses only a counter the guest
        disabled, and the instruction that enables it again is counted by KVM in
        software (``kvm_pmu_incr_counter``) before the next entry resumes the event.
        """
        for ev in events:
            if ev.paused:
                continue
            cpu = self.pcpus[ev.home]
            ev.paused = True
            ev.paused_at = cpu.resched if ev.running and cpu.current is ev.vcpu else -1
            ev.last_counter = ev.counter
            ev.running = False
            ev.counter = None

    def resume(self, events: list[HostEvent], pcpu: int) -> None:
        """perf_event_enable of paused events (KVM's pmc_resume_counter): ``ctx_resched``.

        ``pcpu`` is where KVM reprograms them (what a skip-reprogram compares). If
        nothing was rescheduled on its pCPU since the pause and every event there
        had a counter, the reschedule gives each event what it had: the event takes
        its counter back without one.
        """
        homes: set[int] = set()
        for ev in events:
            ev.cpu = pcpu
            if not ev.paused:
                continue
            ev.paused = False
            cpu = self.pcpus[ev.home]
            if ev.paused_at == cpu.resched and cpu.all_placed:
                ev.running = True
                ev.counter = ev.last_counter
            else:
                homes.add(ev.home)
        for home in sorted(homes):
            self.schedule(self.pcpus[home])

    def _context_of(self, ev: HostEvent) -> list[HostEvent]:
        if ev.owner == GUEST and ev.vcpu is not None:
            return self.tasks.setdefault(ev.vcpu.index, [])
        return self.pcpus[ev.home].events

    def mask_counters(self, pcpu: int, gp: int, fixed: int) -> None:
        """x86_perf_mask_perf_counters: hand counters to a guest, out of perf's reach."""
        cpu = self.pcpus[pcpu]
        cpu.masked_gp = min(cpu.gp, cpu.masked_gp + gp)
        cpu.masked_fixed = min(cpu.fixed, cpu.masked_fixed + fixed)
        self.ledger.events["counters_masked"] += gp + fixed
        self.schedule(cpu)

    def unmask_counters(self, pcpu: int, gp: int, fixed: int) -> None:
        cpu = self.pcpus[pcpu]
        cpu.masked_gp = max(0, cpu.masked_gp - gp)
        cpu.masked_fixed = max(0, cpu.masked_fixed - fixed)
        self.ledger.events["counters_returned"] += gp + fixed
        self.schedule(cpu)

    # ------------------------------------------------------- scheduling
    def _candidates(self, cpu: PCpu) -> list[HostEvent]:
        """perf_event_sched_in's order: cpu pinned, task pinned, cpu flexible, task flexible.

        The task context is the running thread's; paused (OFF) events are not candidates.
        """
        cur = cpu.current
        cpu_pinned, cpu_flexible = _enabled(cpu.events, cpu.rotation)
        if cur is None:
            return cpu_pinned + cpu_flexible
        task = self.tasks.get(cur.index, [])
        task_pinned, task_flexible = _enabled(task, self._task_rotation.get(cur.index, 0))
        return cpu_pinned + task_pinned + cpu_flexible + task_flexible

    def schedule(self, cpu: PCpu) -> None:
        """Assign counters to the candidates in priority order, each group all or nothing.

        An event that finds no counter does not count (a pinned one goes to error
        state in Linux; here it is tried again at the next reschedule).
        """
        free_gp = list(range(cpu.masked_gp, cpu.gp))
        free_fixed = set(range(cpu.masked_fixed, cpu.fixed))
        groups: dict[int, list[HostEvent]] = {}
        placed = True
        for ev in self._candidates(cpu):
            groups.setdefault(ev.group, []).append(ev)
        for members in groups.values():
            taken_gp: list[int] = []
            taken_fixed: list[int] = []
            ok = True
            for ev in members:
                if ev.metric:  # a topdown metric: no counter of its own
                    ev.counter = METRICS
                    continue
                n = ev.fixed
                if n >= 0:
                    if n in free_fixed and n not in taken_fixed:
                        taken_fixed.append(n)
                        ev.counter = f"fixed{n}"
                        continue
                    if not ev.gp_ok:  # e.g. SLOTS: no GP fallback
                        ok = False
                        break
                avail = [c for c in free_gp if c not in taken_gp]
                if not avail:
                    ok = False
                    break
                taken_gp.append(avail[0])
                ev.counter = f"gp{avail[0]}"
            if members[0].metric:  # metrics whose slots leader is gone
                ok = False
            for ev in members:
                self._set_running(ev, ok)
                self._contended(ev, not ok)
            if ok:
                free_gp = [c for c in free_gp if c not in taken_gp]
                free_fixed -= set(taken_fixed)
            else:
                placed = False
        cpu.resched += 1
        cpu.all_placed = placed

    def _set_running(self, ev: HostEvent, running: bool) -> None:
        if not running:
            ev.counter = None
        ev.running = running
        if ev.owner == GUEST and ev.vcpu is not None and ev.pmc is not None:
            ev.vcpu.set_backing_running(ev.pmc, running)  # a no-op when unchanged

    def _contended(self, ev: HostEvent, denied: bool) -> None:
        """The ledger counts contention: a guest event denied a counter, or given one after.

        A pause or a thread switch takes an event off its counter too, but that is
        no contention: only the outcome of scheduling the wanting events counts.
        """
        if ev.denied == denied:
            return
        ev.denied = denied
        if ev.owner == GUEST:
            self.ledger.events["guest_event_sched_out" if denied else "guest_event_sched_in"] += 1

    def overcommitted(self, cpu: PCpu) -> bool:
        """rotate_necessary: a flexible group of this pCPU's contexts found no counter."""
        return any(not e.running for e in self._candidates(cpu) if not e.pinned)

    # ------------------------------------------------------------- time
    def next_boundary(self) -> float:
        """The next moment the host does something on its own."""
        return min(self._next_slice, self._next_mux, self._next_tick)

    def advance(self, until_ns: float) -> None:
        """Move host time to ``until_ns``, running every boundary passed, in order."""
        while self.next_boundary() <= until_ns:
            t = self.next_boundary()
            self.now_ns = t
            self._deferred_disable(t)
            if t == self._next_tick:
                self._next_tick += self.tick_ns
                self._tick()
            if t == self._next_mux:
                self._next_mux += self.mux_ns
                self._rotate()
            if t == self._next_slice:
                self._next_slice += self.slice_ns
                self._slice_end()
        self.now_ns = until_ns
        self._deferred_disable(until_ns)

    def _deferred_disable(self, t: float) -> None:
        """perf_sched_delayed: drop the count kept by the last release; at 0 the key is off."""
        if self._disable_at is not None and t >= self._disable_at:
            self._disable_at = None
            self.sched_count -= 1

    def _tick(self) -> None:
        """A timer tick on every running vCPU: the host's interrupt exits to the full run
        loop, the guest re-arms its TSC-deadline timer with a WRMSR KVM handles in its
        fastpath (costs.md §4a: the 'ultra fastpath' MSR exits). A vCPU whose thread
        waits for its pCPU is not in guest mode: the tick interrupts another thread."""
        for v in self.vcpus:
            if self.on_cpu(v):
                v.count_exit("ext_intr")
                v.count_exit("fastpath:tsc_deadline")

    def _rotate(self) -> None:
        """perf_rotate_context: only a pCPU whose flexible groups do not all fit."""
        owned = self.owned
        for cpu in self.pcpus:
            if owned is not None and cpu.index not in owned:
                continue
            if self.overcommitted(cpu):
                cpu.rotation += 1
                cur = cpu.current
                if cur is not None:
                    self._task_rotation[cur.index] = self._task_rotation.get(cur.index, 0) + 1
                self.ledger.events["host_mux_rotation"] += 1
                self.schedule(cpu)


def _enabled(ctx: list[HostEvent], rotation: int) -> tuple[list[HostEvent], list[HostEvent]]:
    """A context's enabled events, pinned then flexible, the flexible rotated ``rotation``
    places (perf_rotate_context moves the first flexible group to the end)."""
    pinned: list[HostEvent] = []
    flexible: list[HostEvent] = []
    for ev in ctx:
        if not ev.paused:
            (pinned if ev.pinned else flexible).append(ev)
    if flexible:
        r = rotation % len(flexible)
        flexible = flexible[r:] + flexible[:r]
    return pinned, flexible
