"""``counting``: program events, retire a configured mix, read the counters back.

The smallest honest workload: what ``perf stat`` does minus multiplexing. Each
listed event gets a fixed counter when one counts it (and ``use_fixed``), else the
next GP counter the vCPU has (by index: a PMU may have holes); the mix is retired
in ``steps`` slices split between CPL3 and CPL0 by ``user_share``. The report
sets each counter against the ground truth: the events of the mix its privilege
filter sees. An instructions counter reads a
little more: the guest's own WRMSR/RDMSR/RDPMC/CPUID are instructions too, and the
report shows that difference rather than hiding it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..counters import FIXED_BASE
from ..errors import ConfigError
from ..guest_perf.schedule import fixed_counter, gp_indexes
from .base import CounterRow, Workload, WorkloadOutput


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
        description="events retired by the workload, by name",
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
        drv.enable_all()
        for step in range(cfg.steps):
            for event, total in mix.items():
                n = total // cfg.steps + (1 if step < total % cfg.steps else 0)
                user = int(n * cfg.user_share)
                vcpu.retire(event, user, cpl=3)
                vcpu.retire(event, n - user, cpl=0)
        drv.disable_all()
        rows = []
        for event, idx in plan:
            value = drv.read_counter(idx)
            spec = drv.event(event)
            pmc = vcpu.counters[idx]
            # a qualified counter's truth is its qualifier's model, not the events retired
            expected = None
            if not spec.qual:
                seen = _seen(cfg.steps, mix.get(spec.base, 0), cfg.user_share, usr, os)
                expected = (start[idx] + seen) & pmc.mask
            rows.append(CounterRow(vcpu.index, pmc.name, event, value, expected))
        for pmc in vcpu.counters.values():  # an extension's all-in-one counters, part by part
            prefix = f"{pmc.name}."
            rows += [
                CounterRow(vcpu.index, pmc.name, name.removeprefix(prefix), v)
                for name, v in pmc.parts()
            ]
        return rows


def _seen(steps: int, retired: int, user_share: float, usr: bool, os: bool) -> int:
    total = 0
    for step in range(steps):
        n = retired // steps + (1 if step < retired % steps else 0)
        user = int(n * user_share)
        total += (user if usr else 0) + ((n - user) if os else 0)
    return total
