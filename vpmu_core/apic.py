"""The one local-APIC register a PMU needs: LVTPC, x2APIC MSR 0x834.

Whether delivering a PMI sets the mask bit is the *backend's* answer
(``caps.lvtpc_masks_on_pmi``: Intel's LAPIC does, AMD's does not), passed in here
as data, so the vendor difference lives in one capability and not in a branch on
a vendor name.
"""

from __future__ import annotations

from .errors import GuestFault

LVTPC_MSR = 0x834
LVT_MASKED = 1 << 16
LVT_DELIVERY_STATUS = 1 << 12
# vector 7:0, delivery mode 10:8, mask 16 are writable; delivery status 12 is read-only.
LVTPC_WRITABLE = 0xFF | 0x700 | LVT_MASKED
LVTPC_RESET = LVT_MASKED
DELIVERY_MODES = {0: "fixed", 2: "smi", 4: "nmi", 5: "init", 7: "extint"}


class Lvtpc:
    """LVTPC state of one vCPU."""

    __slots__ = ("masks_on_pmi", "value")

    def __init__(self, masks_on_pmi: bool) -> None:
        self.value = LVTPC_RESET
        self.masks_on_pmi = masks_on_pmi

    @property
    def masked(self) -> bool:
        return bool(self.value & LVT_MASKED)

    def read(self) -> int:
        return self.value

    def write(self, value: int) -> None:
        # x2APIC: bits 63:32 of every register but ICR are reserved and #GP.
        if value >> 32:
            raise GuestFault(13, f"LVTPC write {value:#x} sets bits 63:32")
        self.value = value & LVTPC_WRITABLE

    def accept(self) -> bool:
        """Try to deliver one PMI; True if accepted (and mask it if this LAPIC does)."""
        if self.value & LVT_MASKED:
            return False
        if self.masks_on_pmi:
            self.value |= LVT_MASKED
        return True

    @property
    def vector(self) -> int:
        return self.value & 0xFF

    @property
    def mode(self) -> str:
        return DELIVERY_MODES.get((self.value >> 8) & 7, "reserved")
