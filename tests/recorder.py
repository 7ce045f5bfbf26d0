"""Stand-ins that note what the code under test asks of a vCPU.

``ReprogramRecorder`` wraps a vCPU's allocator: which counters a control write
reprograms (spec/intel.md §9, spec/amd-and-topdown.md §3.3). ``Trace`` wraps the vCPU
a guest driver drives: the exact MSR sequence of a PMI handler (amd-and-topdown.md §4).
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


class Trace:
    """The vCPU as the driver sees it, noting every WRMSR, RDMSR and RDPMC in order."""

    def __init__(self, cpu: Any) -> None:
        self.cpu = cpu
        self.ops: list[tuple[str, int, int]] = []

    def wrmsr(self, msr: int, value: int) -> None:
        self.ops.append(("W", msr, value))
        self.cpu.wrmsr(msr, value)

    def rdmsr(self, msr: int) -> int:
        value: int = self.cpu.rdmsr(msr)
        self.ops.append(("R", msr, value))
        return value

    def rdpmc(self, ecx: int) -> int:
        value: int = self.cpu.rdpmc(ecx)
        self.ops.append(("P", ecx, value))
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cpu, name)
