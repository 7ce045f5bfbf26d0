"""Event-rate profiles: what a guest workload retires per guest cycle, by CPL.

Why rates and not a trace of instructions: the engine never steps cycle by cycle
(DESIGN.md, "Time and counting"). A profile says how many of each event one guest
cycle retires at user and at kernel level, and which share of the cycles is spent
at user level; every count is then a closed-form function of the elapsed cycles:

    user_cycles(C)   = floor(C * user_share)
    count(e, C, usr) = floor(user_cycles(C) * user[e])          (kernel alike)

so counts are exact consequences of the rates however a run is cut into steps,
and the ground truth of any counter is the same function evaluated at the end.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError
from .truth import Truth

__all__ = ["CplRates", "Profile", "Truth", "resolve"]


class CplRates(BaseModel):
    """Events per guest cycle at one privilege level (``cycles`` is 1 by definition)."""

    model_config = ConfigDict(extra="forbid")
    rates: dict[str, float] = Field(default_factory=dict, description="event name -> per cycle")

    @model_validator(mode="after")
    def _check(self) -> CplRates:
        for name, r in self.rates.items():
            if not (r >= 0 and math.isfinite(r)):
                raise ConfigError(f"profile rate {name}", r, "must be a finite number >= 0")
        return self


class Profile(BaseModel):
    """A workload's event rates, split by CPL."""

    model_config = ConfigDict(extra="forbid")
    ghz: float = Field(2.5, gt=0, description="guest clock: cycles per ns")
    user_share: float = Field(0.9, ge=0, le=1, description="share of cycles spent at CPL3")
    user: CplRates = Field(default_factory=CplRates)
    kernel: CplRates = Field(default_factory=CplRates)

    def rate(self, event: str, user: bool) -> float:
        if event == "cycles":
            return 1.0
        return (self.user if user else self.kernel).rates.get(event, 0.0)

    def names(self) -> set[str]:
        """Every event this profile gives a rate for, and cycles."""
        return {"cycles", *self.user.rates, *self.kernel.rates}


def _rates(**kw: float) -> CplRates:
    return CplRates(rates={k.replace("_", "-"): v for k, v in kw.items()})


# perf's `ref-cycles` is Intel fixed counter 2 (CPU_CLK_UNHALTED.REF_TSC: unhalted
# cycles at the TSC rate, taken equal to the 2.5 GHz guest clock) and, on Zen 4,
# PMCx120 umask 1 (unhalted cycles at P0, like MPERF); `bus-cycles` is Intel's 0x013C
# (CPU_CLK_UNHALTED.REF_XCLK), unhalted cycles of the reference clock. Estimate: a
# 100 MHz reference against the 2.5 GHz clock (the SDM gives no rate; 100 MHz is
# the reference of Skylake-class cores), so 0.04 bus cycles per reference cycle.
BUS_PER_REF = 0.04

# SPECint2017-like: IPC ~1.6 at user level (integer codes on a big core), branchy
# (1 branch in 5-6 instructions), ~3% mispredicted, a few LLC misses per thousand
# instructions; the kernel share is small (syscalls, page faults, the timer tick).
# Topdown slots are 6 per cycle on Golden Cove (spec amd-and-topdown.md §7).
SPECINT = Profile(
    ghz=2.5,
    user_share=0.95,
    user=_rates(
        instructions=1.6,
        branches=0.29,
        branch_misses=0.009,
        cache_references=0.012,
        cache_misses=0.003,
        ref_cycles=1.0,
        bus_cycles=BUS_PER_REF,
        topdown_slots=6.0,
        topdown_retiring=2.4,
        topdown_backend_bound=2.1,
        topdown_frontend_bound=0.9,
        topdown_bad_spec=0.6,
    ),
    kernel=_rates(
        instructions=0.8,
        branches=0.16,
        branch_misses=0.006,
        cache_references=0.02,
        cache_misses=0.006,
        ref_cycles=1.0,
        bus_cycles=BUS_PER_REF,
        topdown_slots=6.0,
        topdown_retiring=1.2,
        topdown_backend_bound=3.0,
        topdown_frontend_bound=1.2,
        topdown_bad_spec=0.6,
    ),
)

# Idle-like: the vCPU is halted most of the time, so per elapsed guest cycle few
# unhalted cycles and fewer instructions retire, nearly all in the kernel (the
# idle loop, timer and RCU work). ``cycles`` stays 1 per cycle as the engine's
# clock; an idle guest's unhalted cycles are what the rate of `ref-cycles` shows.
IDLE = Profile(
    ghz=2.5,
    user_share=0.02,
    user=_rates(
        instructions=0.01,
        branches=0.002,
        branch_misses=0.0001,
        ref_cycles=0.01,
        bus_cycles=0.01 * BUS_PER_REF,
    ),
    kernel=_rates(
        instructions=0.02,
        branches=0.004,
        branch_misses=0.0002,
        cache_references=0.0004,
        cache_misses=0.0001,
        ref_cycles=0.02,
        bus_cycles=0.02 * BUS_PER_REF,
        topdown_slots=0.12,
        topdown_retiring=0.02,
        topdown_backend_bound=0.06,
        topdown_frontend_bound=0.03,
        topdown_bad_spec=0.01,
    ),
)

PROFILES: dict[str, Profile] = {"specint": SPECINT, "idle": IDLE}


def resolve(profile: str | Profile) -> Profile:
    """A shipped profile by name, or the config's own table."""
    if isinstance(profile, Profile):
        return profile
    found = PROFILES.get(profile)
    if found is None:
        raise ConfigError("workload.profile", profile, f"known: {', '.join(sorted(PROFILES))}")
    return found


def profile_schema_default() -> dict[str, Any]:
    return {"specint": SPECINT.model_dump(), "idle": IDLE.model_dump()}
