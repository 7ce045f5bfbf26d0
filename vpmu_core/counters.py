"""The PMC objects: one index space, GP 0-31 and fixed 32+, as KVM keeps them.

A PMC holds its value, width and control state, plus a flex array of host-event
slots (``host_events``): one slot for a normal counter, N for a grouped all-in-one
counter. The vCPU's event matcher reads the decoded control fields (``key``, ``os``,
``usr``, ``local_en``, ``global_en``, ``allowed``) and never the raw registers, so the
backend decodes a control write once and counting stays a list walk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mypy_extensions import mypyc_attr

from .qualifiers import Qualifier

GP_BASE = 0
FIXED_BASE = 32

EventKey = tuple[int, int]
"""``(event_select, umask)``; the event select is 12 bits wide (AMD bits 35:32 on top)."""


def _no_overflow(pmc: Pmc) -> None:  # replaced when a vCPU binds the counter
    return None


@mypyc_attr(allow_interpreted_subclasses=True)
class Pmc:
    """A performance-monitoring counter as the guest sees it.

    Compiled with the engine; extensions subclass it from interpreted code, which may
    override its methods but not shadow its attributes with properties (compiled code
    reads them directly): a counter whose flags live elsewhere says so in
    :meth:`counts_at`, which is all the matcher asks.
    """

    __slots__ = (
        "allowed",
        "control",
        "edge_state",
        "global_en",
        "host_events",
        "idx",
        "intr",
        "key",
        "kind",
        "local_en",
        "mask",
        "max_nr_events",
        "name",
        "os",
        "overflow",
        "owner",
        "qual",
        "running",
        "usr",
        "value",
        "width",
    )

    def __init__(
        self,
        idx: int,
        kind: str,
        width: int,
        *,
        name: str | None = None,
        key: EventKey | None = None,
        max_nr_events: int = 1,
        owner: str = "",
    ) -> None:
        self.idx = idx
        self.kind = kind  # "gp" | "fixed" | an extension's own kind
        self.name = name or (f"gp{idx}" if kind == "gp" else f"fixed{idx - FIXED_BASE}")
        self.width = width
        self.mask = (1 << width) - 1
        self.value = 0
        self.control = 0
        self.key = key
        # CMASK/INV/EDGE of the event select (qualifiers.py); None counts plainly. A
        # qualified counter is counted on the vCPU's separate path, never by advance().
        self.qual: Qualifier | None = None
        self.edge_state = False  # EDGE: the condition held in the last cycle counted
        self.os = False
        self.usr = False
        self.local_en = False
        self.global_en = True
        self.allowed = True
        self.running = True  # False while host perf has the backing event scheduled out
        self.intr = False
        self.max_nr_events = max_nr_events
        self.host_events: list[Any] = [None] * max_nr_events
        self.overflow: Callable[[Pmc], None] = _no_overflow
        self.owner = owner

    @property
    def counting(self) -> bool:
        """Counts iff locally and globally enabled and allowed by the event filter."""
        return self.local_en and self.global_en and self.allowed

    def counts_at(self, user: bool) -> bool:
        """Counts now at user (``user``) or kernel level: enabled locally and globally,
        allowed by the event filter, backed by a running host event, filtering that level."""
        return (
            self.local_en
            and self.global_en
            and self.allowed
            and self.running
            and (self.usr if user else self.os)
        )

    def advance(self, n: int) -> None:
        """Add ``n`` events; a wrap past all-ones is an overflow (exactly, at ``mask + 1``)."""
        v = self.value + n
        if v > self.mask:
            self.value = v & self.mask
            self.overflow(self)
        else:
            self.value = v

    def read(self) -> int:
        return self.value

    def write(self, value: int) -> None:
        self.value = value & self.mask

    def reset(self) -> None:
        """vCPU RESET of what the counter itself holds; the backend resets its registers.

        An extension's counter with state of its own (a control register, hidden
        sub-counts) overrides this, so ``Vcpu.reset`` needs no knowledge of it.
        """
        self.value = 0
        self.edge_state = False

    def events_to_overflow(self) -> int:
        """How many more events until the next wrap; the engine steps straight to it."""
        return self.mask + 1 - self.value

    def host_constraints(self) -> list[str] | None:
        """Per host-event slot, which host counters may back it (None: by ``kind``)."""
        return None

    def host_leader(self) -> Pmc | None:
        """The PMC whose first host event leads this one's perf group (None: its own).

        Why: Intel's topdown metrics are members of the slots event's group, which
        backs fixed counter 3; they are never a group of their own.
        """
        return None

    def parts(self) -> list[tuple[str, int]]:
        """Named parts of one read, for reports: none for a plain counter."""
        return []

    def save(self) -> dict[str, Any]:
        # The edge detector's state is saved only when set, so a snapshot of a PMU
        # that never used EDGE keeps its old shape.
        return {"value": self.value, "edge": True} if self.edge_state else {"value": self.value}

    def load(self, state: dict[str, Any]) -> None:
        self.value = int(state["value"]) & self.mask
        self.edge_state = bool(state.get("edge", False))

    def __repr__(self) -> str:
        return f"<Pmc {self.name} idx={self.idx} value={self.value:#x} counting={self.counting}>"
