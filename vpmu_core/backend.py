"""What a vendor backend is, as the core sees it.

A backend is a component (one instance per machine) that answers the machine
hooks: it builds each vCPU's counters and MSR rows and its CPUID leaves. Its
per-vCPU register state is a :class:`VendorPmu`, stored as ``vcpu.pmu``, which the
core calls for the few things only the vendor knows: RDPMC decoding, where an
overflow is recorded, and what a PMI does to vendor state.

Vendor differences the core must act on are *data* in :class:`Caps`, never a test
of the vendor's name: the conformance suite skips on these, and the LVTPC takes its
masking rule from ``lvtpc_masks_on_pmi``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .counters import EventKey, Pmc
from .guest import GuestDriver
from .hookspecs import hookimpl
from .msr import MsrHandler

if TYPE_CHECKING:
    from .machine import Machine
    from .vcpu import Vcpu


@dataclass(frozen=True)
class Caps:
    """Capabilities of a configured PMU, the vocabulary tests skip on."""

    vendor: str
    version: int
    gp_counters: int
    fixed_counters: int
    gp_width: int
    fixed_width: int
    has_global_ctrl: bool
    has_global_status: bool
    legacy_writes_sign_extend: bool
    lvtpc_masks_on_pmi: bool
    reserved_eventsel_faults: bool
    full_width_writes: bool
    event_select_mask: int  # event-select bits of an eventsel / filter entry
    # A GLOBAL_STATUS_SET register in hardware (Intel v4+, AMD PerfMonV2): what the
    # mediated PMU needs to restore a guest's overflow status (spec/intel.md §10).
    has_global_status_set: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class VendorPmu:
    """Per-vCPU register state of a backend. Subclasses fill in the vendor rules."""

    caps: Caps
    events: ClassVar[dict[str, tuple[EventKey, ...]]] = {}

    def __init__(self, vcpu: Vcpu) -> None:
        self.vcpu = vcpu
        self.local_en_mask = 0  # counters whose own control enables them, by index bit
        self.by_idx: dict[int, Pmc] = {}

    def track_local_en(self, pmc: Pmc) -> None:
        """Keep ``local_en_mask`` in step; call after decoding a counter's control."""
        bit = 1 << pmc.idx
        if pmc.local_en:
            self.local_en_mask |= bit
        else:
            self.local_en_mask &= ~bit

    def apply_global_enables(self, old: int, new: int) -> None:
        """A global-control write changed enable bits ``old ^ new`` (index-space bits).

        Only locally enabled counters are touched: a disabled one has no running host
        event and is in no match list, so its reprogram (KVM: pause, "not enabled",
        return) changes nothing, and its ``global_en`` is recomputed when its control
        is next decoded. That keeps a guest PMI handler's global disable/enable pair
        O(enabled counters), which the throughput benchmark depends on.
        """
        hot = (old ^ new) & self.local_en_mask
        request = self.vcpu.request_reprogram
        while hot:
            low = hot & -hot
            hot ^= low
            pmc = self.by_idx[low.bit_length() - 1]
            pmc.global_en = bool(new & low)
            request(pmc)

    def counters(self) -> list[Pmc]:
        """This vCPU's PMCs, in the core's index space."""
        raise NotImplementedError

    def msr_handlers(self) -> list[MsrHandler]:
        """This vCPU's MSR rows (bound once into the dispatch table)."""
        raise NotImplementedError

    @staticmethod
    def control_reader(pmc: Pmc) -> Callable[[], int]:
        """RDMSR of a counter's control register returns exactly what was stored."""
        return lambda: pmc.control

    # The core calls these; defaults suit a PMU without global status.
    def rdpmc(self, ecx: int) -> int:
        raise NotImplementedError

    def rdpmc_table(self) -> dict[int, Callable[[], int]]:
        """Every valid RDPMC ECX and the read it performs, bound once.

        ECX values missing here go to :meth:`rdpmc`, which raises the vendor's #GP.
        An extension may add entries (e.g. Intel's PERF_METRICS at ECX bit 29).
        """
        return {}

    def record_overflow(self, pmc: Pmc) -> None:
        """Record an overflow of ``pmc`` where the vendor keeps it (a status bit)."""

    def pmi_delivered(self) -> None:
        """Vendor side effects of an accepted PMI (Intel v2/v3: freeze LBRs)."""

    def reset(self) -> None:
        """Architectural RESET values of every register."""

    def cpuid_shape(self) -> dict[str, int]:
        """The PMU shape the guest reads from this vCPU's CPUID (decoded the vendor's way).

        The conformance suite checks it against the MSRs that answer, so a backend
        whose CPUID and MSR map disagree fails there.
        """
        raise NotImplementedError

    def shape(self) -> dict[str, Any]:
        """What a snapshot must agree on to be restored here."""
        return self.caps.as_dict()

    def save(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class Backend:
    """Base class of backend components. See ``vpmu_register_backends``.

    The machine hooks every backend answers the same way live here; a vendor says
    only how to build one vCPU's :class:`VendorPmu` (:meth:`create_pmu`) and its
    CPUID leaves (:meth:`cpuid_leaves`).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: Any, machine: Machine) -> None:
        self.config = config
        self.machine = machine

    def create_pmu(self, vcpu: Vcpu) -> VendorPmu:
        raise NotImplementedError

    def cpuid_leaves(self) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        raise NotImplementedError

    @hookimpl
    def vpmu_vcpu_counters(self, vcpu: Vcpu) -> list[Pmc]:
        pmu = self.create_pmu(vcpu)
        vcpu.pmu = pmu
        return pmu.counters()

    @hookimpl
    def vpmu_vcpu_msr_handlers(self, vcpu: Vcpu) -> list[MsrHandler]:
        return vcpu.pmu.msr_handlers()

    @hookimpl
    def vpmu_vcpu_cpuid(self, vcpu: Vcpu) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        return self.cpuid_leaves()

    @hookimpl
    def vpmu_vcpu_ready(self, vcpu: Vcpu) -> None:
        vcpu.pmu.reset()

    @hookimpl
    def vpmu_save_state(self, vcpu: Vcpu) -> dict[str, Any]:
        return vcpu.pmu.save()

    @hookimpl
    def vpmu_restore_state(self, vcpu: Vcpu, states: dict[str, dict[str, Any]]) -> None:
        vcpu.pmu.load(states[self.name])

    @classmethod
    def event_names(cls) -> list[str]:
        """Event names ``retire`` and workloads accept on this backend."""
        return []

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        """Representative ``[pmu]`` tables the conformance suite runs this backend with."""
        return {}

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """Refuse (ConfigError) a whole config this backend cannot run."""

    def event_select_mask(self) -> int:
        """Event-select bits of a filter entry on this vendor."""
        return 0xFF

    def caps(self) -> Caps:
        """Capabilities of the configured PMU, known before any vCPU exists."""
        raise NotImplementedError

    # The guest driver's class; a backend sets it (GuestDriver subclass for its vendor).
    GuestDriverClass: ClassVar[type[GuestDriver] | None] = None

    def guest_driver(self, vcpu: Vcpu) -> GuestDriver:
        """The guest perf driver of ``vcpu``: one per vCPU, as the guest kernel has one.

        Cached on the vCPU because the driver keeps the guest's bookkeeping (which
        counters it made active, which a disable-all stopped); two drivers of one
        vCPU would disagree about it.
        """
        drv = vcpu.ext.get("guest-driver")
        if drv is None:
            if self.GuestDriverClass is None:
                raise NotImplementedError(f"backend {self.name!r} has no guest driver")
            drv = vcpu.ext["guest-driver"] = self.GuestDriverClass(vcpu)
        assert isinstance(drv, GuestDriver)
        return drv
