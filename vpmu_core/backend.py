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

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .counters import EventKey, Pmc

if TYPE_CHECKING:
    from .guest import GuestDriver
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

    # The core calls these; defaults suit a PMU without global status.
    def rdpmc(self, ecx: int) -> int:
        raise NotImplementedError

    def record_overflow(self, pmc: Pmc) -> None:
        """Record an overflow of ``pmc`` where the vendor keeps it (a status bit)."""

    def pmi_delivered(self) -> None:
        """Vendor side effects of an accepted PMI (Intel v2/v3: freeze LBRs)."""

    def reset(self) -> None:
        """Architectural RESET values of every register."""

    def shape(self) -> dict[str, Any]:
        """What a snapshot must agree on to be restored here."""
        return self.caps.as_dict()

    def save(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class Backend:
    """Base class of backend components. See ``vpmu_register_backends``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: Any, machine: Machine) -> None:
        self.config = config
        self.machine = machine

    @classmethod
    def event_names(cls) -> list[str]:
        """Event names ``retire`` and workloads accept on this backend."""
        return []

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """Refuse (ConfigError) a whole config this backend cannot run."""

    def event_select_mask(self) -> int:
        """Event-select bits of a filter entry on this vendor."""
        return 0xFF

    def caps(self) -> Caps:
        """Capabilities of the configured PMU, known before any vCPU exists."""
        raise NotImplementedError

    def guest_driver(self, vcpu: Vcpu) -> GuestDriver:
        """The guest perf driver's MSR sequences on this vendor."""
        raise NotImplementedError
