"""The guest's perf core: a model of Linux ``kernel/events/core.c`` on each vCPU.

Why a model of perf's core and not a script of MSR writes: what a vPMU costs
under perf depends on what perf decides at run time -- which counter an event
lands on, when the multiplexer rotates, how the frequency-mode period converges,
when an event is throttled, and how a slow PMI handler makes the kernel lower
its own sample rate. Those decisions are made here, the way the kernel makes
them. The ``perf-stat`` and ``perf-record`` workloads
(:mod:`vpmu_core.workloads.perf`) describe what perf was asked to do as a
:class:`Session` and call :func:`simulate`.

Modules: :mod:`.session` (what was asked), :mod:`.event` (one event's state),
:mod:`.schedule` (counter indexes and ``x86_schedule_events``), :mod:`.throttle`
(the sample-rate limit and its auto-lowering), :mod:`.core` (``GuestPerf``:
start/stop, periods, frequency mode, tick, rotation, PMIs), :mod:`.meter`
(handler time from the one pricer), :mod:`.loop` (the per-vCPU simulation loop).
"""

from __future__ import annotations

from .core import GuestPerf
from .event import PEvent
from .loop import ProgressFn, simulate
from .result import VcpuResult
from .schedule import assign, fixed_counter, gp_indexes
from .session import GroundTruth, Session
from .throttle import SampleRateLimit

__all__ = [
    "GroundTruth",
    "GuestPerf",
    "PEvent",
    "ProgressFn",
    "SampleRateLimit",
    "Session",
    "VcpuResult",
    "assign",
    "fixed_counter",
    "gp_indexes",
    "simulate",
]
