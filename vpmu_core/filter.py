"""The PMU event filter, with the semantics of KVM_SET_PMU_EVENT_FILTER.

Facts: spec/intel.md §9 (arch/x86/kvm/pmu.c, pmu_event_filter_test.c). What KVM
rejects is rejected here with the same errno; what KVM silently drops is dropped.
Every entry is kept in KVM's in-kernel *masked* form, so one matcher serves both
the plain and the masked flavour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .counters import FIXED_BASE, Pmc
from .errors import FilterError

MAX_EVENTS = 300

ALLOW = "allow"
DENY = "deny"
ACTIONS = {ALLOW: 0, DENY: 1}

# Masked-entry layout: event select 7:0 (+ 35:32 on AMD), umask match 15:8,
# exclude 55, umask mask 63:56.
UMASK_MATCH_SHIFT = 8
EXCLUDE = 1 << 55
UMASK_MASK_SHIFT = 56
UMASK_MATCH = 0xFF << UMASK_MATCH_SHIFT
UMASK_MASK = 0xFF << UMASK_MASK_SHIFT
EVENTSEL_UMASK = 0xFF00


def encode_masked_entry(event_select: int, mask: int, match: int, exclude: bool) -> int:
    """KVM_PMU_ENCODE_MASKED_ENTRY: the 64-bit form of one masked filter entry."""
    return (
        (event_select & 0xFF)
        | ((event_select & 0xF00) << 24)
        | ((mask & 0xFF) << UMASK_MASK_SHIFT)
        | ((match & 0xFF) << UMASK_MATCH_SHIFT)
        | (EXCLUDE if exclude else 0)
    )


def event_select_of(raw: int) -> int:
    """12-bit event select of an eventsel or filter entry (bits 7:0 and 35:32)."""
    return (raw & 0xFF) | ((raw >> 24) & 0xF00)


@dataclass(frozen=True, slots=True)
class _Entry:
    event_select: int
    mask: int
    match: int


@dataclass(frozen=True)
class EventFilter:
    """An installed filter. Build one with :func:`build_filter`."""

    action: str
    fixed_counter_bitmap: int
    includes: tuple[_Entry, ...]
    excludes: tuple[_Entry, ...]
    masked: bool
    nevents: int  # entries kept after KVM's silent dropping

    def allows(self, pmc: Pmc) -> bool:
        """Whether ``pmc`` may count under this filter (its current control decoded)."""
        if pmc.kind == "fixed":
            bit = (self.fixed_counter_bitmap >> (pmc.idx - FIXED_BASE)) & 1
            return bool(bit) if self.action == ALLOW else not bit
        if pmc.key is None:
            return True
        in_filter = self.matches(pmc.key[0], pmc.key[1])
        return in_filter if self.action == ALLOW else not in_filter

    def matches(self, event_select: int, umask: int) -> bool:
        """In the filter: some include entry matches and no exclude entry does."""

        def hit(entries: Iterable[_Entry]) -> bool:
            return any(
                e.event_select == event_select and (umask & e.mask) == e.match for e in entries
            )

        return hit(self.includes) and not hit(self.excludes)


def _check_abi(events: Sequence[int], fixed_counter_bitmap: int, flags: int) -> None:
    """Refuse what struct kvm_pmu_event_filter cannot carry.

    The ioctl's ``events`` are ``__u64`` and ``fixed_counter_bitmap`` and ``flags``
    are ``__u32`` (arch/x86/include/uapi/asm/kvm.h); KVM validates the words it
    receives (kvm_vm_ioctl_set_pmu_event_filter, arch/x86/kvm/pmu.c at torvalds/linux
    004a0aa56ede). A wider or negative number never reaches it: a caller converting
    it to the ABI would truncate it into another filter (0x1_0000_0000_0000_00C4
    into "0xC4", -1 into all ones), so it is refused here, naming the entry.
    """
    for i, e in enumerate(events):
        if not 0 <= int(e) < 1 << 64:
            raise FilterError("EINVAL", f"events[{i}] = {int(e):#x}: an entry is a __u64")
    if not 0 <= fixed_counter_bitmap < 1 << 32:
        raise FilterError(
            "EINVAL", f"fixed_counter_bitmap = {fixed_counter_bitmap:#x}: it is a __u32"
        )
    if not 0 <= flags < 1 << 32:
        raise FilterError("EINVAL", f"flags = {flags:#x}: it is a __u32")


def build_filter(
    *,
    action: str,
    events: Sequence[int],
    fixed_counter_bitmap: int = 0,
    masked: bool = False,
    flags: int | None = None,
    event_select_mask: int = 0xFF,
) -> EventFilter:
    """Validate and convert a filter exactly as KVM_SET_PMU_EVENT_FILTER does.

    ``event_select_mask`` is the vendor's event-select field (Intel 0xFF, AMD
    0xF_0000_00FF). ``flags`` may be given raw instead of ``masked`` (bit 0 is
    KVM_PMU_EVENT_FLAG_MASKED_EVENTS; any other bit is EINVAL).
    """
    if flags is None:
        flags = 1 if masked else 0
    _check_abi(events, fixed_counter_bitmap, flags)
    if flags & ~1:
        raise FilterError("EINVAL", f"flags {flags:#x}: only bit 0 (masked events) is defined")
    masked = bool(flags & 1)
    if len(events) > MAX_EVENTS:
        raise FilterError("E2BIG", f"{len(events)} events: at most {MAX_EVENTS} are allowed")
    if action not in ACTIONS:
        raise FilterError("EINVAL", f"action {action!r}: allowed are 'allow' and 'deny'")
    words = [int(e) for e in events]
    if masked:
        valid = event_select_mask | UMASK_MASK | UMASK_MATCH | EXCLUDE
        for w in words:
            if w & ~valid:
                raise FilterError("EINVAL", f"masked entry {w:#x} sets bits outside {valid:#x}")
    else:
        # Entries that can never match a guest event are dropped, not rejected: KVM
        # keeps that for backwards compatibility. The rest become masked entries
        # with an all-ones umask mask.
        words = [w | UMASK_MASK for w in words if not (w & ~(event_select_mask | EVENTSEL_UMASK))]
    includes: list[_Entry] = []
    excludes: list[_Entry] = []
    for w in words:
        entry = _Entry(
            event_select_of(w), (w >> UMASK_MASK_SHIFT) & 0xFF, (w >> UMASK_MATCH_SHIFT) & 0xFF
        )
        (excludes if w & EXCLUDE else includes).append(entry)
    return EventFilter(
        action=action,
        fixed_counter_bitmap=fixed_counter_bitmap,
        includes=tuple(includes),
        excludes=tuple(excludes),
        masked=masked,
        nevents=len(words),
    )
