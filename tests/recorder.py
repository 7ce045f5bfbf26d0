"""A stand-in for a vCPU's allocator that notes which counters it is asked to reprogram.

Both vendors' tests use it to check when a control write reprograms a counter
(spec/intel.md §9, spec/amd-and-topdown.md §3.3).
"""

from __future__ import annotations

from typing import Any


class ReprogramRecorder:
    """Wraps the allocator: ``calls`` lists the PMC index of every reprogram, in order."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def reprogram(self, pmc: Any) -> None:
        self.calls.append(pmc.idx)
        self.inner.reprogram(pmc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
