"""What a vendor backend is, as the core sees it.

A backend is a component (one instance per machine) that answers the machine
hooks: it builds each vCPU's counters and MSR rows and its CPUID leaves. Its
per-vCPU register state is a :class:`VendorPmu`, stored as ``vcpu.pmu``, which the
core calls for the few things only the vendor knows: RDPMC decoding, where an
overflow is recorded, and what a PMI does to vendor state.

Vendor differences the core must act on are *data* in :class:`Caps`, computed from
the config alone (:meth:`Backend.capabilities`). The vendor contract is declared
once, in :data:`REQUIRED` and :data:`OPTIONAL`, and :func:`check_backend` holds a
backend class to it when a plugin registers it, so a missing member is an error
naming it at load time, not a NotImplementedError in the middle of a run. The
guest's perf driver is not the backend's: the machine picks it from the guest's
CPUID vendor (:mod:`vpmu_core.guest`), as Linux's ``init_hw_perf_events`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .allinone import AllInOneRoom
from .caps import Caps
from .counters import EventKey, Pmc
from .errors import PluginError
from .hookspecs import hookimpl
from .msr import MsrHandler

if TYPE_CHECKING:
    from .port import MachinePort, VcpuPort

__all__ = ["OPTIONAL", "REQUIRED", "Backend", "Caps", "VendorPmu", "check_backend"]


class VendorPmu:
    """Per-vCPU register state of a backend. Subclasses fill in the vendor rules."""

    caps: Caps
    # perf's generic event names -> encodings; a vendor whose table depends on its
    # config sets it per instance (Backend.event_table gives it before any vCPU).
    events: dict[str, tuple[EventKey, ...]]

    def __init__(self, vcpu: VcpuPort) -> None:
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
        if hot:
            self.vcpu.reprogram_counters(self.by_idx, hot, new)

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
        Intel's PERF_METRICS is one (ECX bit 29); an extension adds its own with
        :meth:`~vpmu_core.vcpu.Vcpu.add_rdpmc`.
        """
        return {}

    def record_overflow(self, pmc: Pmc) -> None:
        """Record an overflow of ``pmc`` where the vendor keeps it (a status bit)."""

    def pmi_delivered(self) -> None:
        """Vendor side effects of an accepted PMI (Intel v2/v3: freeze LBRs)."""

    def pmi_status(self) -> int:
        """The overflow status a delivered PMI is stamped with (0 where the vendor has none)."""
        return 0

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

    def __init__(self, config: Any, machine: MachinePort) -> None:
        self.config = config
        self.machine = machine

    @classmethod
    def capabilities(cls, config: Any) -> Caps:
        """Capabilities of the PMU ``config`` describes, known before any machine exists."""
        raise NotImplementedError

    def caps(self) -> Caps:
        """Capabilities of this machine's PMU."""
        return type(self).capabilities(self.config)

    def create_pmu(self, vcpu: VcpuPort) -> VendorPmu:
        raise NotImplementedError

    def cpuid_leaves(self) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        raise NotImplementedError

    @hookimpl
    def vpmu_vcpu_counters(self, vcpu: VcpuPort) -> list[Pmc]:
        pmu = self.create_pmu(vcpu)
        vcpu.pmu = pmu
        return pmu.counters()

    @hookimpl
    def vpmu_vcpu_msr_handlers(self, vcpu: VcpuPort) -> list[MsrHandler]:
        return vcpu.pmu.msr_handlers()

    @hookimpl
    def vpmu_vcpu_cpuid(self, vcpu: VcpuPort) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        return self.cpuid_leaves()

    @hookimpl
    def vpmu_vcpu_ready(self, vcpu: VcpuPort) -> None:
        vcpu.pmu.reset()

    @hookimpl
    def vpmu_save_state(self, vcpu: VcpuPort) -> dict[str, Any]:
        return vcpu.pmu.save()

    @hookimpl
    def vpmu_restore_state(self, vcpu: VcpuPort, states: dict[str, dict[str, Any]]) -> None:
        vcpu.pmu.load(states[self.name])

    @classmethod
    def event_table(cls, config: Any) -> dict[str, tuple[EventKey, ...]]:
        """perf's generic names on the PMU ``config`` describes, and what they encode."""
        pmu: Any = getattr(cls, "Pmu", None)
        return dict(getattr(pmu, "events", {}))

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        """Representative ``[pmu]`` tables the conformance suite runs this backend with."""
        return {}

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """Refuse (ConfigError) a whole config this backend cannot run."""

    @classmethod
    def allinone_room(cls, config: Any) -> AllInOneRoom:
        """The status bits and RDPMC ECX an all-in-one counter may take on this vendor.

        The default knows no vendor bits; a vendor with a status register says which
        of its bits and RDPMC types are taken.
        """
        return AllInOneRoom()

    def event_select_mask(self) -> int:
        """Event-select bits of a filter entry on this vendor."""
        return 0xFF


#: The vendor contract, declared once. ``REQUIRED`` members must be defined by the
#: backend class (or, under ``"pmu"``, by the VendorPmu class its ``create_pmu``
#: returns, named by the backend's ``Pmu``); ``OPTIONAL`` ones have defaults that
#: suit a PMU without the feature.
REQUIRED: dict[str, tuple[str, ...]] = {
    "backend": ("name", "Config", "Pmu", "capabilities", "create_pmu", "cpuid_leaves"),
    "pmu": ("counters", "msr_handlers", "rdpmc", "cpuid_shape", "save", "load"),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "backend": (
        "event_table",
        "conformance_configs",
        "check",
        "event_select_mask",
        "allinone_room",
    ),
    "pmu": ("rdpmc_table", "record_overflow", "pmi_delivered", "pmi_status", "reset", "shape"),
}


def check_backend(cls: type[Any]) -> None:
    """Refuse (PluginError) a backend class that leaves a required member undefined."""
    name = getattr(cls, "name", "") or cls.__name__
    missing = [m for m in REQUIRED["backend"] if not _defines(cls, Backend, m)]
    pmu = getattr(cls, "Pmu", None)
    if isinstance(pmu, type) and issubclass(pmu, VendorPmu):
        missing += [f"Pmu.{m}" for m in REQUIRED["pmu"] if not _defines(pmu, VendorPmu, m)]
    elif "Pmu" not in missing:
        missing.append("Pmu (a VendorPmu subclass)")
    if missing:
        raise PluginError(
            f"backend {name!r} ({cls.__module__}.{cls.__qualname__}) does not define "
            f"{', '.join(missing)}: see vpmu_core.backend.REQUIRED"
        )


def _defines(cls: type[Any], base: type[Any], member: str) -> bool:
    """Whether a class below ``base`` in ``cls``'s MRO gives ``member`` a (non-empty) value."""
    for klass in cls.__mro__:
        if member in klass.__dict__:
            return klass not in base.__mro__ and klass.__dict__[member] not in ("", None)
    return False
