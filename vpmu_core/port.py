"""The faces of a vCPU and its machine that plugins see: the documented contract.

A guest drives a :class:`~vpmu_core.vcpu.Vcpu` through its guest face
(:class:`GuestCpu`: WRMSR, RDMSR, RDPMC, CPUID, retire, CPL). Backends, strategies,
extensions and the host drive it through the narrow :class:`VcpuPort`, in the
style of KVM's ``kvm_pmu_request_counter_reprogram``: request a reprogram, raise a
PMI, count an exit, mark a host event scheduled in or out, re-ask an intercept
verdict. Both are :class:`typing.Protocol` classes, so they cost nothing at run
time; a plugin typed against them is checked by mypy to use nothing else, and
the core's own layers import this module instead of the vCPU, which is what
keeps vpmu's import graph free of cycles.

The members a strategy implements are :class:`CounterAllocator` (how a guest
counter is backed on the host, per vCPU) and :class:`PmiPath` (how a PMI travels
to the guest); the machine-level part is :class:`~vpmu_core.strategy.Strategy`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .allinone import AllInOneRoom
from .apic import Lvtpc
from .caps import Caps
from .counters import EventKey, Pmc
from .host_events import HostEvent
from .ledger import Ledger
from .msr import MsrHandler

if TYPE_CHECKING:
    from .filter import EventFilter
    from .host_pmu import HostPmu

Event = str | tuple[int, int]
Leaf = tuple[int, int, int, int]


class PmuState(Protocol):
    """A vCPU's vendor register state (``vcpu.pmu``): the vendor contract the core calls.

    :class:`~vpmu_core.backend.VendorPmu` is the base class that implements it;
    ``vpmu_core.backend.REQUIRED`` says which members a vendor must write.
    """

    caps: Caps
    events: dict[str, tuple[EventKey, ...]]

    def counters(self) -> list[Pmc]: ...

    def msr_handlers(self) -> list[MsrHandler]: ...

    def rdpmc(self, ecx: int) -> int: ...

    def rdpmc_table(self) -> dict[int, Callable[[], int]]: ...

    def record_overflow(self, pmc: Pmc) -> None: ...

    def pmi_delivered(self) -> None: ...

    def pmi_status(self) -> int: ...

    def reset(self) -> None: ...

    def cpuid_shape(self) -> dict[str, int]: ...

    def shape(self) -> dict[str, Any]: ...

    def save(self) -> dict[str, Any]: ...

    def load(self, state: dict[str, Any]) -> None: ...


class GuestCpu(Protocol):
    """The guest face: what a guest kernel's perf driver or a workload does to a vCPU.

    Every access exits, retires instructions and faults exactly as the guest's
    would; a vendor's guest driver (:class:`~vpmu_core.guest.GuestDriver`) uses
    nothing else but ``pmu.caps``, which stands for what it decoded from CPUID.
    """

    index: int

    @property
    def pmu(self) -> PmuState: ...

    @property
    def cpl(self) -> int: ...

    def wrmsr(self, msr: int, value: int) -> None: ...

    def rdmsr(self, msr: int) -> int: ...

    def rdpmc(self, ecx: int) -> int: ...

    def cpuid(self, leaf: int, subleaf: int = 0) -> Leaf: ...

    def cpuid_table(self, leaf: int, subleaf: int = 0) -> Leaf: ...

    def retire(self, event: Event, n: int, cpl: int = 0, cycles: int | None = None) -> None: ...

    def host_rdmsr(self, msr: int) -> int: ...


class HostPort(Protocol):
    """What a strategy may ask of the host model: its pCPUs, counters and perf API."""

    cfg: Any  # the [host] table
    pmu: HostPmu  # the host's own PMU, resolved (vpmu_core.host_pmu)
    gp: int  # host GP counters per pCPU
    fixed: int  # host fixed counters per pCPU
    placement: dict[int, int]  # vCPU index -> pCPU

    def pcpu_of(self, vcpu: VcpuPort) -> int: ...

    def create(
        self,
        vcpu: VcpuPort,
        pmc: Pmc,
        config: int,
        constraints: list[str],
        leader: HostEvent | None = None,
    ) -> list[HostEvent]: ...

    def release(self, ev: HostEvent) -> None: ...

    def pause(self, events: list[HostEvent]) -> None: ...

    def resume(self, events: list[HostEvent], pcpu: int) -> None: ...

    def on_cpu(self, vcpu: VcpuPort) -> bool: ...

    def run(self, vcpu: VcpuPort) -> None: ...

    def mask_counters(self, pcpu: int, gp: int, fixed: int) -> None: ...

    def unmask_counters(self, pcpu: int, gp: int, fixed: int) -> None: ...


class BackendPort(Protocol):
    """What other components read of the machine's backend."""

    name: ClassVar[str]
    config: Any

    @classmethod
    def allinone_room(cls, config: Any) -> AllInOneRoom: ...


class InterceptPolicy(Protocol):
    """The part of a strategy the vCPU asks while it binds its dispatch tables."""

    def intercept(self, vcpu: VcpuPort, handler: MsrHandler, write: bool) -> str | None: ...

    def rdpmc_exits(self, vcpu: VcpuPort) -> bool: ...


class MachinePort(Protocol):
    """What a component sees of its machine."""

    name: str
    config: Any
    ledger: Ledger
    extensions: dict[str, Any]

    @property
    def host(self) -> HostPort: ...

    @property
    def backend(self) -> BackendPort: ...

    @property
    def vcpus(self) -> Sequence[VcpuPort]: ...

    @property
    def event_filter(self) -> EventFilter | None: ...

    @property
    def strategy(self) -> InterceptPolicy: ...

    @property
    def components(self) -> Any: ...  # the machine's pluggy manager (the machine hooks)


class CounterAllocator:
    """How a strategy backs one vCPU's guest counters on the host (``vpmu_counter_allocator``).

    The vCPU calls :meth:`reprogram` before the next VM entry for every counter
    whose control, filter verdict or backing changed (KVM_REQ_PMU), and
    :meth:`emulated_instruction` when the hypervisor completed an intercepted
    instruction the guest counts. :meth:`overflowed` is called at each counter
    overflow only when ``hears_overflows`` is True, so an allocator with nothing
    to do there costs the overflow path no call. The host calls :meth:`sched_out`
    and :meth:`sched_in` when the vCPU's thread leaves or takes a pCPU, through the
    strategy's :meth:`~vpmu_core.strategy.Strategy.vcpu_sched_out` /
    :meth:`~vpmu_core.strategy.Strategy.vcpu_sched_in`.
    """

    hears_overflows: ClassVar[bool] = False

    def reprogram(self, pmc: Pmc) -> None:
        """The PMC's control (or filter verdict) changed: make the host follow."""

    def emulated_instruction(self, pmcs: list[Pmc]) -> None:
        """The hypervisor completed an intercepted instruction counted by ``pmcs``."""

    def overflowed(self, pmc: Pmc) -> None:
        """``pmc`` overflowed in the guest (called only when ``hears_overflows``)."""

    def release(self, pmc: Pmc) -> None:
        """Let the PMC's host resources go."""

    def sched_out(self) -> None:
        """The vCPU's thread left its pCPU."""

    def sched_in(self, pcpu: int, migrated: bool) -> None:
        """The vCPU's thread runs again, on ``pcpu`` (``migrated``: another one than before)."""


class PmiPath(Protocol):
    """Delivers a pending PMI at VM entry (``vpmu_pmi_path``)."""

    def deliver(self) -> None: ...


class VcpuPort(GuestCpu, Protocol):
    """The narrow face of a vCPU that backends, strategies, extensions and the host use.

    State a component may read: ``machine``, ``index``, ``counters`` (PMCs by
    index), ``views`` (fields of all-in-one PMCs), ``msr_table`` (MSR rows by
    number), ``lvtpc``, ``ext`` (per-vCPU state of extensions, by name), ``clock``
    (guest cycles), ``entries`` (VM entries that had deferred work),
    ``exits_taken`` and ``fast_exits`` (this vCPU's exits, all and those the
    fastpath handled), ``pending_reprogram`` and ``allocator``. Everything it may *do* is a method
    below; none is on a guest access's path but the ones the vCPU bound itself.
    """

    machine: MachinePort
    counters: dict[int, Pmc]
    views: list[Pmc]
    msr_table: dict[int, MsrHandler]
    lvtpc: Lvtpc
    ext: dict[str, Any]
    clock: int
    entries: int
    exits_taken: int
    fast_exits: int
    allocator: CounterAllocator
    pmu: PmuState

    @property
    def pending_reprogram(self) -> Mapping[int, Pmc]: ...

    @property
    def pmi_pending(self) -> bool: ...

    @property
    def cpl(self) -> int: ...

    @cpl.setter
    def cpl(self, value: int) -> None: ...

    @property
    def cr4_pce(self) -> bool: ...

    @cr4_pce.setter
    def cr4_pce(self, value: bool) -> None: ...

    # --- reprogram (KVM_REQ_PMU)
    def request_reprogram(self, pmc: Pmc) -> None:
        """A PMC's control changed: re-decide filter and matching, reprogram before entry."""

    def request_reprogram_all(self) -> None: ...

    def reprogram_counters(self, by_idx: Mapping[int, Pmc], diff: int, enabled: int) -> None:
        """A global control set the enable bits ``diff`` of ``by_idx`` to ``enabled``'s."""

    def mark_reprogram(self, pmc: Pmc) -> None:
        """Reprogram before the next entry without a control change (an emulated increment)."""

    def rematch(self) -> None:
        """Which counters count changed without a control write (a host group failed)."""

    def set_backing_running(self, pmc: Pmc, running: bool) -> None:
        """Host perf scheduled ``pmc``'s backing event in or out: it counts only while in."""

    # --- PMIs (KVM_REQ_PMI)
    def raise_pmi(self) -> None:
        """Make a PMI pending for the next VM entry."""

    def deliver_pmi(self) -> bool:
        """Offer one PMI to the LVTPC now; True if the guest took it (a PMI path calls it)."""

    # --- exits
    def count_exit(self, reason: str, n: int = 1) -> None:
        """An exit this vCPU took that no guest access caused (a host tick, an NMI)."""

    # --- the dispatch table
    def wrap_msr(self, msr: int, wrap: Callable[[MsrHandler], MsrHandler]) -> None:
        """Replace ``msr``'s row by ``wrap(row)`` and bind it (the one wrap step)."""

    def rebind_msr(self, msr: int) -> None:
        """The strategy's intercept verdict for ``msr`` changed: ask it again and bind."""

    def rdpmc_readers(self) -> dict[int, Callable[[], int]]: ...

    def add_rdpmc(self, readers: dict[int, Callable[[], int]]) -> None: ...

    def set_allocator(self, allocator: CounterAllocator) -> None: ...

    # --- deferred work and host-initiated accesses
    def sync(self) -> None:
        """Run any deferred entry work now (pending reprograms and PMIs)."""

    def host_wrmsr(self, msr: int, value: int) -> None: ...
