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

from .counters import EventKey, Pmc

INDEX_BASE = 48
"""All-in-one PMCs take indices 48 and up, past the 16 fixed ones (32 + 16): Linux's
INTEL_PMC_IDX_METRIC_BASE, where Intel's PERF_METRICS sits."""


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

    @property  # type: ignore[override]
    def os(self) -> bool:
        return self.owner_pmc.os

    @os.setter
    def os(self, value: bool) -> None:
        return None

    @property  # type: ignore[override]
    def usr(self) -> bool:
        return self.owner_pmc.usr

    @usr.setter
    def usr(self, value: bool) -> None:
        return None

    @property  # type: ignore[override]
    def local_en(self) -> bool:
        return self.owner_pmc.local_en

    @local_en.setter
    def local_en(self, value: bool) -> None:
        return None

    @property  # type: ignore[override]
    def global_en(self) -> bool:
        return self.owner_pmc.global_en

    @global_en.setter
    def global_en(self, value: bool) -> None:
        return None

    @property  # type: ignore[override]
    def allowed(self) -> bool:
        return self.owner_pmc.allowed

    @allowed.setter
    def allowed(self, value: bool) -> None:
        return None

    @property  # type: ignore[override]
    def running(self) -> bool:
        """The host scheduled the whole group in (all-or-nothing, host.py)."""
        return self.owner_pmc.running

    @running.setter
    def running(self, value: bool) -> None:
        return None

    @property  # type: ignore[override]
    def intr(self) -> bool:
        return self.owner_pmc.intr

    @intr.setter
    def intr(self, value: bool) -> None:
        return None


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
