"""Simulating vCPUs that cannot interact in machines of their own: shards and classes.

Why it is safe only sometimes: vCPUs interact through the host -- two vCPUs on one
pCPU compete for its counters, a migration moves host events between pCPUs, and
the host-wide ``perf_sched_events`` key makes the *first* perf event creation on
the whole host pay an RCU grace period. :func:`can_shard` allows separate machines
only when the first two cannot happen: the strategy declares ``shardable`` (its
vCPUs share nothing outside the host model) and every vCPU has a pCPU of its own
for the whole run.

The key: where a host event that predates the VM holds it, nobody pays. Where
none does and the strategy creates host events (``creates_host_events``), in the
full run the first vCPU to start pays once, at its start (outside any PMI
handler, so no guest time depends on who pays), and the key then stays on as
long as some guest event exists. Each unit's machine therefore starts with the
key held by a stand-in for the other vCPUs (``sched_count`` one up), so no unit
pays; the parent counts the one payment if any unit created an event. That is
exact only if no unit's own events ever all went away mid-run (the key could
then have gone off in the full run, and a later creation paid again): a unit
watches for it, and if it happened the parent throws the units away and
simulates every vCPU in full, serially -- the automatic fallback. The host-wide
``pmc_refcount`` crosses zero at the same two points (the first creation reserves
every CPU's DS buffers, the last release frees them): the stand-in holds it too, the
parent counts the reservation once, and frees the buffers at its own teardown when
every unit gave all of its events back at its teardown, as the full run's did.

A *unit* is a set of vCPUs simulated together in a machine built from the same
config; it returns their results and its ledger delta, which counts ``times``
times (1 for a shard; the class size for a symmetry class, :mod:`.symmetry`). The
unit's machine runs only its vCPUs' pCPUs (``Host.owned``: each pCPU's mux
rotations are counted by one machine) and tears down and finishes only its own
vCPUs (``Machine.settled``); the parent runs the host for what no unit holds
(pCPUs without a profiled vCPU, vCPUs that are not profiled) and settles the
profiled vCPUs' teardown as done. Deltas are integers summed per key, so serial,
any number of workers and any class split give the identical result
(tests/test_symmetry.py).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from dataclasses import astuple
from typing import TYPE_CHECKING, Any

from ..guest_perf import ProgressFn, VcpuResult
from ..ledger import CATEGORIES, ledger_delta
from ..machine import Machine
from ..pmis import Pmi

if TYPE_CHECKING:
    from ..plugins import PluginManager

    SimulateFn = Callable[[Machine, list[int], ProgressFn | None], list[VcpuResult]]

Unit = tuple[list[int], int]  # the vCPUs simulated together, how often their delta counts
# results, ledger delta, whether the key stood in, the unit's own hardware events left
# after its teardown, the last PMIs of each vCPU simulated
UnitOut = tuple[
    list[dict[str, Any]],
    dict[str, dict[str, int]],
    bool,
    int,
    dict[int, list[tuple[Any, ...]]],
]

_CONFIG: Any = None
_QUEUE: Any = None
_SIMULATE: Any = None


def can_shard(machine: Machine, vcpus: list[int]) -> bool:
    """Whether ``vcpus`` may run in separate machines: the strategy declares it safe
    (``Strategy.shardable``) and the host keeps them apart (see the module docstring)."""
    return machine.strategy.shardable and all(machine.host.alone(v) for v in machine.vcpus)


def key_held(machine: Machine) -> bool:
    """Whether the host-wide ``perf_sched_events`` key is on before any guest event:
    a host event that predates the VM holds it, or the strategy creates none."""
    host = machine.host
    if not machine.strategy.creates_host_events:
        return True
    return host.cfg.nmi_watchdog or bool(host.cfg.perf_record)


class KeyDropped(Exception):
    """A unit's own host events all went away mid-run: the units cannot stand for the
    full run (see the module docstring); the caller simulates in full instead."""


def plan(classes: list[list[int]], workers: int) -> list[Unit]:
    """One unit per class of two or more (its first vCPU stands for all); the vCPUs
    alone in their class spread over ``workers`` shards."""
    units: list[Unit] = [([c[0]], len(c)) for c in classes if len(c) > 1]
    single = [c[0] for c in classes if len(c) == 1]
    n = min(workers, len(single))
    units += [(single[i::n], 1) for i in range(n)]
    return units


def run_unit(
    config: Any,
    plugins: PluginManager | None,
    vcpus: list[int],
    simulate: SimulateFn,
    progress: ProgressFn | None,
) -> UnitOut:
    """Simulate ``vcpus`` in a machine of their own: their results, ledger delta, and
    whether the key stood in for the other vCPUs (:class:`KeyDropped` if it had to)."""
    m = Machine(config, plugins)
    host = m.host
    host.vcpus = [m.vcpus[i] for i in vcpus]  # ticks and slices reach only these
    host.owned = {host.pcpu_of(v) for v in host.vcpus}
    m.settled = {v.index for v in m.vcpus} - set(vcpus)
    stand_in = not key_held(m)
    if stand_in:
        host.sched_count += 1  # the other vCPUs' events hold the key
        host.get_hardware(charged=False)  # and the DS buffers (pmc_refcount)
    floor = host.sched_count  # the stand-in's hold alone: none of the unit's own events
    before = m.ledger.as_dict()
    results = simulate(m, vcpus, progress)
    if stand_in and host.sched_low is not None and host.sched_low <= floor:
        raise KeyDropped(f"vCPUs {vcpus}: every guest host event released mid-run")
    m.teardown()  # releases everything, as in the full run
    left = host.hw_refcount - int(stand_in)
    m.finish()
    delta = ledger_delta(m.ledger.as_dict(), before)
    recent = {i: [astuple(p) for p in m.vcpus[i].pmis] for i in vcpus}
    return [r.model_dump() for r in results], delta, stand_in, left, recent


def _init(config: Any, q: Any, simulate: SimulateFn) -> None:
    global _CONFIG, _QUEUE, _SIMULATE
    _CONFIG, _QUEUE, _SIMULATE = config, q, simulate


def _run_in_worker(args: tuple[int, list[int]]) -> UnitOut:
    n, vcpus = args
    q = _QUEUE

    def progress(f: float) -> None:
        if q is not None:
            q.put((n, f))

    return run_unit(_CONFIG, None, vcpus, _SIMULATE, progress)


def _in_workers(
    machine: Machine,
    units: list[Unit],
    workers: int,
    progress: ProgressFn | None,
    simulate: SimulateFn,
) -> list[UnitOut]:
    ctx = mp.get_context("fork")
    q = ctx.SimpleQueue() if progress is not None else None
    done: dict[int, float] = dict.fromkeys(range(len(units)), 0.0)
    pool = ctx.Pool(
        min(workers, len(units)), initializer=_init, initargs=(machine.config, q, simulate)
    )
    try:
        pending = pool.map_async(_run_in_worker, [(n, u[0]) for n, u in enumerate(units)], 1)
        while not pending.ready():
            pending.wait(0.1)
            if q is not None and progress is not None:
                while not q.empty():
                    n, f = q.get()
                    done[n] = f
                progress(sum(done.values()) / len(done))
        out: list[UnitOut] = pending.get()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return out


def _in_process(
    machine: Machine, units: list[Unit], progress: ProgressFn | None, simulate: SimulateFn
) -> list[UnitOut]:
    out: list[UnitOut] = []
    for n, (vcpus, _) in enumerate(units):

        def part(f: float, n: int = n) -> None:
            if progress is not None:
                progress((n + f) / len(units))

        out.append(run_unit(machine.config, machine.plugins, vcpus, simulate, part))
    return out


def run_units(
    machine: Machine,
    classes: list[list[int]],
    workers: int,
    progress: ProgressFn | None,
    simulate: SimulateFn,
    end_ns: float,
) -> list[VcpuResult]:
    """Run ``classes`` (vCPUs proven identical, or one each) as units, in ``workers``
    processes (fork) or in this one; merge into ``machine``; results in vCPU order.
    Raises :class:`KeyDropped`, with ``machine`` untouched, when the units cannot stand
    for the full run.

    ``simulate`` is the workload's engine: the caller's, so this module depends on
    no workload. ``end_ns``: guest time the run lasts (the host runs the rest to it).
    """
    units = plan(classes, workers)
    if workers > 1 and len(units) > 1:
        out = _in_workers(machine, units, workers, progress, simulate)
    else:
        out = _in_process(machine, units, progress, simulate)
    members = {c[0]: c for c in classes}
    ledger = machine.ledger
    results: list[VcpuResult] = []
    created = False
    released = True
    for (_, times), (rows, delta, stand_in, left, recent) in zip(units, out, strict=True):
        created |= stand_in and delta.get("perf_ops", {}).get("create", 0) > 0
        released &= left == 0
        for c in CATEGORIES:
            target = getattr(ledger, c)
            for k, n in delta.get(c, {}).items():
                target[k] += n * times
        for row in rows:
            last = [Pmi(*p) for p in recent[row["vcpu"]]]
            for i in members.get(row["vcpu"], [row["vcpu"]]):
                results.append(VcpuResult(**{**row, "vcpu": i}))
                vcpu = machine.vcpus[i]  # what the parent reports of this vCPU's PMIs
                vcpu.pmis.settle(row["pmis"], last)
                vcpu.pmis_dropped = row["pmis_dropped"]
    if created:  # the first vCPU to start paid for the key, once (module docstring)
        ledger.perf_ops["create_sched_rcu"] += 1
        # ... and reserved the DS buffers; whoever gives back the last event host-wide
        # frees them, which the units (holding for each other) did not: ours does, at
        # teardown, if every unit gave all of its events back at its own.
        machine.host.get_hardware()
        machine.units_hold = released
    results.sort(key=lambda r: r.vcpu)
    profiled = {r.vcpu for r in results}
    _host_rest(machine, profiled, end_ns)
    machine.settled |= profiled
    return results


def _host_rest(machine: Machine, profiled: set[int], end_ns: float) -> None:
    """The host's share no unit ran: vCPUs not profiled, pCPUs without a profiled vCPU."""
    host = machine.host
    busy = {host.pcpu_of(machine.vcpus[i]) for i in profiled}
    host.vcpus = [v for v in machine.vcpus if v.index not in profiled]
    host.owned = {c.index for c in host.pcpus if c.index not in busy}
    host.advance(end_ns)


__all__ = ["KeyDropped", "can_shard", "key_held", "plan", "run_unit", "run_units"]
