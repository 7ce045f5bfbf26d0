"""Host-side objects a strategy backs guest counters with.

A :class:`HostEvent` stands for one host perf event (``perf_event_create_kernel_counter``):
the config it was created with and whether it is paused. A PMC's ``host_events``
flex array holds one per slot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class HostEvent:
    config: int
    paused: bool = False
    cpu: int = 0


def allocate_group(free: int, members: int) -> bool:
    """Whether a perf group of ``members`` events fits ``free`` host counters.

    The host perf scheduler places a group all-or-nothing (group_sched_in in
    kernel/events/core.c): a group that does not fit gets no counter at all.
    """
    return 0 <= members <= free


class HostCounterPool:
    """The host counters left for guest groups: reserved and returned all-or-nothing."""

    __slots__ = ("free", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total

    def reserve(self, members: int) -> bool:
        if not allocate_group(self.free, members):
            return False
        self.free -= members
        return True

    def give_back(self, members: int) -> None:
        self.free = min(self.total, self.free + members)
