"""One perf event in the guest: the ``struct hw_perf_event`` state that matters.

Why its own module: the scheduler, the start/stop paths, the tick and the
result rows all read and write these fields; keeping the state apart from the
code that drives it lets each of those modules stay small.
"""

from __future__ import annotations

from ..events import EventSpec

NSEC_PER_SEC = 1_000_000_000
NR_ACCUMULATED_SAMPLES = 128  # kernel/events/core.c
MAX_INTERRUPTS = -1  # hwc->interrupts while throttled


class PEvent:
    """One event: its counter, period state, throttling state and the accounting."""

    __slots__ = (
        "count",
        "enabled_cycles",
        "fixed",
        "freq",
        "freq_count_stamp",
        "freq_time_stamp",
        "gp_ok",
        "idx",
        "interrupts",
        "interrupts_seq",
        "key",
        "label",
        "last_period",
        "lost_throttled",
        "n",
        "name",
        "os",
        "period_left",
        "prev_raw",
        "reloaded",
        "run_mark",
        "run_since",
        "running_cycles",
        "sample_period",
        "samples",
        "sampling",
        "stopped",
        "throttled_at",
        "throttled_cycles",
        "throttled_since",
        "truth_running",
        "uptodate",
        "usr",
    )

    def __init__(
        self, n: int, spec: EventSpec, fixed: int | None, label: str = "", gp_ok: bool = True
    ) -> None:
        self.n = n
        self.name = spec.base  # what retires and has a rate (no qualifiers)
        self.key = spec  # what the driver programs, qualifier bits included
        self.label = label or spec.name  # as perf was asked for it
        self.fixed = fixed  # the index (32 + j) of the fixed counter that counts it, if any
        self.gp_ok = gp_ok  # False: only its fixed counter counts it (Intel ref-cycles)
        self.usr = self.os = True
        self.sampling = False
        self.freq = 0
        self.sample_period = 0
        self.last_period = 0
        self.period_left = 0
        self.idx: int | None = None  # the PMC index it runs on now
        self.prev_raw = 0
        self.count = 0
        self.running_cycles = 0
        self.enabled_cycles = 0
        self.run_since = 0
        self.freq_time_stamp = 0
        self.freq_count_stamp = 0
        self.interrupts = 0
        self.interrupts_seq = -1
        self.stopped = True  # not counting (never started, stopped, throttled)
        self.uptodate = True  # count folded since the last stop
        self.throttled_at = 0
        self.samples = 0
        self.reloaded = False
        self.truth_running = 0  # ground-truth events while it counted
        self.run_mark = 0  # the ground truth when it last started counting
        self.lost_throttled = 0  # ground-truth events while throttled
        self.throttled_cycles = 0  # guest cycles spent throttled
        self.throttled_since = 0
