"""The guest's sample-rate limit: throttling per tick and its auto-lowering.

Why apart from the PMI path: Linux keeps this state per CPU
(``perf_event_max_sample_rate``, ``max_samples_per_tick``,
``perf_sample_allowed_ns``, the running average of handler time) and changes it
only from ``perf_sample_event_took``; the PMI path only asks "is this interrupt
one too many this tick?".
"""

from __future__ import annotations

import math

from .event import NR_ACCUMULATED_SAMPLES, NSEC_PER_SEC


class SampleRateLimit:
    """``kernel.perf_event_max_sample_rate`` and ``perf_cpu_time_max_percent`` of one CPU."""

    __slots__ = (
        "allowed_ns",
        "hz",
        "lowered",
        "max_rate",
        "mspt",
        "percent",
        "running_len",
        "tick_ns",
    )

    def __init__(self, max_rate: int, percent: int, hz: int) -> None:
        self.hz = hz
        self.tick_ns = NSEC_PER_SEC // hz
        self.max_rate = max_rate
        self.percent = percent
        self.mspt = math.ceil(max_rate / hz)  # max_samples_per_tick
        self.allowed_ns = NSEC_PER_SEC / max_rate * percent / 100
        self.running_len = 0.0
        self.lowered = 0

    def too_many(self, interrupts: int) -> bool:
        """__perf_event_account_interrupt: Linux 4.x-6.15 checks from the second
        interrupt of a tick, with >=."""
        return bool(self.mspt) and interrupts >= self.mspt

    def took(self, ns: float) -> None:
        """perf_sample_event_took (Linux 4.x+): a running average over 128 samples;
        above the allowed time the sample rate is lowered to fit the percentage of a tick."""
        if self.allowed_ns <= 0 or not self.percent:
            return
        self.running_len += ns - self.running_len / NR_ACCUMULATED_SAMPLES
        avg = self.running_len / NR_ACCUMULATED_SAMPLES
        if avg <= self.allowed_ns:
            return
        avg += avg / 4
        budget = self.tick_ns / 100 * self.percent
        mspt = int(budget // avg) if avg < budget else 1
        self.allowed_ns = avg
        self.mspt = max(1, mspt)
        self.max_rate = self.mspt * self.hz
        self.lowered += 1
