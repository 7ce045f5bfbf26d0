"""Guest reads and VM exits to sample N events every millisecond for one second.

One all-in-one counter (N 8-bit fields, one RDPMC per sample) against N separate
counters (N RDPMCs per sample), under the ``emulated`` strategy where every RDPMC
exits: the saving the grouped-events RFC was written for. Prints numbers and the
CPU and wall time it took; not a timed test (tests/grouped/test_sampling.py
asserts the same figures).

    python benchmarks/grouped_sampling.py
"""

from __future__ import annotations

import time

from vpmu_grouped.sampling import EVENTS, sample


def main() -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    print("sample N events every 1 ms for 1 s (1000 samples), emulated strategy")
    print(
        f"{'N':>2} {'separate reads':>15} {'separate exits':>15} "
        f"{'grouped reads':>14} {'grouped exits':>14} {'saving':>7}"
    )
    for n in range(1, len(EVENTS) + 1):
        sep = sample(n, "separate")
        grp = sample(n, "grouped")
        assert sep.totals == grp.totals, "both ways must count the same events"
        print(
            f"{n:>2} {sep.guest_reads:>15,} {sep.vm_exits:>15,} "
            f"{grp.guest_reads:>14,} {grp.vm_exits:>14,} {sep.vm_exits / grp.vm_exits:>6.1f}x"
        )
    print(f"took {time.process_time() - c0:.2f} CPU s, {time.perf_counter() - t0:.2f} wall s")


if __name__ == "__main__":
    main()
