"""Scenario speed: the seed-mediated-table machine under one strategy, at full scale.

56 vCPUs on 56 pCPUs, the guest running ``perf record -F 1000 -a`` with 6 (or 10)
instructions events for 10 s of guest time. Prints the real-time factor: guest
seconds simulated per wall-clock second and per CPU second (the target is >= 1.0
on a 2-core machine), the vCPU-seconds per second, whether the symmetry shortcut
folded the vCPUs into classes, and the overhead the run priced. CPU time is this
process's and its worker processes' (``resource`` RUSAGE_SELF + RUSAGE_CHILDREN,
user + system): on a shared machine it is the figure to judge by, wall time
measures the neighbours too.

    python benchmarks/mediated_table.py [--strategy mediated] [--events 6]
        [--seconds 10] [--workers 2] [--profile]

``--profile`` runs one process under cProfile and prints the hottest functions.
``--calls`` counts the Python-level function calls the simulation makes per guest PMU
access (WRMSR, RDMSR, RDPMC by the guest's perf driver): every call on the pure-Python
engine, and on the compiled one the calls still interpreted (a compiled function calling
another makes no Python frame).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import time
import tomllib
from pathlib import Path
from typing import Any

import vpmu_core as vpmu
from vpmu_core.compare import overhead, parse_strategies

CONFIG = Path(__file__).parent.parent / "configs" / "seed-mediated-table.toml"


def scenario(strategy: str, events: int, seconds: float, workers: int) -> dict[str, Any]:
    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    data.pop("compare", None)
    ((name, options),) = parse_strategies(strategy)
    data["strategy"] = {**data["strategy"], **options, "name": name}
    if name != "mediated":
        data["strategy"] = {"name": name, **options}
    data["workload"]["events"] = ["instructions"] * events
    data["workload"]["duration_ms"] = seconds * 1000
    data["workload"]["workers"] = workers
    return data


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its reaped children (the workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def shortcut(data: dict[str, Any]) -> str:
    """The symmetry classes the run folds its vCPUs into, as perf.py decides them at
    the start (a unit whose events all went away would still fall back mid-run)."""
    from vpmu_core.workloads.symmetry import symmetric_classes

    m = vpmu.Machine.from_dict(data)
    classes = symmetric_classes(m, list(range(len(m.vcpus))))
    if classes is None or len(classes) == len(m.vcpus):
        return "not taken (every vCPU simulated)"
    return f"taken, {len(m.vcpus)} vCPUs in {len(classes)} class(es)"


def calls_per_access(data: dict[str, Any]) -> tuple[int, int]:
    """(Python-level calls inside the simulation, guest PMU accesses), in this process.

    The accesses are counted by a proxy between each guest driver and its vCPU; the
    proxy's own frames are not counted as calls.
    """
    import sys

    from vpmu_core import guest_perf
    from vpmu_core.machine import Machine

    counts = {"calls": 0, "accesses": 0}

    class Counting:
        def __init__(self, cpu: Any) -> None:
            self._cpu = cpu

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cpu, name)

        def wrmsr(self, msr: int, value: int) -> None:
            counts["accesses"] += 1
            self._cpu.wrmsr(msr, value)

        def rdmsr(self, msr: int) -> int:
            counts["accesses"] += 1
            return int(self._cpu.rdmsr(msr))

        def rdpmc(self, ecx: int) -> int:
            counts["accesses"] += 1
            return int(self._cpu.rdpmc(ecx))

    driver_of = Machine.guest_driver
    simulate = guest_perf.simulate

    def counted_driver(self: Any, vcpu: Any) -> Any:
        drv = driver_of(self, vcpu)
        if not isinstance(drv.vcpu, Counting):
            drv.vcpu = Counting(drv.vcpu)
        return drv

    mine = {
        counted_driver.__code__,
        *(f.__code__ for f in vars(Counting).values() if callable(f)),
    }

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code not in mine:
            counts["calls"] += 1

    def counted_simulate(*args: Any, **kwargs: Any) -> Any:
        sys.setprofile(profiler)
        try:
            return simulate(*args, **kwargs)
        finally:
            sys.setprofile(None)

    Machine.guest_driver = counted_driver  # type: ignore[method-assign]
    guest_perf.simulate = counted_simulate
    try:
        vpmu.run({**data, "workload": {**data["workload"], "workers": 1}})
    finally:
        Machine.guest_driver = driver_of  # type: ignore[method-assign]
        guest_perf.simulate = simulate
    return counts["calls"], counts["accesses"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategy", default="mediated", help="as a --strategies item")
    ap.add_argument("--events", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=10.0, help="guest time")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--calls", action="store_true", help="Python calls per guest PMU access")
    args = ap.parse_args()
    data = scenario(args.strategy, args.events, args.seconds, args.workers)
    if args.calls:
        calls, accesses = calls_per_access(data)
        import vpmu_core.vcpu

        pure = str(vpmu_core.vcpu.__file__).endswith(".py")
        print(
            f"{args.strategy}, {args.events} events, {args.seconds:g} s: {calls:,} Python-level "
            f"calls in the simulation, {accesses:,} guest PMU accesses: "
            f"{calls / max(1, accesses):.1f} calls per access "
            f"({'pure-Python engine' if pure else 'compiled engine: the calls still interpreted'})"
        )
        return
    vcpus = data["machine"]["vcpus"]
    t0, c0 = time.perf_counter(), cpu_seconds()
    if args.profile:
        data["workload"]["workers"] = 1
        prof = cProfile.Profile()
        result = prof.runcall(vpmu.run, data)
    else:
        result = vpmu.run(data)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    rtf, rtf_cpu = args.seconds / wall, args.seconds / cpu
    import vpmu_core.vcpu

    engine = "pure Python" if str(vpmu_core.vcpu.__file__).endswith(".py") else "compiled"
    print(
        f"{args.strategy}, {args.events} events, {vcpus} vCPUs, {args.seconds:g} s guest time, "
        f"{args.workers} worker(s), {engine} engine"
    )
    print(
        f"wall {wall:.2f} s, CPU {cpu:.2f} s; real-time factor {rtf:.3f} guest s / wall s, "
        f"{rtf_cpu:.3f} guest s / CPU s (target >= 1.0)"
    )
    print(
        f"vCPU-seconds per wall second: {vcpus * args.seconds / wall:.2f}; "
        f"per CPU second: {vcpus * args.seconds / cpu:.2f}"
    )
    print(f"symmetry shortcut: {shortcut(data)}")
    print(
        f"priced overhead: {overhead(result, 'score'):.2f}% of the score; "
        f"samples {result.extra['samples_taken']:,} of {result.extra['samples_expected']:,}; "
        f"exits {sum(result.ledger['exits'].values()):,}"
    )
    if args.profile:
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
