"""A virtual CPU as the guest sees its PMU: the public hot path of vpmu.

Everything here is bound when the machine is built: a guest ``wrmsr`` is one dict
lookup, the bound handler, a ledger increment and the instruction it retires. VM
entry (``_enter``) does the deferred work in KVM's order: reprogram requests
(``KVM_REQ_PMU``), then a pending PMI (``KVM_REQ_PMI``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .apic import LVTPC_RESET, Lvtpc
from .counters import Pmc
from .errors import GuestFault
from .matching import Stashed, counting_now, event_keys
from .msr import MASK64, MsrHandler
from .pmis import Pmi, PmiLog
from .port import CounterAllocator, Event, MachinePort, PmiPath, PmuState
from .qualifiers import advance_spread, impossible_spread
from .snapshot import VcpuSnapshot, restore_snapshot, take_snapshot

INSTRUCTIONS = "instructions"

__all__ = ["INSTRUCTIONS", "Pmi", "PmiLog", "Vcpu"]


class Vcpu:
    """One vCPU. Build it through :class:`~vpmu_core.machine.Machine`."""

    pmu: PmuState
    allocator: CounterAllocator
    pmi_path: PmiPath

    def __init__(self, machine: MachinePort, index: int) -> None:
        self.machine = machine
        self.index = index
        self._cpl = 0
        self._cr4_pce = False
        self._user = 0
        self.counters: dict[int, Pmc] = {}
        # counting views that own no index (all-in-one PMC fields), matched after counters
        self.views: list[Pmc] = []
        self._pmcs: list[Pmc] = []  # counters then views: what the matcher walks
        self.msr_table: dict[int, MsrHandler] = {}
        self.cpuid_leaves: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        # every PMI counted (len), the last [machine] pmi_log kept (vpmu_core.pmis)
        self.pmis = PmiLog(machine.config.machine.pmi_log)
        self.pmis_dropped = 0
        self.ext: dict[str, Any] = {}  # per-vCPU state of extensions, by name
        self.lvtpc = Lvtpc(masks_on_pmi=True)
        self.clock = 0  # guest time in cycles, kept by the workload engine; stamps PMIs
        self._exits = machine.ledger.exits
        # this vCPU's own exits, all and fastpath-handled (what a per-exit switch pays)
        self.exits_taken = 0
        self.fast_exits = 0
        self._rd: dict[int, tuple[Callable[[], int], str | None]] = {}
        self._wr: dict[int, tuple[Callable[[int], None], str | None]] = {}
        self._rdpmc: Callable[[int], int] = _no_rdpmc
        self._rdpmc_table: dict[int, Callable[[], int]] = {}
        self._wr_now = self._wr
        self._rd_now = self._rd
        self._rdpmc_now = self._rdpmc_table
        self._rdpmc_exit = True
        # The counters each (event, CPL) advances, built on a miss by ``_matching``; a
        # list with a CMASK/INV/EDGE counter lives in ``_qmatch`` (``_retire_mixed``).
        self._match: dict[tuple[Event, int], list[Pmc]] = {}
        self._qmatch: dict[tuple[Event, int], list[Pmc]] = {}
        self._ins: list[list[Pmc] | None] = [None, None]
        self._ins_mixed = False  # an ``_ins`` list holds a qualified counter
        self._stash: dict[int, Stashed] = {}  # the lists under each global-control value
        self._reprogram: dict[int, Pmc] = {}
        self._pmi_pending = False
        self._pending = False
        self.entries = 0  # VM entries that had deferred work (a strategy batches by it)
        self._emulated_ins: Callable[[list[Pmc]], None] = _nothing
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
        self._rdpmc_table = self.pmu.rdpmc_table()
        self._bind_mode()
        self._rdpmc_exit = strategy.rdpmc_exits(self)
        self.set_allocator(self.allocator)
        for pmc in self.counters.values():
            pmc.overflow = self._overflow

    def wrap_msr(self, msr: int, wrap: Callable[[MsrHandler], MsrHandler]) -> None:
        """The one wrap step: replace ``msr``'s row by ``wrap(row)`` and bind it.

        For a component that must see accesses to a row another one owns (a tracer,
        a strategy following counter writes), in ``vpmu_vcpu_ready``. The wrapped row
        is bound like any other: one dict lookup per access, no pluggy call.
        """
        self.msr_table[msr] = wrap(self.msr_table[msr])
        self.rebind_msr(msr)

    def rebind_msr(self, msr: int) -> None:
        """Bind ``msr``'s row again, asking the strategy's intercept verdict anew (its
        verdict changed: a context loaded opens the MSR bitmap; or a wrapped row)."""
        h = self.msr_table[msr]
        strategy = self.machine.strategy
        self._rd[msr] = (h.read, strategy.intercept(self, h, False))
        self._wr[msr] = (h.write, strategy.intercept(self, h, True))
        self._bind_mode()

    def rdpmc_readers(self) -> dict[int, Callable[[], int]]:
        """A copy of the bound RDPMC readers by ECX, for an extension to wrap and give
        back through :meth:`add_rdpmc` (nothing holds the bound table across a rebind)."""
        return dict(self._rdpmc_table)

    def add_rdpmc(self, readers: dict[int, Callable[[], int]]) -> None:
        """Answer extra RDPMC ECX values (an extension's counters), bound like the vendor's."""
        self._rdpmc_table.update(readers)
        self._bind_mode()

    def set_allocator(self, allocator: CounterAllocator) -> None:
        """Replace the counter allocator (an extension wrapping the strategy's) and rebind."""
        self.allocator = allocator
        self._emulated_ins = allocator.emulated_instruction
        self._on_overflow = allocator.overflowed if allocator.hears_overflows else None

    # ------------------------------------------------------------- guest: MSRs
    # The three accessors below are the hot path. CPL is folded into which tables
    # are bound (``_bind_mode``), so an access pays for one dict lookup, its
    # handler, one ledger increment and the instruction it retires.
    def wrmsr(self, msr: int, value: int) -> None:
        """Guest WRMSR. Raises :class:`GuestFault` exactly where the hardware would #GP."""
        entry = self._wr_now.get(msr)
        if entry is None:
            raise self._msr_fault("WRMSR", msr)
        write, reason = entry
        write(value & MASK64)
        if reason is not None:
            self._exits[reason] += 1
            self.exits_taken += 1
        ins = self._ins[0]
        if ins is None:
            ins = self._instruction_counters(0)
        if ins:
            self._count_own(ins, reason is not None)
        if self._pending:
            self._enter()

    def rdmsr(self, msr: int) -> int:
        """Guest RDMSR."""
        entry = self._rd_now.get(msr)
        if entry is None:
            raise self._msr_fault("RDMSR", msr)
        read, reason = entry
        value = read()
        if reason is not None:
            self._exits[reason] += 1
            self.exits_taken += 1
        ins = self._ins[0]
        if ins is None:
            ins = self._instruction_counters(0)
        if ins:
            self._count_own(ins, reason is not None)
        if self._pending:
            self._enter()
        return value

    def rdpmc(self, ecx: int) -> int:
        """Guest RDPMC: #GP at CPL > 0 unless CR4.PCE, and wherever the vendor's ECX rules say.

        RDPMC reads ECX, not RCX: bits 63:32 of the argument are not the guest's.
        """
        ecx &= 0xFFFF_FFFF
        read = self._rdpmc_now.get(ecx)
        if read is None:
            return self._rdpmc_slow(ecx)
        value = read()
        exits = self._rdpmc_exit
        if exits:
            self._exits["rdpmc"] += 1
            self.exits_taken += 1
        user = self._user
        ins = self._ins[user]
        if ins is None:
            ins = self._instruction_counters(user)
        if ins:
            self._count_own(ins, exits)
        if self._pending:
            self._enter()
        return value

    @property
    def cpl(self) -> int:
        """Current privilege level; WRMSR/RDMSR #GP above 0, RDPMC unless CR4.PCE."""
        return self._cpl

    @cpl.setter
    def cpl(self, value: int) -> None:
        if value not in (0, 1, 2, 3):
            raise ValueError(f"cpl = {value}: must be 0-3")
        self._cpl = value
        self._bind_mode()

    @property
    def cr4_pce(self) -> bool:
        """CR4.PCE: RDPMC allowed at CPL > 0."""
        return self._cr4_pce

    @cr4_pce.setter
    def cr4_pce(self, value: bool) -> None:
        self._cr4_pce = bool(value)
        self._bind_mode()

    def _bind_mode(self) -> None:
        kernel = self._cpl == 0
        self._user = 0 if kernel else 1
        self._wr_now = self._wr if kernel else {}
        self._rd_now = self._rd if kernel else {}
        self._rdpmc_now = self._rdpmc_table if kernel or self._cr4_pce else {}

    def _rdpmc_slow(self, ecx: int) -> int:
        if self._cpl and not self._cr4_pce:
            raise GuestFault(13, "RDPMC at CPL > 0 with CR4.PCE clear")
        self._rdpmc(ecx)  # the vendor's decoding: raises the #GP it gives
        raise GuestFault(13, f"RDPMC ECX {ecx:#x} names no counter")

    def _msr_fault(self, what: str, msr: int) -> GuestFault:
        if self._cpl:
            return GuestFault(13, f"{what} at CPL > 0")
        return GuestFault(13, f"{what} of unknown MSR {msr:#x}")

    def _instruction_counters(self, user: int) -> list[Pmc]:
        cpl = 3 if user else 0
        ins = self._ins[user] = self._matching(INSTRUCTIONS, cpl)
        if self._qmatch and (INSTRUCTIONS, cpl) in self._qmatch:
            self._ins_mixed = True
        return ins

    def _count_own(self, ins: list[Pmc], emulated: bool) -> None:
        """The access retired one instruction on the counters enabled after it. Exited
        (``emulated``): KVM's emulated increment (kvm_pmu_trigger_event), which ignores
        CMASK/INV/EDGE and which the strategy hears of; else one instruction in one cycle."""
        if emulated:
            for pmc in ins:
                pmc.advance(1)
            self._emulated_ins(ins)
        elif self._ins_mixed:
            advance_spread(ins, 1, 1)
        else:
            for pmc in ins:
                pmc.advance(1)

    # ------------------------------------------------------- guest: hardware
    def retire(self, event: Event, n: int, cpl: int = 0, cycles: int | None = None) -> None:
        """``n`` occurrences of ``event`` (a name the backend knows or an ``(event_select,
        umask)`` code) at ``cpl`` in ``cycles`` (default ``n``; only CMASK/INV/EDGE
        counters count cycles, under qualifiers.py's spread). Counters overflow exactly; a
        PMI is delivered at the end, as at the next VM entry. A ``cpl`` outside 0-3,
        ``n < 0`` or events in no cycle is the caller's misuse: ValueError."""
        if n < 0:
            raise ValueError(f"retire: n = {n}: must be >= 0")
        if cycles is not None and (cycles < 0 or (n and not cycles)):
            raise impossible_spread(n, cycles)
        lst = self._match.get((event, cpl))
        if lst is None:
            self._retire_mixed(event, n, cpl, n if cycles is None else cycles)
            return
        for pmc in lst:
            pmc.advance(n)
        if self._pending:
            self._enter()

    def _retire_mixed(self, event: Event, n: int, cpl: int, cycles: int) -> None:
        """retire() past a cache miss: match (refusing a bad CPL), then count every
        counter, qualified ones by the spread of ``n`` events over ``cycles``."""
        lst = self._qmatch.get((event, cpl))
        if lst is None:
            lst = self._matching(event, cpl)
        advance_spread(lst, n, cycles)
        if self._pending:
            self._enter()

    def counting(self, event: Event, cpl: int = 0) -> list[Pmc]:
        """The counters that count ``event`` at ``cpl`` right now (the engine steps by these);
        a qualified one's ``events_to_overflow`` is in qualifying cycles, not events."""
        lst = self._match.get((event, cpl))
        if lst is None:
            lst = self._qmatch.get((event, cpl)) or self._matching(event, cpl)
        return lst

    def _matching(self, event: Event, cpl: int) -> list[Pmc]:
        if not 0 <= cpl <= 3:
            raise ValueError(f"retire: cpl = {cpl!r}: must be 0-3")
        self.machine.host.run(self)  # guest code runs on its pCPU: its task events count
        keys = event_keys(self.pmu, event)
        pmcs = self._pmcs  # rebuilt when an extension added views after the last build
        if len(pmcs) != len(self.counters) + len(self.views):
            pmcs = self._pmcs = [*self.counters.values(), *self.views]
        lst = counting_now(pmcs, keys, cpl > 0)
        table = self._match
        for pmc in lst:
            if pmc.qual is not None:
                table = self._qmatch
                break
        table[(event, cpl)] = lst
        return lst

    def cpuid(self, leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
        """Guest CPUID: the configured leaf, one exit and one instruction (no branch):
        KVM completes it through kvm_skip_emulated_instruction ->
        kvm_pmu_instruction_retired (arch/x86/kvm/cpuid.c, x86.c, pmu.c)."""
        found = self.cpuid_table(leaf, subleaf)
        self._exits["cpuid"] += 1
        self.exits_taken += 1
        ins = self._instruction_counters(self._user)
        if ins:
            self._count_own(ins, True)
        self.sync()
        return found

    def cpuid_table(self, leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
        """What CPUID returns, without executing it (KVM's cpuid entries as the host set
        them; what a guest kernel read at boot). Leaves nobody defines read as zeros."""
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
        self.rematch()
        self._reprogram[pmc.idx] = pmc
        self._pending = True

    def reprogram_counters(self, by_idx: Mapping[int, Pmc], diff: int, enabled: int) -> None:
        """A global control set the enable bits ``diff`` of ``by_idx`` to ``enabled``'s:
        KVM's reprogram_counters(pmu, diff), with one matcher invalidation for all."""
        flt = self.machine.event_filter
        todo = self._reprogram
        diff0 = diff
        while diff:
            low = diff & -diff
            diff ^= low
            pmc = by_idx[low.bit_length() - 1]
            pmc.global_en = bool(enabled & low)
            pmc.allowed = True if flt is None else flt.allows(pmc)
            todo[pmc.idx] = pmc
        # A PMI handler's disable/enable pair returns to the lists it left (until rematch).
        # Keyed by the value the locally enabled counters' global bits had before (the
        # old value on ``diff``) and have now: the other bits count nothing.
        ins = self._ins
        self._stash[enabled ^ diff0] = (self._match, self._qmatch, ins[0], ins[1], self._ins_mixed)
        back = self._stash.get(enabled)
        if back is None:
            self._match, self._qmatch = {}, {}
            ins[0] = ins[1] = None
            self._ins_mixed = False
        else:
            self._match, self._qmatch, ins[0], ins[1], self._ins_mixed = back
        self._pending = True

    def count_exit(self, reason: str, n: int = 1) -> None:
        """An exit no guest access caused (a host tick, an NMI)."""
        self._exits[reason] += n
        self.exits_taken += n
        if reason.startswith("fastpath:"):
            self.fast_exits += n

    def rematch(self) -> None:
        """Which counters count changed without a control write (a host group failed)."""
        self._stash.clear()
        self._match.clear()
        self._ins[0] = self._ins[1] = None
        if self._qmatch:  # only a qualified list can have made ``_ins`` mixed
            self._qmatch.clear()
            self._ins_mixed = False

    def mark_reprogram(self, pmc: Pmc) -> None:
        """Reprogram before the next entry without a control change (an emulated increment)."""
        pmc = self.counters.get(pmc.idx, pmc)  # a view shares its owner's index
        self._reprogram[pmc.idx] = pmc
        self._pending = True

    def set_backing_running(self, pmc: Pmc, running: bool) -> None:
        """Host perf scheduled ``pmc``'s backing event in or out: it counts only while in
        (the host model calls it, never per guest access)."""
        if pmc.running != running:
            pmc.running = running
            self.rematch()

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

    @property
    def pending_reprogram(self) -> Mapping[int, Pmc]:
        """The counters to reprogram at the next entry (read-only)."""
        return self._reprogram

    @property
    def pmi_pending(self) -> bool:
        """A PMI waits for the next entry: a counter overflowing now rides the same NMI."""
        return self._pmi_pending

    def raise_pmi(self) -> None:
        """Make a PMI pending (an extension's overflow, a strategy's host NMI)."""
        self._pmi_pending = True
        self._pending = True

    def _enter(self) -> None:
        """VM entry: KVM_REQ_PMU before KVM_REQ_PMI."""
        self._pending = False
        self.entries += 1
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
        self.pmis.record(self.clock, self.lvtpc.vector, self.lvtpc.mode, self.pmu.pmi_status())
        self.machine.ledger.pmis["delivered"] += 1
        self.pmu.pmi_delivered()
        return True

    # ----------------------------------------------------- snapshot / restore
    def snapshot(self) -> VcpuSnapshot:
        """The whole guest-visible PMU state, as a versioned pydantic model."""
        return take_snapshot(self)

    def restore(self, state: VcpuSnapshot | dict[str, Any] | str) -> None:
        """Restore a snapshot (model, dict or JSON); refuses one from another machine shape."""
        restore_snapshot(self, state)

    def reset(self) -> None:
        """vCPU RESET: architectural reset values, LVTPC masked, pending work dropped."""
        for pmc in self.counters.values():
            pmc.reset()
        self.pmu.reset()
        self.lvtpc.value = LVTPC_RESET
        self._pmi_pending = False
        self.request_reprogram_all()
        self.sync()

    def __repr__(self) -> str:
        return f"<Vcpu {self.index} of {self.machine.name}>"


def _nothing(pmcs: list[Pmc]) -> None:
    return None


def _no_rdpmc(ecx: int) -> int:
    raise GuestFault(13, "RDPMC without a PMU")
