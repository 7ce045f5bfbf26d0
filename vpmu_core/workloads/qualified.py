"""Ground truth of CMASK/INV/EDGE counters: closed forms of qualifiers.py's spread.

Why a second formulation rather than calling ``Qualifier.count``: a truth computed
by the code under test cannot catch that code's bugs. Here the same documented
model (n events over C cycles: the first ``n - k*C`` cycles carry ``k + 1`` events,
the others ``k``, with ``k = n // C``) is read as *thresholds*, not as a per-run
test of the condition:

    cycles with >= c events = C                  if c <= k
                            = n - k*C            if c == k + 1
                            = 0                  otherwise
    INV (c > 0)             = C - the above

EDGE is a count of runs, so it depends on where the calls cut the cycles (the
spread restarts, fuller cycles first, at every call): ``edges`` walks a known call
sequence run by run, and ``repeated`` takes a sequence repeated m times in O(1)
(after one pass the detector's state is what the last non-empty run left, so every
later pass adds the same edges).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..qualifiers import qualifier_of

Call = tuple[int, int]  # (events, cycles) of one retire call


def decode(qual: int) -> tuple[int, bool, bool]:
    """(threshold, invert, edge) as the counter applies them, read by the counters' own
    decode (qualifiers.qualifier_of); plain counting is threshold 0."""
    q = qualifier_of(qual)
    return (0, False, False) if q is None else (q.threshold, q.invert, q.edge)


def cycles_meeting(n: int, cycles: int, threshold: int, invert: bool) -> int:
    """Cycles of one call whose events meet the condition (threshold 0: every event)."""
    if threshold == 0:
        return n
    if cycles <= 0:
        return 0
    k = n // cycles
    if threshold <= k:
        ge = cycles
    elif threshold == k + 1:
        ge = n - k * cycles
    else:
        ge = 0
    return cycles - ge if invert else ge


def _runs(n: int, cycles: int, threshold: int, invert: bool) -> list[bool]:
    """The condition's value on each run of equal cycles of one call, in order."""
    if cycles <= 0:
        return []
    k = n // cycles
    fuller = n - k * cycles
    lengths = ((fuller, k + 1), (cycles - fuller, k))
    return [(e < threshold if invert else e >= threshold) for length, e in lengths if length]


def edges(calls: Sequence[Call], threshold: int, invert: bool, state: bool) -> tuple[int, bool]:
    """Rising edges over ``calls`` from detector state ``state``, and the state after."""
    count = 0
    for n, c in calls:
        for holds in _runs(n, c, threshold, invert):
            count += holds and not state
            state = holds
    return count, state


def repeated(
    calls: Sequence[Call], times: int, threshold: int, invert: bool, state: bool
) -> tuple[int, bool]:
    """``edges`` of ``calls`` repeated ``times`` times, in two passes."""
    if times <= 0:
        return 0, state
    first, state = edges(calls, threshold, invert, state)
    if times == 1:
        return first, state
    again, state = edges(calls, threshold, invert, state)
    return first + (times - 1) * again, state


def qualified(calls: Sequence[tuple[int, Sequence[Call]]], qual: int) -> int:
    """What a counter with qualifier bits ``qual`` counts over ``calls``: segments of
    (times, the calls one repetition makes), from a deasserted edge detector."""
    threshold, invert, edge = decode(qual)
    if edge:
        total, state = 0, False
        for times, seq in calls:
            got, state = repeated(seq, times, threshold, invert, state)
            total += got
        return total
    return sum(
        times * sum(cycles_meeting(n, c, threshold, invert) for n, c in seq) for times, seq in calls
    )
