"""Delta debugging: the smallest list of operations that still fails the same way.

Zeller's ddmin over the list (split in n chunks, try each chunk and each complement,
refine), then single removals until no operation can go (1-minimal). ``fails`` is
the only oracle; a time budget bounds the search, and whatever was reached is
returned, still failing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool], seconds: float = 60.0) -> list[T]:
    """A sublist of ``items`` (order kept) for which ``fails`` holds, as small as found."""
    deadline = time.monotonic() + seconds
    current = list(items)
    n = 2
    while len(current) >= 2 and time.monotonic() < deadline:
        size = -(-len(current) // n)
        chunks = [current[i : i + size] for i in range(0, len(current), size)]
        reduced = False
        for i, chunk in enumerate(chunks):
            complement = [x for j, c in enumerate(chunks) if j != i for x in c]
            if fails(chunk):
                current, n, reduced = chunk, 2, True
                break
            if len(chunks) > 2 and fails(complement):
                current, n, reduced = complement, max(n - 1, 2), True
                break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), 2 * n)
    i = 0
    while i < len(current) and time.monotonic() < deadline:
        candidate = current[:i] + current[i + 1 :]
        if candidate and fails(candidate):
            current = candidate
        else:
            i += 1
    return current
