"""The guest's perf driver, as the MSR sequences it issues.

Workloads never hardcode an MSR: they ask the backend for a :class:`GuestDriver`
(``Backend.guest_driver(vcpu)``) and call its verbs, which each vendor turns into
the accesses Linux's ``arch/x86/events`` driver makes on that vendor. Every verb
goes through the vCPU's public ``wrmsr``/``rdpmc``, so it exits, retires
instructions and faults exactly like a real guest's would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .counters import FIXED_BASE, EventKey

if TYPE_CHECKING:
    from .vcpu import Vcpu


class GuestDriver:
    """Vendor-neutral verbs of a guest PMU driver."""

    def __init__(self, vcpu: Vcpu) -> None:
        self.vcpu = vcpu
        caps = vcpu.pmu.caps
        self.gp_counters = caps.gp_counters
        self.fixed_counters = caps.fixed_counters

    def gp_key(self, event: str) -> EventKey:
        """The encoding a GP counter uses for ``event`` (the first the backend lists)."""
        keys = self.vcpu.pmu.events.get(event)
        if not keys:
            known = ", ".join(sorted(self.vcpu.pmu.events))
            raise ValueError(f"unknown event {event!r}; known: {known}")
        return keys[0]

    def fixed_index(self, event: str) -> int | None:
        """The fixed counter that counts ``event``, if any."""
        keys = self.vcpu.pmu.events.get(event, ())
        for idx, pmc in self.vcpu.counters.items():
            if pmc.kind == "fixed" and pmc.key in keys:
                return idx - FIXED_BASE
        return None

    # Vendor verbs ------------------------------------------------------------
    def program_gp(self, i: int, key: EventKey, *, usr: bool, os: bool, intr: bool = False) -> None:
        raise NotImplementedError

    def program_fixed(self, i: int, *, usr: bool, os: bool, intr: bool = False) -> None:
        raise NotImplementedError

    def stop_gp(self, i: int, key: EventKey, *, usr: bool, os: bool, intr: bool = False) -> None:
        """Write GP counter ``i``'s config with the enable bit clear (perf's disable_event)."""
        raise NotImplementedError

    def read_status(self) -> int:
        """The overflow status register, where the vendor has one (else 0)."""
        return 0

    def ack_status(self, status: int) -> None:
        """Clear ``status`` bits, where the vendor has a status register."""

    def write_counter(self, idx: int, value: int) -> None:
        raise NotImplementedError

    def read_counter(self, idx: int) -> int:
        raise NotImplementedError

    def enable_all(self) -> None:
        raise NotImplementedError

    def disable_all(self) -> None:
        raise NotImplementedError

    def handle_pmi(self, rearm: dict[int, int]) -> int:
        """The guest's PMI handler, as the vendor's Linux driver issues it.

        ``rearm`` maps each overflowed PMC index to the value it is re-armed with.
        Returns the overflow status the handler saw. The sequences differ by vendor
        (spec amd-and-topdown.md §4.1-4.3), and their exit counts are what a
        virtualization strategy is priced on, so each backend writes its own.
        """
        raise NotImplementedError

    def unmask_pmi(self) -> None:
        """Program the LVTPC for NMI delivery, unmasked, as Linux does."""
        self.vcpu.wrmsr(0x834, 0x400)
