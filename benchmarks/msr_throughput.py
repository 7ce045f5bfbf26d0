"""Guest WRMSR/RDMSR/RDPMC throughput through the public API, with the ledger on.

For each config (default: the Intel KVM config) it prints, best of several runs,
per CPU second (``time.process_time``: what the verdict uses, because the machine
may be shared and wall time then measures the neighbours) and per wall second:

* the rate of a guest PMI handler's accesses (Linux's sequence: disable all,
  read status, ack, read and re-arm the counter, re-read status, enable all,
  unmask LVTPC), every one an exit counted in the ledger -- the target is
  >= 2,000,000 accesses per CPU second on one core (4,000,000 compiled);
* the rate when every access is also counted by an enabled instructions counter
  (each then costs KVM a pause and resume of that counter's perf event);
* the cost of dispatching one RDMSR through the bound table against the same
  handler through a pluggy hook call: why no hook sits on the hot path; and one
  guest access against one pluggy hook call, both measured in this run.

    python benchmarks/msr_throughput.py [configs/intel-kvm.toml ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pluggy

import vpmu_core as vpmu

TARGET = 2_000_000  # accesses per CPU second, pure Python
TARGET_COMPILED = 4_000_000
LVTPC = 0x834


def _rows(cpu: vpmu.Vcpu) -> dict[str, int]:
    found: dict[str, int] = {}
    for h in cpu.msr_table.values():
        key = h.klass if h.counter in (None, 0) else ""
        if key and key not in found:
            found[key] = h.msr
    return found


def pmi_handler(cpu: vpmu.Vcpu, rounds: int) -> int:
    """Accesses of ``rounds`` guest PMI handlers; returns how many accesses that was."""
    rows = _rows(cpu)
    ctr = rows["counter"]
    glob = rows.get("global_ctrl")
    status = rows.get("global_status")
    ack = rows.get("global_status_clr")
    wr, rd, rp = cpu.wrmsr, cpu.rdmsr, cpu.rdpmc
    enable = rd(glob) if glob is not None else 0
    arm = 0xFFFF_FFFF_0000 & ((1 << cpu.pmu.caps.gp_width) - 1)
    for _ in range(rounds):
        if glob is not None and status is not None and ack is not None:
            wr(glob, 0)
            s = rd(status)
            wr(ack, s)
            rp(0)
            wr(ctr, arm)
            rd(status)
            wr(glob, enable)
        else:  # no global registers: the v1-style handler scans and re-arms the counter
            rp(0)
            rd(ctr)
            wr(ctr, arm)
            rp(0)
            rd(ctr)
            wr(ctr, arm)
            rp(0)
        wr(LVTPC, 0x400)
    return 8 * rounds


class HookSpecs:
    @pluggy.HookspecMarker("bench")
    def bench_rdmsr(self, msr: int) -> int:  # type: ignore[empty-body]
        ...


class HookImpl:
    def __init__(self, cpu: vpmu.Vcpu) -> None:
        self.table = {m: h.read for m, h in cpu.msr_table.items()}

    @pluggy.HookimplMarker("bench")
    def bench_rdmsr(self, msr: int) -> int:
        return self.table[msr]()


def best_seconds(stmt: Any, number: int, repeat: int = 7) -> tuple[float, float]:
    """The best CPU and the best wall seconds of one call of ``stmt`` (``number`` per run).

    CPU time is the figure to judge by on a shared machine: a neighbour's load
    stretches wall time, not the process's own CPU time.
    """
    cpu = wall = float("inf")
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            stmt()
        c1, w1 = time.process_time(), time.perf_counter()
        cpu, wall = min(cpu, c1 - c0), min(wall, w1 - w0)
    return cpu / number, wall / number


def compiled() -> bool:
    """Whether the engine runs as mypyc-compiled extension modules."""
    import vpmu_core.vcpu

    return not str(vpmu_core.vcpu.__file__).endswith(".py")


def bench(config: str) -> float:
    machine = vpmu.Machine.from_toml(config)
    cpu = machine.vcpus[0]
    driver = machine.guest_driver(cpu)
    driver.unmask_pmi()
    rounds = 20_000
    cpu_s, wall_s = best_seconds(lambda: pmi_handler(cpu, rounds), 1)
    handler, handler_wall = 8 * rounds / cpu_s, 8 * rounds / wall_s

    driver.program_gp(0, driver.gp_key("instructions"), usr=True, os=True)
    driver.enable_all()
    cpu_s, wall_s = best_seconds(lambda: pmi_handler(cpu, rounds), 1)
    counted, counted_wall = 8 * rounds / cpu_s, 8 * rounds / wall_s

    ctr = _rows(cpu)["counter"]
    table = cpu._rd
    bound, bound_wall = best_seconds(lambda: table[ctr][0](), 100_000)
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(HookSpecs)
    pm.register(HookImpl(cpu))
    hook = pm.hook.bench_rdmsr
    hooked, hooked_wall = best_seconds(lambda: hook(msr=ctr), 100_000)

    target = TARGET_COMPILED if compiled() else TARGET
    verdict = "meets" if handler >= target else "BELOW"
    print(f"{config} ({'compiled' if compiled() else 'pure Python'})")
    print(f"  {'':40} {'per CPU s':>12} {'per wall s':>12}")
    print(
        f"  {'PMI-handler accesses, each an exit:':40} {handler:>12,.0f} {handler_wall:>12,.0f}"
        f"  ({verdict} the {target:,} /CPU s target)"
    )
    print(
        f"  {'... also counted by an enabled counter:':40} {counted:>12,.0f} {counted_wall:>12,.0f}"
    )
    print(f"  {'':40} {'CPU ns':>12} {'wall ns':>12}")
    print(f"  {'RDMSR dispatch, bound table:':40} {bound * 1e9:>12,.0f} {bound_wall * 1e9:>12,.0f}")
    print(
        f"  {'RDMSR dispatch, pluggy hook call:':40} "
        f"{hooked * 1e9:>12,.0f} {hooked_wall * 1e9:>12,.0f}"
        f"  ({hooked / bound:.1f}x the bound table)"
    )
    access = 1 / handler
    print(
        f"  {'one guest access (in a handler):':40} "
        f"{access * 1e9:>12,.0f} {1e9 / handler_wall:>12,.0f}"
        f"  ({access / hooked:.2f}x one pluggy hook call, CPU time)"
    )
    print(f"  {'ledger exits recorded:':40} {machine.ledger.total_exits():>12,}")
    return handler


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    configs = argv or [str(root / "configs/intel-kvm.toml")]
    rates = [bench(c) for c in configs]
    return 0 if min(rates) >= (TARGET_COMPILED if compiled() else TARGET) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
