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
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError
from .qualified import cycles_meeting, decode


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


_RAW_NAME = re.compile(r"r[0-9a-fA-F]{1,16}")
MIN_RATE = 1e-12  # events per cycle: once in 400 s at 2.5 GHz


class Truth:
    """Closed-form counts of one profile: the ground truth the engine steps by."""

    __slots__ = ("_r", "us")

    def __init__(self, profile: Profile) -> None:
        self.us = profile.user_share
        self._r: dict[str, tuple[float, float]] = {}
        names = {"cycles", *profile.user.rates, *profile.kernel.rates}
        for name in names:
            # a raw event's rate is keyed as the engine names it: r1c2, not r01c2
            key = f"r{int(name[1:], 16):x}" if _RAW_NAME.fullmatch(name) else name
            self._r[key] = (profile.rate(name, True), profile.rate(name, False))

    def rates(self, event: str) -> tuple[float, float]:
        return self._r.get(event, (0.0, 0.0))

    def split(self, cycles: int) -> tuple[int, int]:
        """User and kernel cycles among the first ``cycles``."""
        u = int(cycles * self.us)
        return u, cycles - u

    def count(self, event: str, cycles: int, usr: bool, os: bool, qual: int = 0) -> int:
        """Events (or, with CMASK/INV ``qual`` bits, qualifying cycles) in ``cycles``.

        Exact for CMASK/INV however the engine cuts its steps: a step of ``cu`` user
        cycles retires ``int(u1*r) - int(u0*r)`` events, between ``k*cu`` and
        ``(k+1)*cu`` with ``k = floor(r)``, so every step's spread has ``k`` or ``k + 1``
        events a cycle, and the steps' counts add up to one spread of the totals. An
        EDGE counter's edges depend on the cuts (the spread restarts fuller-first each
        step): ``exact(qual)`` is False and count() gives the cycles its condition holds,
        the most edges it could count.
        """
        ru, rk = self._r.get(event, (0.0, 0.0))
        u, k = self.split(cycles)
        if not qual:
            return (int(u * ru) if usr else 0) + (int(k * rk) if os else 0)
        threshold, invert, _ = decode(qual)
        return (cycles_meeting(int(u * ru), u, threshold, invert) if usr else 0) + (
            cycles_meeting(int(k * rk), k, threshold, invert) if os else 0
        )

    @staticmethod
    def exact(qual: int) -> bool:
        """Whether count() is what a counter with these qualifier bits reads."""
        return not decode(qual)[2]

    def cycles_for(self, event: str, start: int, n: int, usr: bool, os: bool) -> int | None:
        """The fewest cycles after ``start`` in which ``n`` more events are counted.

        Exact: the count is a monotone step function of the cycles, so a guess from
        the mean rate is corrected by a few evaluations (never a cycle-by-cycle walk).
        """
        ru, rk = self._r.get(event, (0.0, 0.0))
        rate = (self.us * ru if usr else 0.0) + ((1 - self.us) * rk if os else 0.0)
        if rate < MIN_RATE or n <= 0:  # below MIN_RATE an event never comes in a run
            return None if n > 0 else 0
        base = self.count(event, start, usr, os)
        target = base + n
        c = start + max(1, math.ceil(n / rate))
        got = self.count(event, c, usr, os)
        while got < target:  # too few: jump by what is missing
            c += max(1, math.ceil((target - got) / rate))
            got = self.count(event, c, usr, os)
        # now count(c) >= target: find the first such c above the last known short
        lo = max(start, c - max(2, math.ceil(4 / rate)))
        while self.count(event, lo, usr, os) >= target and lo > start:
            lo = max(start, lo - max(2, math.ceil(4 / rate)))
        hi = c
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.count(event, mid, usr, os) >= target:
                hi = mid
            else:
                lo = mid
        return hi - start


def profile_schema_default() -> dict[str, Any]:
    return {"specint": SPECINT.model_dump(), "idle": IDLE.model_dump()}
