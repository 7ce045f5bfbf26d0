"""The host underneath the guests: pCPUs, their hardware counters, and host perf.

Why a model of the host at all: what an emulated vPMU costs and how much it
miscounts depends on what else the host does with its PMU. Host perf schedules
events per pCPU (pinned groups first, then flexible ones, a group all or nothing,
each event on a counter its constraint allows, flexible groups rotated at the mux
interval), so a guest-backing event can be scheduled out by an NMI watchdog or a
host ``perf record`` and the guest silently loses counts. And the first perf event
a host creates flips the ``perf_sched_events`` static key, whose
``synchronize_rcu()`` makes that one creation cost milliseconds (spec/costs.md
§2b, ``account_event()`` in kernel/events/core.c); the disable is deferred by one
second (``unaccount_event()`` → ``schedule_delayed_work(..., HZ)``).

Time only moves when a workload calls :meth:`Host.advance`; the host then runs the
boundaries it passed (multiplex rotation, time-slice end, migration) in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .host_events import GUEST, METRICS, PROFILER, WATCHDOG, HostEvent

if TYPE_CHECKING:
    from .config import HostConfig
    from .ledger import Ledger
    from .port import VcpuPort
    from .strategy import Strategy

__all__ = ["GUEST", "METRICS", "PROFILER", "WATCHDOG", "Host", "HostEvent", "PCpu"]


SCHED_DISABLE_DELAY_NS = 1e9  # unaccount_event: schedule_delayed_work(&perf_sched_work, HZ)


@dataclass
class PCpu:
    """One physical CPU: its counters and the host events that want them."""

    index: int
    gp: int
    fixed: int
    events: list[HostEvent] = field(default_factory=list)
    masked_gp: int = 0  # counters handed to a guest by x86_perf_mask_perf_counters
    masked_fixed: int = 0
    rotation: int = 0
    hw: dict[str, int] = field(default_factory=dict)  # MSR name -> value in hardware


class Host:
    """The host of one machine. Built by :class:`~vpmu_core.machine.Machine`."""

    def __init__(self, cfg: HostConfig, gp: int, fixed: int, ledger: Ledger) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.gp = cfg.gp_counters if cfg.gp_counters is not None else gp
        self.fixed = cfg.fixed_counters if cfg.fixed_counters is not None else fixed
        self.pcpus = [PCpu(i, self.gp, self.fixed) for i in range(cfg.pcpus)]
        self.now_ns = 0.0
        self.sched_count = 0  # perf_sched_count: accounted events
        self._disable_at: float | None = None
        self._group = 0
        self.placement: dict[int, int] = {}
        self.vcpus: list[VcpuPort] = []
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
        self._slices = 0
        self.listener: Strategy | None = None  # hears vCPU switches; set by the machine
        for cpu in self.pcpus:
            # Host events predate the VM: they hold perf_sched_events (no flip charged
            # to the guest), which is why the first guest creation is cheap with the
            # watchdog on and costs an RCU grace period with it off (costs.md §2b).
            if cfg.nmi_watchdog:
                # kernel/watchdog_perf.c: one pinned cycles event per CPU (costs.md §5)
                self._add(cpu, HostEvent(0x3C, constraint="fixed:1", owner=WATCHDOG), False)
                self.sched_count += 1
            for i, _ in enumerate(cfg.perf_record):
                ev = HostEvent(0x100 + i, pinned=False, owner=PROFILER)
                self._add(cpu, ev, False)
                self.sched_count += 1
            self.schedule(cpu)

    # ----------------------------------------------------------- placement
    def place(self, vcpu: VcpuPort) -> int:
        """Put a new vCPU on a pCPU (round robin) and return its index."""
        pcpu = vcpu.index % len(self.pcpus)
        self.placement[vcpu.index] = pcpu
        self.vcpus.append(vcpu)
        return pcpu

    def pcpu_of(self, vcpu: VcpuPort) -> int:
        return self.placement.get(vcpu.index, 0)

    # ------------------------------------------------------- perf API
    def _add(self, cpu: PCpu, ev: HostEvent, account: bool) -> None:
        self._group += 1
        ev.group = self._group
        ev.cpu = ev.home = cpu.index
        cpu.events.append(ev)
        if account:
            self._account()

    def _account(self) -> None:
        """account_event(): the first accounted event pays the static key + synchronize_rcu."""
        if self.sched_count == 0:
            self.ledger.perf_ops["create_sched_rcu"] += 1
        self.sched_count += 1

    def create(
        self, vcpu: VcpuPort, pmc: Any, config: int, constraints: list[str]
    ) -> list[HostEvent]:
        """perf_event_create_kernel_counter for a guest PMC: pinned, on the vCPU's pCPU.

        One event per entry of ``constraints``. Several back a grouped PMC with one
        perf group: the leader first, every member created disabled and then enabled
        in order, so none counts alone; the scheduler places the group all-or-nothing.
        """
        ops = self.ledger.perf_ops
        cpu = self.pcpus[self.pcpu_of(vcpu)]
        members = len(constraints)
        group: list[HostEvent] = []
        for constraint in constraints:
            ev = HostEvent(config, constraint=constraint, pmc=pmc, vcpu=vcpu)
            self._add(cpu, ev, True)
            ops["create"] += 1
            if group:
                ev.group = group[0].group
            group.append(ev)
        if members > 1:
            ops["enable"] += members
        self.schedule(cpu)
        return group

    def release(self, ev: HostEvent) -> None:
        """perf_event_release_kernel; the last one disables the key a second later."""
        self.ledger.perf_ops["release"] += 1
        cpu = self.pcpus[ev.home]
        if ev in cpu.events:
            cpu.events.remove(ev)
        if self.sched_count == 1:
            # atomic_add_unless(-1, unless 1): the last one is dropped by delayed work
            if self._disable_at is None:
                self._disable_at = self.now_ns + SCHED_DISABLE_DELAY_NS
        else:
            self.sched_count -= 1
        self.schedule(cpu)

    def move(self, ev: HostEvent, pcpu: int) -> None:
        """A task event follows its task to another pCPU at sched-in."""
        old = self.pcpus[ev.home]
        if ev in old.events:
            old.events.remove(ev)
        ev.home = pcpu
        new = self.pcpus[pcpu]
        new.events.append(ev)
        self.schedule(old)
        self.schedule(new)

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
    def schedule(self, cpu: PCpu) -> None:
        """Assign counters: pinned groups first, then flexible in rotation order.

        A group gets all its counters or none; an event that finds no counter does
        not count (a pinned one goes to error state in Linux and stays out).
        """
        free_gp = list(range(cpu.masked_gp, cpu.gp))
        free_fixed = set(range(cpu.masked_fixed, cpu.fixed))
        pinned = [e for e in cpu.events if e.pinned]
        flexible = [e for e in cpu.events if not e.pinned]
        if flexible:
            r = cpu.rotation % len(flexible)
            flexible = flexible[r:] + flexible[:r]
        groups: dict[int, list[HostEvent]] = {}
        for ev in pinned + flexible:
            groups.setdefault(ev.group, []).append(ev)
        for members in groups.values():
            taken_gp: list[int] = []
            taken_fixed: list[int] = []
            ok = True
            for ev in members:
                if ev.constraint == METRICS:  # a topdown metric: no counter of its own
                    ev.counter = METRICS
                    continue
                if ev.constraint.startswith("fixed:"):
                    n = int(ev.constraint[6:])
                    if n in free_fixed and n not in taken_fixed:
                        taken_fixed.append(n)
                        ev.counter = f"fixed{n}"
                        continue
                avail = [c for c in free_gp if c not in taken_gp]
                if not avail:
                    ok = False
                    break
                taken_gp.append(avail[0])
                ev.counter = f"gp{avail[0]}"
            for ev in members:
                self._set_running(ev, ok)
            if ok:
                free_gp = [c for c in free_gp if c not in taken_gp]
                free_fixed -= set(taken_fixed)

    def _set_running(self, ev: HostEvent, running: bool) -> None:
        if not running:
            ev.counter = None
        if ev.running == running:
            return
        ev.running = running
        if ev.owner == GUEST:
            self.ledger.events[
                "guest_event_sched_out" if not running else "guest_event_sched_in"
            ] += 1
            if ev.vcpu is not None and ev.pmc is not None:
                ev.vcpu.set_backing_running(ev.pmc, running)

    def overcommitted(self, cpu: PCpu) -> bool:
        return any(not e.running for e in cpu.events if not e.pinned)

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
        """A timer tick on every vCPU: the host's interrupt exits to the full run loop,
        the guest re-arms its TSC-deadline timer with a WRMSR KVM handles in its
        fastpath (costs.md §4a: the 'ultra fastpath' MSR exits)."""
        for v in self.vcpus:
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
                self.ledger.events["host_mux_rotation"] += 1
                self.schedule(cpu)

    def _slice_end(self) -> None:
        """End of a vCPU time slice: sched out, maybe migrate, sched in."""
        self._slices += 1
        every = self.cfg.migrate_every_slices
        for vcpu in self.vcpus:
            if every and self._slices % every == 0 and len(self.pcpus) > 1:
                self.migrate(vcpu, (self.placement[vcpu.index] + 1) % len(self.pcpus))
            else:
                self.sched_out(vcpu)
                self.sched_in(vcpu)

    # ------------------------------------------------------- vCPU threads
    def sched_out(self, vcpu: VcpuPort) -> None:
        """The vCPU's thread leaves its pCPU: the strategy hears it."""
        if self.listener is not None:
            self.listener.vcpu_sched_out(vcpu)

    def sched_in(self, vcpu: VcpuPort, migrated: bool = False) -> None:
        """The vCPU's thread runs again on its pCPU: the strategy hears it."""
        if self.listener is not None:
            self.listener.vcpu_sched_in(vcpu, self.pcpu_of(vcpu), migrated)

    def migrate(self, vcpu: VcpuPort, pcpu: int) -> None:
        """Sched out, move the vCPU's thread to ``pcpu``, sched in there."""
        self.sched_out(vcpu)
        self.placement[vcpu.index] = pcpu
        self.ledger.events["vcpu_migration"] += 1
        self.sched_in(vcpu, migrated=True)
