"""``counting``: program events, retire a configured mix, read the counters back.

The smallest honest workload: what ``perf stat`` does minus multiplexing. Each
listed event gets a fixed counter when one counts it (and ``use_fixed``), else the
next GP counter the vCPU has (by index: a PMU may have holes); the mix is retired
in ``steps`` slices split between CPL3 and CPL0 by ``user_share``. The report
sets each counter against the ground truth: the events of the mix its privilege
filter sees. An instructions counter reads a
little more: the guest's own WRMSR/RDMSR/RDPMC/CPUID are instructions too, and the
report shows that difference rather than hiding it.

When the mix names ``cycles``, every call retires its slice of an event over the
same slice of the cycles (split by ``user_share`` like the events), so a
CMASK/INV/EDGE counter counts the cycles or edges that qualifiers.py's spread
gives those calls, and its truth is the closed form of that spread over the
workload's calls (workloads/qualified.py), EDGE included: the calls' cuts are
fixed by the config. Without ``cycles`` each event took a cycle of its own.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..counters import FIXED_BASE
from ..errors import ConfigError
from ..guest_perf.schedule import fixed_counter, gp_indexes
from .base import CounterRow, Workload, WorkloadOutput
from .qualified import qualified


class CountingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["counting"]
    events: list[str] = Field(
        default_factory=lambda: ["instructions", "cycles", "branches", "branch-misses"],
        description="events to count, one counter each",
    )
    mix: dict[str, int] = Field(
        default_factory=lambda: {
            "instructions": 10_000_000,
            "cycles": 12_500_000,
            "branches": 2_000_000,
            "branch-misses": 40_000,
        },
        description="events retired by the workload, by name; with `cycles`, each slice of "
        "an event is retired over the same slice of the cycles (what CMASK/INV/EDGE count)",
    )
    user_share: float = Field(0.8, ge=0, le=1, description="share of the mix retired at CPL3")
    count: Literal["all", "user", "kernel"] = "all"
    use_fixed: bool = Field(True, description="count on a fixed counter where one counts the event")
    steps: int = Field(10, ge=1, le=1_000_000, description="slices the mix is retired in")
    ghz: float = Field(2.5, gt=0, description="guest clock, for the guest time of the cycles")

    @model_validator(mode="after")
    def _check(self) -> CountingConfig:
        for name, n in self.mix.items():
            if n < 0:
                raise ConfigError(f"workload.mix.{name}", n, "must be >= 0")
        for name, n in self.mix.items():
            if self.mix.get("cycles", 0) and any(
                (nu and not cu) or (nk and not ck) for _, nu, cu, nk, ck in _kinds(self, n)
            ):
                raise ConfigError(
                    f"workload.mix.{name}",
                    n,
                    f"retires events in a step slice with no cycles (mix.cycles = "
                    f"{self.mix['cycles']} over {self.steps} steps, user_share "
                    f"{self.user_share}): give the mix more cycles or fewer steps",
                )
        return self


class Counting(Workload):
    name: ClassVar[str] = "counting"
    Config: ClassVar[type[BaseModel]] = CountingConfig
    config: CountingConfig

    def run(self) -> WorkloadOutput:
        out = WorkloadOutput()
        for vcpu in self.machine.vcpus:
            out.rows += self._run_vcpu(vcpu)
        cycles = self.config.mix.get("cycles", 0)
        out.guest_ns = cycles / self.config.ghz
        return out

    def _run_vcpu(self, vcpu: Any) -> list[CounterRow]:
        cfg = self.config
        drv = self.machine.guest_driver(vcpu)
        usr = cfg.count in ("all", "user")
        os = cfg.count in ("all", "kernel")
        drv.disable_all()
        plan: list[tuple[str, int]] = []
        gp = gp_indexes(vcpu)  # the GP indexes the vCPU has, holes allowed
        free = list(gp)
        for event in cfg.events:
            fixed = fixed_counter(vcpu, drv.fixed_index(event)) if cfg.use_fixed else None
            if fixed is not None and all(idx != fixed for _, idx in plan):
                plan.append((event, fixed))
            elif not drv.gp_allowed(event):
                raise ConfigError(
                    "workload.events",
                    event,
                    "counts only on its fixed counter (perf's fixed-counter constraint), "
                    "which is absent, taken or off (use_fixed)",
                )
            elif free:
                plan.append((event, free.pop(0)))
            else:
                raise ConfigError(
                    "workload.events", event, f"no counter left ({len(gp)} GP counters)"
                )
        for event, idx in plan:
            drv.write_counter(idx, 0)
            if idx >= FIXED_BASE:
                drv.program_fixed(idx - FIXED_BASE, usr=usr, os=os)
            else:
                drv.program_gp(idx, drv.event(event), usr=usr, os=os)
        start = {idx: vcpu.counters[idx].value for _, idx in plan}
        mix = {drv.event(name).base: total for name, total in cfg.mix.items()}
        spread = cfg.mix.get("cycles", 0)
        drv.enable_all()
        for step in range(cfg.steps):
            c = _share(spread, cfg.steps, step)
            cu = int(c * cfg.user_share)
            for event, total in mix.items():
                n = _share(total, cfg.steps, step)
                user = int(n * cfg.user_share)
                if spread:
                    vcpu.retire(event, user, 3, cu)
                    vcpu.retire(event, n - user, 0, c - cu)
                else:
                    vcpu.retire(event, user, cpl=3)
                    vcpu.retire(event, n - user, cpl=0)
        drv.disable_all()
        rows = []
        for event, idx in plan:
            value = drv.read_counter(idx)
            spec = drv.event(event)
            pmc = vcpu.counters[idx]
            seen = _seen(cfg, mix.get(spec.base), usr, os, spec.qual)
            expected = (start[idx] + seen) & pmc.mask
            rows.append(CounterRow(vcpu.index, pmc.name, event, value, expected))
        for pmc in vcpu.counters.values():  # an extension's all-in-one counters, part by part
            prefix = f"{pmc.name}."
            rows += [
                CounterRow(vcpu.index, pmc.name, name.removeprefix(prefix), v)
                for name, v in pmc.parts()
            ]
        return rows


def _share(total: int, steps: int, step: int) -> int:
    """Step ``step``'s slice of ``total``: the first ``total % steps`` slices one more."""
    return total // steps + (1 if step < total % steps else 0)


def _kinds(cfg: CountingConfig, retired: int) -> list[tuple[int, int, int, int, int]]:
    """The steps of one event, by kind: (how many, user events, user cycles, kernel
    events, kernel cycles). Slices differ only in whether the event's and the cycles'
    slice is the larger one, so there are at most three kinds, in step order."""
    steps, share = cfg.steps, cfg.user_share
    spread = cfg.mix.get("cycles", 0)
    bounds = sorted({0, min(steps, retired % steps), min(steps, spread % steps), steps})
    kinds = []
    for lo, hi in pairwise(bounds):
        n, c = _share(retired, steps, lo), _share(spread, steps, lo)
        user, cu = int(n * share), int(c * share)
        if not spread:  # retire()'s default: one event per cycle
            c, cu = n, user
        kinds.append((hi - lo, user, cu, n - user, c - cu))
    return kinds


def _seen(cfg: CountingConfig, retired: int | None, usr: bool, os: bool, qual: int) -> int:
    """What a counter filtered ``usr``/``os`` with qualifier bits ``qual`` counts of the mix:
    a sum over the kinds of steps (workloads/qualified.py), never a walk of the steps.
    A counter sees only its event's calls that its CPL filter passes."""
    if retired is None:  # the event is not in the mix: no call retires it
        return 0
    segments = []
    for times, nu, cu, nk, ck in _kinds(cfg, retired):
        calls = ([(nu, cu)] if usr else []) + ([(nk, ck)] if os else [])
        segments.append((times, calls))
    return qualified(segments, qual)
