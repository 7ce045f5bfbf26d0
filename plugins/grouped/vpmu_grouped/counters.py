"""The grouped extension's all-in-one PMCs: one register, N fields spliced in it.

Each field is a :class:`~vpmu_core.allinone.View` that counts in its own bits
of the register (``FieldView``). The register value is the single source of truth,
so core RESET, snapshot and restore handle a grouped PMC like any other.
"""

from __future__ import annotations

from vpmu_core.allinone import AllInOnePmc, View

from .config import CounterConfig


class FieldView(View):
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


class GroupedPmc(AllInOnePmc):
    """A declared all-in-one counter: its fields and a control register of its own."""

    __slots__ = ()

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
