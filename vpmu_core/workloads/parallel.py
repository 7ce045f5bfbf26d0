"""Simulating vCPUs that cannot interact in separate processes.

Why it is safe only sometimes: vCPUs interact through the host -- two vCPUs on one
pCPU compete for its counters, a migration moves host events between pCPUs, and
the host-wide ``perf_sched_events`` key makes the *first* perf event creation on
the whole host pay an RCU grace period. :func:`can_shard` allows processes only
when none of that can happen: the strategy declares ``shardable`` (its vCPUs share
nothing outside the host model), every vCPU has a pCPU of its own for the whole
run, and either the strategy creates no host perf events (``creates_host_events``)
or a host event that predates the VM holds the key. Each process then builds the
same machine, runs its own vCPUs, and returns its ledger delta; deltas are summed
in shard order, so the result is identical to the serial run
(tests/test_perf_workloads.py checks it).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..guest_perf import ProgressFn, VcpuResult
from ..ledger import Ledger, ledger_delta
from ..machine import Machine

if TYPE_CHECKING:
    SimulateFn = Callable[[Machine, list[int], ProgressFn | None], list[VcpuResult]]

_CONFIG: Any = None
_QUEUE: Any = None
_SIMULATE: Any = None


def can_shard(machine: Machine, vcpus: list[int]) -> bool:
    """Whether ``vcpus`` may run in separate processes: the strategy declares it safe
    (``Strategy.shardable``) and the host keeps them apart (see the module docstring)."""
    strategy = machine.strategy
    host = machine.host
    if not strategy.shardable:
        return False
    if host.cfg.migrate_every_slices or len(machine.vcpus) > len(host.pcpus):
        return False
    held = host.cfg.nmi_watchdog or bool(host.cfg.perf_record)
    return not strategy.creates_host_events or held


def _shards(vcpus: list[int], workers: int) -> list[list[int]]:
    n = min(workers, len(vcpus))
    return [vcpus[i::n] for i in range(n)]


def _init(config: Any, q: Any, simulate: SimulateFn) -> None:
    global _CONFIG, _QUEUE, _SIMULATE
    _CONFIG, _QUEUE, _SIMULATE = config, q, simulate


def _run_shard(args: tuple[int, list[int]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    shard, vcpus = args
    m = Machine(_CONFIG)
    m.host.vcpus = [m.vcpus[i] for i in vcpus]  # ticks and slices reach only these
    before = m.ledger.as_dict()
    q = _QUEUE

    def progress(f: float) -> None:
        if q is not None:
            q.put((shard, f))

    results = _SIMULATE(m, vcpus, progress)
    m.teardown()
    m.strategy.finish()
    return [r.model_dump() for r in results], ledger_delta(m.ledger.as_dict(), before)


def run_sharded(
    machine: Machine,
    vcpus: list[int],
    workers: int,
    progress: ProgressFn | None,
    simulate: SimulateFn,
) -> tuple[list[VcpuResult], list[Ledger]]:
    """Run ``simulate`` over ``vcpus`` in ``workers`` processes (fork); results in vCPU order.

    ``simulate`` is the workload's engine: the caller's, so this module depends on
    no workload.
    """
    shards = _shards(vcpus, workers)
    ctx = mp.get_context("fork")
    q = ctx.SimpleQueue() if progress is not None else None
    done: dict[int, float] = dict.fromkeys(range(len(shards)), 0.0)
    pool = ctx.Pool(len(shards), initializer=_init, initargs=(machine.config, q, simulate))
    try:
        pending = pool.map_async(_run_shard, list(enumerate(shards)))
        while not pending.ready():
            pending.wait(0.1)
            if q is not None and progress is not None:
                while not q.empty():
                    shard, f = q.get()
                    done[shard] = f
                progress(sum(done.values()) / len(done))
        out = pending.get()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    results: list[VcpuResult] = []
    ledgers: list[Ledger] = []
    for rows, delta in out:
        results += [VcpuResult(**r) for r in rows]
        led = Ledger()
        led.load(delta)
        ledgers.append(led)
    results.sort(key=lambda r: r.vcpu)
    return results, ledgers


__all__ = ["can_shard", "run_sharded"]
