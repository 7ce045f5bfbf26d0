"""All-in-one PMCs: one register, N fields, each counted through a view of its own.

The vCPU's matcher finds counters by ``key``; an all-in-one PMC has N keys, so it
keeps ``key = None`` (it never matches itself) and lends the matcher one *view*
per field (``vcpu.views``). A view is a :class:`Pmc` that owns no index: its
control state is read through from the PMC when the matcher is rebuilt, and its
``advance`` adds straight into the PMC's bits. ``retire`` therefore walks the same
cached list it always did, with one extra shift per counted field.

The register value is the single source of truth (the fields are spliced in it),
so core RESET, snapshot and restore handle a grouped PMC like any other.
"""

from __future__ import annotations

from vpmu_core.counters import EventKey, Pmc

from .config import CounterConfig


class _View(Pmc):
    """A counting face of an all-in-one PMC, for the vCPU's matcher.

    Its control state reads through to the owner, so a filter change or a host
    group failure on the owner reaches every field without copying; the matcher
    reads it only when its cache was dropped, never per event.
    """

    __slots__ = ("owner_pmc",)

    def __init__(self, owner: GroupedPmc, name: str, width: int) -> None:
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


class FieldView(_View):
    """Field ``i`` of a spliced register: counts in its own bits, wraps inside them."""

    __slots__ = ("clear", "fmask", "shift")

    def __init__(self, owner: GroupedPmc, name: str, offset: int, width: int) -> None:
        super().__init__(owner, name, width)
        self.shift = offset
        self.fmask = (1 << width) - 1
        self.clear = owner.mask & ~(self.fmask << offset)

    def advance(self, n: int) -> None:
        o = self.owner_pmc
        v = o.value
        new = ((v >> self.shift) & self.fmask) + n
        if new > self.fmask:
            o.value = (v & self.clear) | ((new & self.fmask) << self.shift)
            o.overflow(o)
        else:
            o.value = (v & self.clear) | (new << self.shift)

    def read(self) -> int:
        value: int = self.owner_pmc.value
        return (value >> self.shift) & self.fmask

    def events_to_overflow(self) -> int:
        return self.fmask + 1 - self.read()


# The control register of a config-declared all-in-one counter (the fixed counters'
# field layout): bit 0 OS, bit 1 USR, bit 3 PMI.
CTRL_OS = 1
CTRL_USR = 2
CTRL_PMI = 8
CTRL_WRITABLE = CTRL_OS | CTRL_USR | CTRL_PMI


class GroupedPmc(Pmc):
    """A PMC backed by a perf group: ``max_nr_events`` = field count, one host slot each.

    Slot 0 is the group leader and the source of the PMC's value (what a host
    read of the group returns first); the others are its siblings.
    """

    __slots__ = ("keys", "views")

    views: list[_View]

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

    def set_control(self, value: int) -> None:
        """Store and decode the control register (a guest write, a restore, a reset)."""
        self.control = value
        self.os = bool(value & CTRL_OS)
        self.usr = bool(value & CTRL_USR)
        self.local_en = bool(value & (CTRL_OS | CTRL_USR))
        self.intr = bool(value & CTRL_PMI)

    def reset(self) -> None:
        super().reset()
        self.set_control(0)


def generic_pmc(idx: int, cfg: CounterConfig) -> GroupedPmc:
    """The all-in-one counter a ``[[grouped.counters]]`` entry declares."""
    pmc = GroupedPmc(idx, cfg.width, name=cfg.name, nr_events=len(cfg.fields))
    pmc.views = [FieldView(pmc, f"{cfg.name}.{f.label}", f.offset, f.width) for f in cfg.fields]
    return pmc


def field_values(pmc: GroupedPmc) -> list[int]:
    """The fields of one read, in declaration order."""
    return [v.read() for v in pmc.views]
