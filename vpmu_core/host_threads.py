"""vCPU threads on pCPUs: who runs where, time-sharing, switches and migrations.

Why its own module: the host's perf scheduling (``host.py``) asks only *which*
thread runs on a pCPU; how threads take turns is the kernel scheduler's side. A
pCPU runs one vCPU thread at a time; several placed on one pCPU take turns, one
slice each in queue order, and a vCPU about to execute guest code takes its pCPU
(:meth:`VcpuThreads.run`). A switch is ``kvm_sched_out`` then
``perf_event_task_sched_out`` for the leaving thread, ``perf_event_task_sched_in``
then ``kvm_sched_in`` for the coming one (the order of ``prepare_task_switch`` /
``finish_task_switch``): the strategy hears both (``Strategy.vcpu_sched_out/in``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .host_events import HostEvent

if TYPE_CHECKING:
    from .config import HostConfig
    from .ledger import Ledger
    from .port import VcpuPort
    from .strategy import Strategy


@dataclass
class PCpu:
    """One physical CPU: its counters, its cpu context and the vCPU threads queued on it."""

    index: int
    gp: int
    fixed: int
    events: list[HostEvent] = field(default_factory=list)  # the cpu context
    masked_gp: int = 0  # counters handed to a guest by x86_perf_mask_perf_counters
    masked_fixed: int = 0
    rotation: int = 0
    resched: int = 0  # schedules run here so far (a paused event's counter is free since)
    all_placed: bool = True  # the last schedule found every candidate a counter
    hw: dict[str, int] = field(default_factory=dict)  # MSR name -> value in hardware
    threads: list[Any] = field(default_factory=list)  # vCPU threads placed here, in queue order
    current: Any = None  # the vCPU whose thread runs here now (None: idle)


class VcpuThreads:
    """The thread side of :class:`~vpmu_core.host.Host`: placement, switches, migrations."""

    # the host's, set by Host.__init__
    cfg: HostConfig
    ledger: Ledger
    pcpus: list[PCpu]
    now_ns: float

    def __init__(self) -> None:
        self.placement: dict[int, int] = {}  # vCPU index -> the pCPU its thread is on
        self.vcpus: list[VcpuPort] = []
        self.tasks: dict[int, list[HostEvent]] = {}  # vCPU index -> its thread's task context
        self._off_ns: dict[int, float] = {}  # time each thread spent off its pCPU
        self._off_since: dict[int, float] = {}
        self._ran_on: dict[int, int] = {}  # the pCPU each thread last ran on
        self._slices = 0
        self.listener: Strategy | None = None  # hears vCPU switches; set by the machine

    if TYPE_CHECKING:

        def schedule(self, cpu: PCpu) -> None: ...

        def _set_running(self, ev: HostEvent, running: bool) -> None: ...

    def place(self, vcpu: VcpuPort) -> int:
        """Put a new vCPU's thread on a pCPU (round robin) and return its index.

        The first thread placed on a pCPU runs there; later ones wait in its queue.
        """
        pcpu = vcpu.index % len(self.pcpus)
        self.placement[vcpu.index] = pcpu
        self.vcpus.append(vcpu)
        self.tasks[vcpu.index] = []
        self._off_ns[vcpu.index] = 0.0
        cpu = self.pcpus[pcpu]
        cpu.threads.append(vcpu)
        if cpu.current is None:
            cpu.current = vcpu
            self._ran_on[vcpu.index] = pcpu
        else:
            self._off_since[vcpu.index] = self.now_ns
        return pcpu

    def pcpu_of(self, vcpu: VcpuPort) -> int:
        return self.placement.get(vcpu.index, 0)

    def on_cpu(self, vcpu: VcpuPort) -> bool:
        """Whether the vCPU's thread runs on its pCPU now (only then does the guest execute)."""
        return self.pcpus[self.pcpu_of(vcpu)].current is vcpu

    def off_cpu_ns(self, vcpu: VcpuPort) -> float:
        """Host time the vCPU's thread has spent off its pCPU so far (0.0 exactly if never)."""
        since = self._off_since.get(vcpu.index)
        off = self._off_ns.get(vcpu.index, 0.0)
        return off if since is None else off + (self.now_ns - since)

    def alone(self, vcpu: VcpuPort) -> bool:
        """Whether nothing the host does for another vCPU reaches this one's host context:
        its thread keeps its pCPU to itself for the whole run (no migration, no other
        thread queued there, no other vCPU's event in the pCPU's context).

        Then scheduling, rotation and thread switches on its pCPU are its own; only
        the host-wide static key and pmc_refcount couple it to the others. What lets
        a vCPU run in a machine of its own (workloads/parallel.py) or stand for its
        symmetry class (workloads/symmetry.py).
        """
        if self.cfg.migrate_every_slices:
            return False
        cpu = self.pcpus[self.pcpu_of(vcpu)]
        return all(t is vcpu for t in cpu.threads) and all(
            e.vcpu is None or e.vcpu is vcpu for e in cpu.events
        )

    # ----------------------------------------------------------- time slices
    def _slice_end(self) -> None:
        """End of a time slice: the next thread of each pCPU's queue runs (a lone thread is
        switched out and back in); every N slices each thread moves to the next pCPU."""
        self._slices += 1
        every = self.cfg.migrate_every_slices
        if every and self._slices % every == 0 and len(self.pcpus) > 1:
            self._migrate_all()
            return
        for cpu in self.pcpus:
            mine = [v for v in cpu.threads if v in self.vcpus]  # a shard drives only its own
            cur = cpu.current
            if cur is None or cur not in mine:
                if mine:
                    self.sched_in(mine[0])
                continue
            if len(mine) == 1:
                self.sched_out(cur)
                self.sched_in(cur)
            else:
                self.sched_in(mine[(mine.index(cur) + 1) % len(mine)])

    def _migrate_all(self) -> None:
        """Every thread moves to the next pCPU, each pCPU's runner staying its runner."""
        running = [v for v in self.vcpus if self.on_cpu(v)]
        for v in running:
            self.sched_out(v)
        for v in self.vcpus:
            self._move_thread(v, (self.placement[v.index] + 1) % len(self.pcpus))
        for v in running:
            self.sched_in(v, migrated=True)

    # ------------------------------------------------------- vCPU threads
    def run(self, vcpu: VcpuPort) -> None:
        """The vCPU is about to execute guest code: its thread must hold its pCPU."""
        if self.pcpus[self.placement[vcpu.index]].current is not vcpu:
            self.sched_in(vcpu)

    def sched_out(self, vcpu: VcpuPort) -> None:
        """The vCPU's thread leaves its pCPU (kvm_sched_out, then perf_event_task_sched_out).

        The strategy hears it first; then the thread's task events leave their counters.
        """
        cpu = self.pcpus[self.pcpu_of(vcpu)]
        if cpu.current is not vcpu:
            return
        if self.listener is not None:
            self.listener.vcpu_sched_out(vcpu)
        cpu.current = None
        self._off_since[vcpu.index] = self.now_ns
        for ev in self.tasks.get(vcpu.index, []):
            if not ev.paused:  # a paused one holds no counter already (Host.pause)
                self._set_running(ev, False)
        vcpu.rematch()  # its next guest instruction finds it off its pCPU (Host.run)

    def sched_in(self, vcpu: VcpuPort, migrated: bool = False) -> None:
        """The vCPU's thread runs on its pCPU, switching out the one running there.

        perf_event_task_sched_in first (its task events are scheduled in Linux's
        order), then kvm_sched_in: the strategy hears it; ``migrated``: the thread
        last ran on another pCPU.
        """
        pcpu = self.pcpu_of(vcpu)
        cpu = self.pcpus[pcpu]
        if cpu.current is vcpu:
            return
        if cpu.current is not None:
            self.ledger.events["vcpu_switch"] += 1
            self.sched_out(cpu.current)
        cpu.current = vcpu
        since = self._off_since.pop(vcpu.index, None)
        if since is not None:
            self._off_ns[vcpu.index] += self.now_ns - since
        for ev in self.tasks.get(vcpu.index, []):
            ev.home = pcpu
        self.schedule(cpu)
        migrated = migrated or self._ran_on.get(vcpu.index, pcpu) != pcpu
        self._ran_on[vcpu.index] = pcpu
        if self.listener is not None:
            self.listener.vcpu_sched_in(vcpu, pcpu, migrated)

    def _move_thread(self, vcpu: VcpuPort, pcpu: int) -> None:
        old = self.pcpus[self.pcpu_of(vcpu)]
        if vcpu in old.threads:
            old.threads.remove(vcpu)
        self.placement[vcpu.index] = pcpu
        self.pcpus[pcpu].threads.append(vcpu)
        self.ledger.events["vcpu_migration"] += 1

    def migrate(self, vcpu: VcpuPort, pcpu: int) -> None:
        """Sched out, move the vCPU's thread to ``pcpu``, sched in there.

        The pCPU it left runs its next queued thread, if any.
        """
        old = self.pcpus[self.pcpu_of(vcpu)]
        self.sched_out(vcpu)
        self._move_thread(vcpu, pcpu)
        if old.current is None and old.threads:
            self.sched_in(old.threads[0])
        self.sched_in(vcpu, migrated=True)
