"""The ground truth the engine steps by: a profile's counts in closed form.

Why its own module: the engine asks it on every step (how many events in these
cycles, how many cycles to the next overflow), so it is compiled with the engine
(setup.py), while the profile models it is built from (:mod:`.profiles`) stay
pydantic. The closed forms are explained in :mod:`.profiles`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Protocol

from ..errors import ConfigError
from .qualified import cycles_meeting, decode


class RateSource(Protocol):
    """What a truth is built from: a :class:`~vpmu_core.workloads.profiles.Profile`."""

    @property
    def user_share(self) -> float: ...

    def rate(self, event: str, user: bool) -> float: ...

    def names(self) -> set[str]: ...


_RAW_NAME = re.compile(r"r[0-9a-fA-F]{1,16}")
MIN_RATE = 1e-12  # events per cycle: once in 400 s at 2.5 GHz


class Truth:
    """Closed-form counts of one profile: the ground truth the engine steps by."""

    __slots__ = ("_r", "us")

    def __init__(self, profile: RateSource, name_of: Callable[[str], str] | None = None) -> None:
        """``name_of``: the engine's name of a profile key on this PMU (perf's catalog:
        ``r00c0`` is ``instructions`` on Intel, ``rc2`` is ``branches`` on AMD), so a
        rate keyed by any spelling reaches the counters of its event. Without it a raw
        key is only normalised (``r01c2`` -> ``r1c2``)."""
        self.us = profile.user_share
        self._r: dict[str, tuple[float, float]] = {}
        spelled: dict[str, str] = {}
        for name in sorted(profile.names()):
            if name_of is not None:
                key = name_of(name)
            else:
                key = f"r{int(name[1:], 16):x}" if _RAW_NAME.fullmatch(name) else name
            rates = (profile.rate(name, True), profile.rate(name, False))
            if key in self._r and self._r[key] != rates:
                raise ConfigError(
                    f"workload.profile rate {name}",
                    rates,
                    f"names the event {spelled[key]!r} also names ({key}) with other rates",
                )
            spelled[key] = name
            self._r[key] = rates

    def events(self) -> list[str]:
        """The events this truth has rates for, by the engine's names."""
        return sorted(self._r)

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
