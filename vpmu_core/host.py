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
