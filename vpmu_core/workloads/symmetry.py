"""Symmetry classes: vCPUs provably identical for a whole run, simulated once.

Why it is exact: the guest perf engine is deterministic -- every decision is a
function of the config, the vCPU's own state, its pCPU's host state and guest
time, never of the vCPU's index or of wall time (the agreed engine shape: a
mechanism that must differ per vCPU says so through ``Session.per_vcpu_variation``
or the strategy's ``symmetric`` attribute). Two vCPUs that start in the same
state, on pCPUs in the same state, and that nothing couples, therefore go through
the same sequence of states: one of them is simulated, and its results and its
ledger delta are counted for every member of its class.

What couples vCPUs, and so forbids the shortcut, is exactly what forbids running
them in separate machines (:func:`.parallel.can_shard`): a shared pCPU (two
vCPUs compete for its counters, time slicing alternates them) and a migration (a
host event moves to another pCPU mid-run). The host-wide ``perf_sched_events``
key is settled by :mod:`.parallel` (paid once; a unit whose events all went away
mid-run makes the whole run fall back to full simulation). Host events that
differ per pCPU show up in the start-state comparison (every pCPU's events are
part of its vCPU's fingerprint). So the class split is decided once, at the
start, from a state comparison; nothing asymmetric can happen mid-run once
those conditions hold (host boundaries -- ticks, mux rotation, slice ends -- hit
every pCPU alike), so no class is split mid-run: where one could be, the shortcut
is not taken at all and the run is simulated in full.

The fingerprint compares: the vCPU's snapshot (every guest-visible register and
every component's saved state), its CPUID leaves, its allocator and PMI path
types, its pCPU's host events and its thread's task events (config, constraint,
pinning, owner, whether running and on which counter, grouping, which guest
counter they back), whether its thread runs and how long it waited, and its
pCPU's masked counters, rotation and hardware registers. A pCPU with another
vCPU's thread queued on it or another vCPU's event makes the vCPU ``coupled``
(a class of its own), even where :func:`.parallel.can_shard` already said no.
tests/test_symmetry.py runs the shortcut against the full simulation over
strategies x event counts x backends x host contention and requires the whole
result to be equal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .parallel import can_shard

if TYPE_CHECKING:
    from ..machine import Machine


def _events(events: list[Any], groups: dict[int, int]) -> list[Any]:
    return [
        [
            e.config,
            e.paused,
            e.pinned,
            e.constraint,
            e.owner,
            e.running,
            e.counter,
            groups.setdefault(e.group, len(groups)),
            None if e.pmc is None else e.pmc.idx,
        ]
        for e in events
    ]


def fingerprint(machine: Machine, index: int) -> str:
    """Everything about vCPU ``index``, its thread and its pCPU that its run depends on,
    as text; ``coupled:<index>`` when another vCPU shares that pCPU."""
    v = machine.vcpus[index]
    host = machine.host
    cpu = host.pcpus[host.pcpu_of(v)]
    if not host.alone(v):  # another thread or vCPU's event on its pCPU, or migrations
        return f"coupled:{index}"
    groups: dict[int, int] = {}
    state = [
        v.snapshot().model_dump(mode="json"),
        sorted(v.cpuid_leaves.items()),
        type(v.allocator).__qualname__,
        type(v.pmi_path).__qualname__,
        _events(cpu.events, groups),
        # the thread's task context (guest-backing events) and whether it runs now
        _events(host.tasks.get(index, []), groups),
        [host.on_cpu(v), host.off_cpu_ns(v)],
        [cpu.masked_gp, cpu.masked_fixed, cpu.rotation, sorted(cpu.hw.items())],
    ]
    return json.dumps(state, sort_keys=True, default=repr)


def symmetric_classes(
    machine: Machine, vcpus: list[int], per_vcpu_variation: bool = False
) -> list[list[int]] | None:
    """``vcpus`` split into classes of identical vCPUs (each in vCPU order), or None
    when the shortcut may not be taken (something couples them or varies per vCPU)."""
    if per_vcpu_variation or not machine.strategy.symmetric:
        return None
    if len(vcpus) < 2 or not can_shard(machine, vcpus):
        return None
    classes: dict[str, list[int]] = {}
    for i in vcpus:
        classes.setdefault(fingerprint(machine, i), []).append(i)
    return sorted(classes.values())


__all__ = ["fingerprint", "symmetric_classes"]
