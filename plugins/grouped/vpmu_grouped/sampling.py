"""The saving the grouped-events RFC was written for, measured on the model.

A guest samples N events every millisecond for one second (1000 samples). With
N separate counters each sample is N RDPMCs; with one all-in-one counter holding
the N events in 8-bit fields it is one RDPMC, the fields split in the guest. Under
the ``emulated`` strategy every RDPMC is a VM exit, so reads and exits fall by N.
Both runs reconstruct the same totals, which the result carries as a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vpmu_core.machine import Machine
from vpmu_core.plugins import PluginManager

EVENTS = (
    "cycles",
    "branches",
    "branch-misses",
    "cache-references",
    "cache-misses",
    "bus-cycles",
    "topdown-bad-spec",
    "topdown-retiring",
)
SAMPLES = 1000  # one per millisecond for one second
FIELD_BITS = 8
GROUP_MSR = 0x4000_0000  # a free MSR index for the declared counter
GROUP_CTRL_MSR = 0x4000_0001
GROUP_RDPMC = 1 << 28


@dataclass(frozen=True)
class SamplingCost:
    mode: str
    events: int
    samples: int
    guest_reads: int
    vm_exits: int
    totals: tuple[int, ...]


def per_ms(i: int) -> int:
    """Events of kind ``i`` per millisecond: distinct and below 2**FIELD_BITS, so 8-bit
    fields sampled every millisecond lose nothing."""
    return (37 * (i + 1)) % 250 + 1


def _machine(n: int, mode: str, plugins: PluginManager | None) -> Machine:
    data: dict[str, Any] = {
        "machine": {"name": f"sampling-{mode}-{n}"},
        "pmu": {"backend": "intel", "version": 2, "gp_counters": 8},
        "strategy": {"name": "emulated"},
    }
    if mode == "grouped":
        data["extensions"] = ["grouped"]
        data["grouped"] = {
            "counters": [
                {
                    "name": "sampler",
                    "msr": GROUP_MSR,
                    "ctrl_msr": GROUP_CTRL_MSR,
                    "rdpmc": GROUP_RDPMC,
                    "width": FIELD_BITS * n,
                    "fields": [
                        {"event": e, "offset": FIELD_BITS * i, "width": FIELD_BITS}
                        for i, e in enumerate(EVENTS[:n])
                    ],
                }
            ]
        }
    return Machine.from_dict(data, plugins)


def sample(
    n: int, mode: Literal["grouped", "separate"], plugins: PluginManager | None = None
) -> SamplingCost:
    """Sample ``n`` events every millisecond for one second; count reads and exits."""
    if not 1 <= n <= len(EVENTS):
        raise ValueError(f"n = {n}: must be 1..{len(EVENTS)}")
    machine = _machine(n, mode, plugins)
    cpu = machine.vcpus[0]
    drv = machine.guest_driver(cpu)
    events = EVENTS[:n]
    if mode == "grouped":
        cpu.wrmsr(GROUP_CTRL_MSR, 0b11)  # OS + USR
    else:
        for i, e in enumerate(events):
            drv.program_gp(i, drv.gp_key(e), usr=True, os=True)
    totals = [0] * n
    last = [0] * n
    fmask = (1 << FIELD_BITS) - 1
    exits = machine.ledger.exits
    exits0 = exits["rdpmc"]  # the exits the reads cause; field wraps add host-PMI exits
    reads = 0
    for _ in range(SAMPLES):
        for i, e in enumerate(events):
            cpu.retire(e, per_ms(i))
        if mode == "grouped":
            value = cpu.rdpmc(GROUP_RDPMC)
            reads += 1
            now = [(value >> (FIELD_BITS * i)) & fmask for i in range(n)]
            for i in range(n):
                totals[i] += (now[i] - last[i]) & fmask
        else:
            now = []
            for i in range(n):
                now.append(cpu.rdpmc(i))
                reads += 1
            for i in range(n):
                totals[i] += now[i] - last[i]
        last = now
    return SamplingCost(mode, n, SAMPLES, reads, exits["rdpmc"] - exits0, tuple(totals))
