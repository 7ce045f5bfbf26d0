"""Fuzzing campaign: random guest and host operations on every shipped config.

For each config (default: every ``configs/*.toml``, each also with the host NMI
watchdog and a host-wide ``perf record`` where the strategy allows host events) it
drives ``--ops`` random operations through the public API -- WRMSR/RDMSR to the
PMU's MSRs and any MSR, RDPMC with any ECX, retired events, CPL, CR4.PCE, sched
out/in, migration, host time, snapshot -> JSON -> restore, and forks that restore
every vCPU into a fresh machine and continue both -- and prints per config:
operations, CPU and wall seconds, guest faults (#GP answers, expected), Python
exceptions, invariant violations, and divergences under host contention (reported,
not violations: docs/fuzzing.md). Every failure class is shrunk by delta debugging
and printed as a Python script that replays it. Exit status 1 on any exception or
violation.

    python benchmarks/fuzz.py [--ops 1000000] [--seed 0] [--config configs/x.toml ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vpmu_core.testing import fuzz

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=100_000, help="operations per config")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", action="append", help="a config (repeatable; default: all)")
    ap.add_argument("--no-variants", action="store_true", help="no watchdog/perf-record copies")
    ap.add_argument("--shrink-seconds", type=float, default=60.0, help="per failure class")
    ap.add_argument("--episode", type=int, default=4000, help="operations per fresh machine")
    args = ap.parse_args(argv)
    paths = args.config or sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("configs/*.toml"))
    targets = fuzz.targets(paths, variants=not args.no_variants)
    head = f"{'config':<58} {'ops':>9} {'CPU s':>7} {'wall s':>7} {'#GP':>8} {'exc':>4} {'viol':>4}"
    print(f"{head} {'contention':>10}", flush=True)
    total = fuzz.Report("total")
    reports = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for t in targets:
        r = fuzz.campaign(
            t, args.ops, args.seed, episode=args.episode, shrink_seconds=args.shrink_seconds
        )
        reports.append((t, r))
        print(
            f"{t.name:<58} {r.ops:>9,} {r.cpu_s:>7.1f} {r.wall_s:>7.1f} {r.faults:>8,} "
            f"{r.exceptions:>4} {r.violations:>4} {r.contention:>10}",
            flush=True,
        )
        total.ops += r.ops
        total.exceptions += r.exceptions
        total.violations += r.violations
        total.contention += r.contention
    print(
        f"{len(targets)} configs, {total.ops:,} operations in "
        f"{time.process_time() - cpu0:.1f} s CPU ({time.perf_counter() - wall0:.1f} s wall): "
        f"{total.exceptions} exceptions, {total.violations} invariant violations, "
        f"{total.contention} divergences under host contention (seed {args.seed})"
    )
    for t, r in reports:
        for sig, found in r.found.items():
            print(f"\n## {t.name}: {sig} ({found.hits} hit(s)): {found.failure.detail}")
            print(f"# minimal reproducer, {len(found.ops)} operation(s):")
            print(fuzz.reproducer(t, found.ops))
    return 1 if total.exceptions or total.violations else 0


if __name__ == "__main__":
    sys.exit(main())
