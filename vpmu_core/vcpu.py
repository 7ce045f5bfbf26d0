"""A virtual CPU as the guest sees its PMU: the public hot path of vpmu.

Everything here is bound when the machine is built. A guest ``wrmsr`` is one dict
lookup, the bound handler, a ledger increment and the instruction it retires; no
pluggy call, no attribute chase through the backend. VM entry (``_enter``) is
where deferred work happens, in KVM's order: reprogram requests (``KVM_REQ_PMU``)
first, then a pending PMI (``KVM_REQ_PMI``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .apic import LVTPC_RESET, Lvtpc
from .counters import EventKey, Pmc
from .errors import GuestFault
from .msr import MASK64, MsrHandler

if TYPE_CHECKING:
    from .backend import VendorPmu
    from .machine import Machine
    from .snapshot import VcpuSnapshot
    from .strategy import CounterAllocator, PmiPath

INSTRUCTIONS = "instructions"
Event = str | tuple[int, int]


@dataclass(frozen=True, slots=True)
class Pmi:
    """One PMI the guest received: when (sequence number), how, and why."""

    seq: int
    vector: int
    mode: str
    status: int  # the vendor's overflow status at delivery (0 where it has none)


class Vcpu:
    """One vCPU. Build it through :class:`~vpmu_core.machine.Machine`."""

    pmu: VendorPmu
    allocator: CounterAllocator
    pmi_path: PmiPath

    def __init__(self, machine: Machine, index: int) -> None:
        self.machine = machine
        self.index = index
        self.cpl = 0
        self.cr4_pce = False
        self.counters: dict[int, Pmc] = {}
        self.msr_table: dict[int, MsrHandler] = {}
        self.cpuid_leaves: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self.pmis: list[Pmi] = []
        self.pmis_dropped = 0
        self.ext: dict[str, Any] = {}  # per-vCPU state of extensions, by name
        self.lvtpc = Lvtpc(masks_on_pmi=True)
        self._seq = 0  # guest operations so far: the PMI timestamp
        self._exits = machine.ledger.exits
        self._rd: dict[int, tuple[Callable[[], int], str | None]] = {}
        self._wr: dict[int, tuple[Callable[[int], None], str | None]] = {}
        self._rdpmc: Callable[[int], int] = _no_rdpmc
        self._rdpmc_exit = True
        self._match: dict[tuple[Event, bool], list[Pmc]] = {}
        self._ins: list[list[Pmc] | None] = [None, None]
        self._reprogram: dict[int, Pmc] = {}
        self._pmi_pending = False
        self._pending = False
        self._emulated_ins: Callable[[list[Pmc]], None] | None = None
        self._on_overflow: Callable[[Pmc], None] | None = None

    # ------------------------------------------------------------------ binding
    def bind(self) -> None:
        """Build the dispatch tables from ``msr_table`` and the strategy's verdicts."""
        strategy = self.machine.strategy
        self._rd = {
            msr: (h.read, strategy.intercept(self, h, False)) for msr, h in self.msr_table.items()
        }
        self._wr = {
            msr: (h.write, strategy.intercept(self, h, True)) for msr, h in self.msr_table.items()
        }
        self._rdpmc = self.pmu.rdpmc
        self._rdpmc_exit = strategy.rdpmc_exits(self)
        self._emulated_ins = getattr(self.allocator, "emulated_instruction", None)
        self._on_overflow = getattr(self.allocator, "overflowed", None)
        for pmc in self.counters.values():
            pmc.overflow = self._overflow

    def rebind_msr(self, msr: int) -> None:
        """Re-bind one MSR after an extension wrapped its handler in ``msr_table``."""
        h = self.msr_table[msr]
        strategy = self.machine.strategy
        self._rd[msr] = (h.read, strategy.intercept(self, h, False))
        self._wr[msr] = (h.write, strategy.intercept(self, h, True))

    # ------------------------------------------------------------- guest: MSRs
    def wrmsr(self, msr: int, value: int) -> None:
        """Guest WRMSR. Raises :class:`GuestFault` exactly where the hardware would #GP."""
        entry = self._wr.get(msr)
        if entry is None:
            raise GuestFault(13, f"WRMSR to unknown MSR {msr:#x}")
        if self.cpl:
            raise GuestFault(13, "WRMSR at CPL > 0")
        entry[0](value & MASK64)
        reason = entry[1]
        if reason is not None:
            self._exits[reason] += 1
        self._retired_ins(reason is not None)

    def rdmsr(self, msr: int) -> int:
        """Guest RDMSR."""
        entry = self._rd.get(msr)
        if entry is None:
            raise GuestFault(13, f"RDMSR of unknown MSR {msr:#x}")
        if self.cpl:
            raise GuestFault(13, "RDMSR at CPL > 0")
        value = entry[0]()
        reason = entry[1]
        if reason is not None:
            self._exits[reason] += 1
        self._retired_ins(reason is not None)
        return value

    def rdpmc(self, ecx: int) -> int:
        """Guest RDPMC: #GP at CPL > 0 unless CR4.PCE, and wherever the vendor's ECX rules say."""
        if self.cpl and not self.cr4_pce:
            raise GuestFault(13, "RDPMC at CPL > 0 with CR4.PCE clear")
        value = self._rdpmc(ecx & 0xFFFFFFFF)
        if self._rdpmc_exit:
            self._exits["rdpmc"] += 1
        self._retired_ins(self._rdpmc_exit)
        return value

    def _retired_ins(self, emulated: bool) -> None:
        """The access itself retires one instruction on the counters enabled after it."""
        user = self.cpl > 0
        ins = self._ins[user]
        if ins is None:
            ins = self._ins[user] = self._matching(INSTRUCTIONS, user)
        self._seq += 1
        if ins:
            for pmc in ins:
                pmc.advance(1)
            if emulated and self._emulated_ins is not None:
                self._emulated_ins(ins)
        if self._pending:
            self._enter()

    # ------------------------------------------------------- guest: hardware
    def retire(self, event: Event, n: int, cpl: int = 0) -> None:
        """``n`` occurrences of a hardware event at privilege level ``cpl``.

        ``event`` is a name the backend knows (``"instructions"``, ``"cycles"``, ...)
        or an ``(event_select, umask)`` code. Counters overflow exactly; a PMI is
        delivered at the end of the call, as at the next VM entry.
        """
        if n < 0:
            raise ValueError(f"retire: n = {n}: must be >= 0")
        user = cpl > 0
        lst = self._match.get((event, user))
        if lst is None:
            lst = self._matching(event, user)
        self._seq += 1
        for pmc in lst:
            pmc.advance(n)
        if self._pending:
            self._enter()

    def counting(self, event: Event, cpl: int = 0) -> list[Pmc]:
        """The counters that count ``event`` at ``cpl`` right now (the engine steps by these)."""
        user = cpl > 0
        lst = self._match.get((event, user))
        return lst if lst is not None else self._matching(event, user)

    def _keys(self, event: Event) -> tuple[EventKey, ...]:
        if isinstance(event, tuple):
            return (event,)
        keys = self.pmu.events.get(event)
        if keys is None:
            known = ", ".join(sorted(self.pmu.events))
            raise ValueError(f"retire: unknown event {event!r}; known: {known}")
        return keys

    def _matching(self, event: Event, user: bool) -> list[Pmc]:
        keys = self._keys(event)
        lst = [
            pmc
            for pmc in self.counters.values()
            if pmc.local_en
            and pmc.global_en
            and pmc.allowed
            and pmc.running
            and pmc.key in keys
            and (pmc.usr if user else pmc.os)
        ]
        self._match[(event, user)] = lst
        return lst

    def cpuid(self, leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
        """CPUID as configured; leaves nobody defines read as zeros."""
        found = self.cpuid_leaves.get((leaf, subleaf))
        if found is None:
            found = self.cpuid_leaves.get((leaf, 0), (0, 0, 0, 0)) if subleaf == 0 else None
        return found or (0, 0, 0, 0)

    # --------------------------------------------------------------- host side
    def host_wrmsr(self, msr: int, value: int) -> None:
        """Host-initiated write (KVM_SET_MSRS): never an exit, some rules differ."""
        h = self.msr_table.get(msr)
        if h is None:
            raise GuestFault(13, f"host write to unknown MSR {msr:#x}")
        (h.host_write or h.write)(value & MASK64)
        if self._pending:
            self._enter()

    def host_rdmsr(self, msr: int) -> int:
        h = self.msr_table.get(msr)
        if h is None:
            raise GuestFault(13, f"host read of unknown MSR {msr:#x}")
        return h.read()

    # --------------------------------------------- called by backends/strategies
    def request_reprogram(self, pmc: Pmc) -> None:
        """A PMC's control changed: re-decide filter and matching, reprogram before entry."""
        flt = self.machine.event_filter
        pmc.allowed = True if flt is None else flt.allows(pmc)
        self._match.clear()
        self._ins[0] = self._ins[1] = None
        self._reprogram[pmc.idx] = pmc
        self._pending = True

    def mark_reprogram(self, pmc: Pmc) -> None:
        """Reprogram before the next entry without a control change (an emulated increment)."""
        self._reprogram[pmc.idx] = pmc
        self._pending = True

    def set_backing_running(self, pmc: Pmc, running: bool) -> None:
        """Host perf scheduled ``pmc``'s backing event in or out: it counts only while in.

        Called by the host model, never per guest access; it only invalidates the
        cached matcher lists, as a control change does.
        """
        if pmc.running != running:
            pmc.running = running
            self._match.clear()
            self._ins[0] = self._ins[1] = None

    def request_reprogram_all(self) -> None:
        for pmc in self.counters.values():
            self.request_reprogram(pmc)

    def _overflow(self, pmc: Pmc) -> None:
        self.pmu.record_overflow(pmc)
        if self._on_overflow is not None:
            self._on_overflow(pmc)
        if pmc.intr:
            self._pmi_pending = True
            self._pending = True

    def raise_pmi(self) -> None:
        """Make a PMI pending (an extension's overflow, a strategy's host NMI)."""
        self._pmi_pending = True
        self._pending = True

    def _enter(self) -> None:
        """VM entry: KVM_REQ_PMU before KVM_REQ_PMI."""
        self._pending = False
        if self._reprogram:
            todo = list(self._reprogram.values())
            self._reprogram.clear()
            for pmc in todo:
                self.allocator.reprogram(pmc)
        if self._pmi_pending:
            self._pmi_pending = False
            self.pmi_path.deliver()

    def sync(self) -> None:
        """Run any deferred entry work now (pending reprograms and PMIs)."""
        if self._pending:
            self._enter()

    def deliver_pmi(self) -> bool:
        """Offer one PMI to the LVTPC; True if the guest took it."""
        if not self.lvtpc.accept():
            self.pmis_dropped += 1
            self.machine.ledger.pmis["dropped_lvtpc_masked"] += 1
            return False
        status = getattr(self.pmu, "global_status", 0)
        self.pmis.append(Pmi(self._seq, self.lvtpc.vector, self.lvtpc.mode, status))
        self.machine.ledger.pmis["delivered"] += 1
        self.pmu.pmi_delivered()
        return True

    # ----------------------------------------------------- snapshot / restore
    def snapshot(self) -> VcpuSnapshot:
        """The whole guest-visible PMU state, as a versioned pydantic model."""
        from .snapshot import take_snapshot

        return take_snapshot(self)

    def restore(self, state: VcpuSnapshot | dict[str, Any] | str) -> None:
        """Restore a snapshot (model, dict or JSON); refuses one from another machine shape."""
        from .snapshot import restore_snapshot

        restore_snapshot(self, state)

    def reset(self) -> None:
        """vCPU RESET: architectural reset values, LVTPC masked, pending work dropped."""
        for pmc in self.counters.values():
            pmc.value = 0
        self.pmu.reset()
        self.lvtpc.value = LVTPC_RESET
        self._pmi_pending = False
        self.request_reprogram_all()
        self.sync()

    def __repr__(self) -> str:
        return f"<Vcpu {self.index} of {self.machine.name}>"


def _no_rdpmc(ecx: int) -> int:
    raise GuestFault(13, "RDPMC without a PMU")
