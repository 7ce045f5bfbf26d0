"""Host perf events: what host perf schedules onto a pCPU's counters.

A data module of its own because strategies hold these (the events backing their
guest counters) and the port names them, while only the host model schedules them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GUEST = "guest"
WATCHDOG = "watchdog"
PROFILER = "host-perf"
# Linux's topdown metric events live on PERF_METRICS behind the slots leader
# (pseudo counter indices 48-55, spec amd-and-topdown.md §7.2): they take no counter.
METRICS = "metrics"
# Linux's topdown slots event: fixed counter 3 only, never extended to a GP counter
# (intel_pmu_check_event_constraints skips INTEL_PMC_MSK_TOPDOWN, torvalds/linux 4383cfa18c5b).
SLOTS = "fixed-only:3"


@dataclass(slots=True, eq=False)
class HostEvent:
    """One host perf event (``perf_event_create_kernel_counter`` or a host tool's).

    ``constraint`` names the hardware counters it may occupy: ``"gp"`` any GP
    counter, ``"fixed:N"`` fixed counter N or any GP counter, ``"fixed-only:N"``
    fixed counter N alone (:data:`SLOTS`), :data:`METRICS` no counter (a topdown
    metric read from PERF_METRICS behind its slots leader). ``cpu`` is where the
    event last ran (perf's ``oncpu``); ``running`` whether it holds a counter now;
    ``paused``: perf_event_pause'd (state OFF, no counter); ``denied``: the last
    scheduling of it, enabled and with its thread running, found no counter (what
    the ledger's contention counts follow).
    """

    config: int
    paused: bool = False
    cpu: int = 0  # the pCPU KVM created or last reprogrammed it for (what the skip compares)
    home: int = 0  # the pCPU its context is on now (a task event's: where its thread is)
    pinned: bool = True
    constraint: str = "gp"
    owner: str = GUEST
    running: bool = True
    denied: bool = False
    paused_at: int = -1  # its pCPU's schedule count when paused while holding a counter
    last_counter: str | None = None  # the counter it held then
    counter: str | None = None
    group: int = 0
    pmc: Any = None
    vcpu: Any = None
    # ``constraint`` parsed once (host perf reschedules an event many times): the
    # fixed counter it may take (-1: none), whether a GP counter will do, whether it
    # is a topdown metric
    fixed: int = field(init=False, default=-1)
    gp_ok: bool = field(init=False, default=True)
    metric: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        constraint = self.constraint
        if constraint == METRICS:
            self.metric, self.gp_ok = True, False
        elif constraint.startswith(("fixed:", "fixed-only:")):
            self.fixed = int(constraint.partition(":")[2])
            self.gp_ok = constraint.startswith("fixed:")
