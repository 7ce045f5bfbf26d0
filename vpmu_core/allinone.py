"""All-in-one PMCs: one register, N host events, each counted through a view of its own.

The vCPU's matcher finds counters by ``key``; an all-in-one PMC has N keys, so it
keeps ``key = None`` (it never matches itself) and lends the matcher one *view*
per event (``vcpu.views``). A view is a :class:`Pmc` that owns no index: its
control state is read through from the PMC when the matcher is rebuilt, and its
``advance`` counts into the PMC's own state. ``retire`` therefore walks the same
cached list it always did, with one extra step per counted event.

How a view counts (bits spliced into the register, or a hidden count the register
is derived from) is the subclass's: the grouped extension's declared counters and
Intel's PERF_METRICS both build on the classes here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from .counters import EventKey, Pmc

INDEX_BASE = 48
"""All-in-one PMCs take indices 48 and up, past the 16 fixed ones (32 + 16): Linux's
INTEL_PMC_IDX_METRIC_BASE, where Intel's PERF_METRICS sits."""
MAX_INDEX = 63
"""An all-in-one PMC's overflow is the status bit at its index: the index fits 64 bits."""

VMWARE_BACKDOOR_PMCS = range(0x10000, 0x10003)
"""RDPMC ECX KVM answers itself on any vendor with enable_vmware_backdoor (spec intel.md §7)."""


def backdoor_rdpmc(ecx: int) -> str | None:
    """What an RDPMC ECX is on every vendor: a VMware backdoor pseudo-PMC, or free."""
    if ecx in VMWARE_BACKDOOR_PMCS:
        return f"KVM's VMware backdoor pseudo-PMC {ecx:#x}"
    return None


@dataclass(frozen=True)
class AllInOneRoom:
    """Where a vendor lets an all-in-one counter sit without meeting its architecture.

    Why: the counter's overflow is the status bit at its index and its RDPMC ECX is
    answered beside the vendor's own, so an index or ECX the architecture (or the
    guest's driver) gives a meaning would lose or misread overflows, or shadow a
    real counter. ``indexes`` are the free ones in the order defaults take them;
    ``taken`` says what uses an index for the error; ``rdpmc_taken`` says what an
    ECX is, or None when it is free; ``rdpmc_allowed`` says the free ECX values.
    """

    indexes: tuple[int, ...] = tuple(range(INDEX_BASE, MAX_INDEX + 1))
    taken: Mapping[int, str] = field(default_factory=dict)
    rdpmc_taken: Callable[[int], str | None] = backdoor_rdpmc
    rdpmc_allowed: str = "any ECX but 0x10000-0x10002"

    def allowed(self) -> str:
        """The free indexes, runs folded: ``56-57, 49-53``."""
        runs: list[list[int]] = []
        for i in self.indexes:
            if runs and i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _owners(flag: str) -> Any:
    """A view's control flag: the owner's, read through; writes to the view are dropped."""

    def drop(view: View, value: bool) -> None:
        return None

    return property(attrgetter(f"owner_pmc.{flag}"), drop, doc=f"the owner PMC's ``{flag}``")


class View(Pmc):
    """A counting face of an all-in-one PMC, for the vCPU's matcher.

    Its control state reads through to the owner, so a filter change or a host
    group failure on the owner reaches every field without copying; the matcher
    reads it only when its cache was dropped, never per event.
    """

    __slots__ = ("owner_pmc",)

    def __init__(self, owner: AllInOnePmc, name: str, width: int) -> None:
        self.owner_pmc = owner
        super().__init__(owner.idx, "view", width, name=name, owner=owner.owner)

    def counts_at(self, user: bool) -> bool:
        """The owner's verdict: what the matcher asks (compiled code reads no property)."""
        return self.owner_pmc.counts_at(user)

    # The owner's control flags, for interpreted readers; a write to a view's copy is
    # dropped. ``running``: the host scheduled the whole group in (host.py).
    counting = property(lambda self: self.owner_pmc.counting, doc="the owner PMC's ``counting``")
    os = _owners("os")
    usr = _owners("usr")
    local_en = _owners("local_en")
    global_en = _owners("global_en")
    allowed = _owners("allowed")
    running = _owners("running")
    intr = _owners("intr")


class AllInOnePmc(Pmc):
    """A PMC backed by a perf group: ``max_nr_events`` = view count, one host slot each.

    Slot 0 is the group leader and the source of the PMC's value (what a host
    read of the group returns first); the others are its siblings.
    """

    __slots__ = ("keys", "views")

    views: list[View]

    def __init__(
        self, idx: int, width: int, *, name: str, nr_events: int, kind: str = "grouped"
    ) -> None:
        super().__init__(idx, kind, width, name=name, max_nr_events=nr_events)
        self.keys: list[EventKey | None] = [None] * nr_events
        self.views = []

    def bind_keys(self, keys: list[EventKey]) -> None:
        """Give each view its event (resolved once the backend's event table exists)."""
        self.keys = list(keys)
        for view, key in zip(self.views, keys, strict=True):
            view.key = key

    def events_to_overflow(self) -> int:
        return min(v.events_to_overflow() for v in self.views)

    def parts(self) -> list[tuple[str, int]]:
        return [(v.name, v.read()) for v in self.views]
