"""A fuzzing campaign through the public API: random guest and host operations per config.

Why: the architectural rules are tested one by one; what a fuzzer adds is every
*sequence* of them a guest and a host can produce. Each episode builds a fresh
machine and drives random operations on it -- WRMSR/RDMSR to the PMU's MSRs and to
any MSR number with any 64-bit value, RDPMC with any ECX (bits 29-31 included),
retired events, CPL and CR4.PCE changes, host sched out/in, migration and time,
and snapshot -> JSON -> restore -- and checks three things after every operation:

* only :class:`~vpmu_core.errors.GuestFault` reaches the caller (the architectural
  answer), never another Python exception;
* every counter holds a value below ``2**width`` and every read is a 64-bit word;
* a *fork* (every vCPU snapshotted to JSON and restored into a fresh machine)
  continues exactly as the original: the same operations give the same answers
  and leave the same snapshots and PMIs.

A failure is shrunk by delta debugging (:mod:`.shrink`) to a minimal list of
operations and printed as Python against the public API. Everything is a function
of the seed: the same seed and budget give the same operations and the same result.
The hot loop is plain Python over tuples: no pydantic except in snapshots.
"""

from __future__ import annotations

from .campaign import Found, Report, campaign, reproducer
from .execute import HOST_STATES, Failure, Outcome, fork_of, run_ops
from .ops import FORK, Op, Target, generate, targets

__all__ = [
    "FORK",
    "HOST_STATES",
    "Failure",
    "Found",
    "Op",
    "Outcome",
    "Report",
    "Target",
    "campaign",
    "fork_of",
    "generate",
    "reproducer",
    "run_ops",
    "targets",
]
