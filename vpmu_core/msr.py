"""MSR handlers: the rows of a vCPU's dispatch table.

A backend describes its registers as rows, the way QEMU's cpregs tables do; the
core merges the rows of every component into one dict and binds it. ``klass``
groups MSRs for the ledger and for a strategy's intercept decision (an exit is
counted as ``"wrmsr:eventsel"``, ``"rdmsr:counter"``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import GuestFault

MASK64 = (1 << 64) - 1

Reader = Callable[[], int]
Writer = Callable[[int], None]

# MSR classes a strategy can tell apart. A backend may use others; strategies treat
# an unknown class like "other" (intercepted).
COUNTER = "counter"
EVENTSEL = "eventsel"
FIXED_CTRL = "fixed_ctrl"
GLOBAL_CTRL = "global_ctrl"
GLOBAL_STATUS = "global_status"
GLOBAL_STATUS_CLR = "global_status_clr"
GLOBAL_STATUS_SET = "global_status_set"
CAPABILITIES = "capabilities"
LVTPC = "lvtpc"
DEBUGCTL = "debugctl"
METRICS = "metrics"
QUIRK = "quirk"


@dataclass(frozen=True, slots=True)
class MsrHandler:
    """One MSR: how the guest reads and writes it, and how the host (KVM_SET_MSRS) does.

    ``read``/``write`` raise :class:`~vpmu_core.errors.GuestFault` for a #GP. A host
    write differs from a guest one for a few registers (GLOBAL_STATUS is writable,
    legacy counters are not sign-extended); ``host_write`` is None where they agree.
    ``counter`` is the PMC index the MSR aliases, if any.
    """

    msr: int
    name: str
    klass: str
    read: Reader
    write: Writer
    host_write: Writer | None = None
    counter: int | None = None
    owner: str = ""


# KVM answers these legacy P6/K7 counter MSRs on every vendor, PMU or not: when no
# counter backs one, a write is dropped and a read gives 0 (arch/x86/kvm/x86.c,
# kvm_set_msr_common / kvm_get_msr_common; spec/intel.md §12, amd-and-topdown.md §3.2).
LEGACY_QUIRK_MSRS = (0xC1, 0xC2, 0x186, 0x187, *range(0xC0010000, 0xC0010008))


def legacy_quirk_rows(claimed: set[int], owner: str) -> list[MsrHandler]:
    """Rows for the legacy MSRs in :data:`LEGACY_QUIRK_MSRS` that no counter claims."""

    def zero() -> int:
        return 0

    def drop(value: int) -> None:
        return None

    return [
        MsrHandler(msr, f"LEGACY_{msr:#x}", QUIRK, zero, drop, owner=owner)
        for msr in LEGACY_QUIRK_MSRS
        if msr not in claimed
    ]


def vendor_leaf(vendor: str, max_leaf: int) -> tuple[int, int, int, int]:
    """CPUID leaf 0 (or 0x80000000): the maximum leaf and the 12-byte vendor string."""
    raw = vendor.encode()
    ebx, edx, ecx = (int.from_bytes(raw[i : i + 4], "little") for i in (0, 4, 8))
    return max_leaf, ebx, ecx, edx


def vendor_of(leaf: tuple[int, int, int, int]) -> str:
    """The vendor string of a CPUID leaf 0 (EBX, EDX, ECX): what :func:`vendor_leaf` wrote."""
    _, ebx, ecx, edx = leaf
    return b"".join(r.to_bytes(4, "little") for r in (ebx, edx, ecx)).decode("latin-1")


def read_zero() -> int:
    """The read of a register that always reads 0."""
    return 0


def read_only(name: str) -> Callable[[int], None]:
    """The guest write of a read-only register: #GP, naming it."""

    def write(value: int) -> None:
        raise GuestFault(13, f"{name} is read-only to the guest")

    return write
