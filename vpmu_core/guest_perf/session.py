"""What perf inside the guest was asked to do, as the engine needs it.

Why a plain value and not the workload's config: the engine sits below the
workloads (layers import downward only), so the ``perf-stat`` / ``perf-record``
workloads translate their ``[workload]`` table into a :class:`Session` and the
engine never sees a config model. The ground truth comes in the same way, as any
object with the :class:`GroundTruth` methods (the workloads pass a
:class:`~vpmu_core.workloads.profiles.Truth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class GroundTruth(Protocol):
    """Closed-form event counts of the guest's program, by elapsed guest cycles."""

    def rates(self, event: str) -> tuple[float, float]:
        """Events per user cycle and per kernel cycle."""
        ...

    def split(self, cycles: int) -> tuple[int, int]:
        """User and kernel cycles among the first ``cycles``."""
        ...

    def count(self, event: str, cycles: int, usr: bool, os: bool, qual: int = 0) -> int:
        """Events a counter with this privilege filter sees in the first ``cycles``
        (with CMASK/INV/EDGE bits ``qual``: the cycles meeting their condition)."""
        ...

    def exact(self, qual: int) -> bool:
        """Whether count() with these qualifier bits is the counter's value (not EDGE)."""
        ...

    def cycles_for(self, event: str, start: int, n: int, usr: bool, os: bool) -> int | None:
        """The fewest cycles after ``start`` in which ``n`` more events are counted."""
        ...


@dataclass(frozen=True)
class Session:
    """One ``perf stat`` or ``perf record`` invocation on every profiled vCPU.

    ``sampling`` is perf record (events sample and the PMI handler is timed);
    otherwise events count, armed at ``-max_period``. ``freq`` (``-F``) or
    ``period`` (``-c``) gives the sample period when sampling.
    """

    events: tuple[str, ...]
    truth: GroundTruth
    ghz: float
    duration_ms: float
    usr: bool = True
    os: bool = True
    sampling: bool = False
    freq: int | None = None
    period: int | None = None
    max_sample_rate: int = 100_000
    cpu_time_max_percent: int = 25
    mux_interval_ms: float | None = None
    # perf record -a enables each fd by its own ioctl (evlist__enable), so the events
    # start [guest] enable_gap_us apart; a task-attached run is enabled at exec, at once.
    # perf stat counts the same whatever the phase, so it starts together either way.
    staggered: bool = False
    # A guest mechanism that differs per vCPU (drawn from an RNG seeded by machine seed
    # and vCPU index) sets this: vCPUs are then never folded into symmetry classes
    # (workloads/symmetry.py), since identical starts no longer give identical runs.
    # None does today: every mechanism is a function of config and state.
    per_vcpu_variation: bool = False
