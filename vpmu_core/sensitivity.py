"""``vpmu reproduce --sensitivity``: how much of each published figure is known.

Every cost the spec gives as a range, and every estimate, is set to the low and then
the high end of its range, one at a time, and each seed's table is run again; a
figure's swing under one cost is how far the model moves between the two ends. No
published evaluation offers this: a figure dominated by an estimate is a guess, one
that no unknown moves is as good as the mechanisms behind it.

Why a whole run per cost end and not a re-pricing of the baseline's ledger: the
ledger's counts depend on the costs. The guest perf engine times its PMI handler
with the same prices (vpmu_core/guest_perf/meter.py), so a dearer exit lowers the
guest's sample rate and the time it has left, and the scripted workloads compute
their figures from the cost table as they run. A change goes through the config's
``[costs]`` table, so each value is validated as one a user wrote. An end equal to
the default is the baseline run itself: a run is a function of its config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field, computed_field

from .errors import ConfigError
from .mechanisms import Cost
from .overrides import apply
from .plugins import PluginManager, default_manager
from .reproduce import Figure, Seed, seed_figures

FORMAT = "vpmu-sensitivity/1"

#: progress: (seed, runs done, runs in all)
Progress = Callable[[str, int, int], None]


class Unknown(BaseModel):
    """A cost the spec does not pin down: a range, or an estimate."""

    name: str
    default: float
    low: float
    high: float
    estimate: bool
    source: str


class Swing(BaseModel):
    """A figure with one cost at the low and at the high end of its range."""

    cost: str
    estimate: bool
    default: float = Field(description="the cost's default, ns (the baseline run's)")
    low: float = Field(description="the cost's low end, ns")
    high: float = Field(description="the cost's high end, ns")
    at_low: float | None = Field(description="the figure with the cost at its low end")
    at_high: float | None = Field(description="the figure with the cost at its high end")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def swing(self) -> float:
        """|at_high - at_low|, in the figure's unit (0 when either end is n/a)."""
        if self.at_low is None or self.at_high is None:
            return 0.0
        return abs(self.at_high - self.at_low)


class FigureSensitivity(BaseModel):
    """One figure, its baseline, and every unknown's swing, largest first."""

    figure: Figure
    swings: list[Swing]
    charts: list[str] = Field(default_factory=list, description="the tornado chart files")


class Sensitivity(BaseModel):
    """What ``vpmu reproduce --sensitivity --json`` writes."""

    format: str = FORMAT
    sets: list[str]
    applied: dict[str, list[str]]
    unknowns: list[Unknown]
    figures: list[FigureSensitivity]


def unknowns(plugins: PluginManager | None = None, names: Sequence[str] = ()) -> list[Unknown]:
    """Every priced cost with a range or named an estimate (``names``: only these)."""
    costs: dict[str, Cost] = (plugins or default_manager()).prices.costs
    chosen = list(names) or [n for n, c in costs.items() if c.low < c.high or c.estimate]
    for name in chosen:
        if name not in costs:
            raise ConfigError("--cost", name, f"one of {', '.join(sorted(costs))}")
    return [
        Unknown(
            name=n,
            default=costs[n].ns,
            low=costs[n].low,
            high=costs[n].high,
            estimate=costs[n].estimate,
            source=costs[n].source,
        )
        for n in chosen
    ]


def variants(seed: Seed, known: Sequence[Unknown]) -> list[tuple[str, float, dict[str, Any]]]:
    """(cost, value, config tables) of every run one seed needs beyond its baseline."""
    out = []
    for u in known:
        for end in (u.low, u.high):
            if end != u.default:
                out.append((u.name, end, apply(seed.data, [(f"costs.{u.name}", end)])))
    return out


def _swings(
    known: Sequence[Unknown],
    base: list[Figure],
    moved: dict[tuple[str, float], list[Figure]],
    i: int,
) -> list[Swing]:
    """Figure ``i``'s swing under each unknown, largest first (an end equal to the
    default is the baseline run)."""

    def at(u: Unknown, end: float) -> float | None:
        return base[i].model if end == u.default else moved[(u.name, end)][i].model

    swings = [
        Swing(
            cost=u.name,
            estimate=u.estimate,
            default=u.default,
            low=u.low,
            high=u.high,
            at_low=at(u, u.low),
            at_high=at(u, u.high),
        )
        for u in known
    ]
    return sorted(swings, key=lambda s: (-s.swing, s.cost))


def sensitivity(
    seeds: Sequence[Seed],
    known: Sequence[Unknown],
    sets: Sequence[str] = (),
    plugins: PluginManager | None = None,
    progress: Progress | None = None,
) -> Sensitivity:
    """Every published figure of ``seeds`` with each unknown at either end of its range."""
    pm = plugins or default_manager()
    out: list[FigureSensitivity] = []
    for seed in seeds:
        todo = variants(seed, known)
        total = len(todo) + 1
        if progress is not None:
            progress(seed.name, 0, total)
        base = seed_figures(seed, None, pm)
        moved: dict[tuple[str, float], list[Figure]] = {}
        for done, (name, end, data) in enumerate(todo, start=2):
            moved[(name, end)] = seed_figures(seed, data, pm)
            if progress is not None:
                progress(seed.name, done - 1, total)
        if progress is not None:
            progress(seed.name, total, total)
        for i, fig in enumerate(base):
            if fig.published is not None:
                out.append(FigureSensitivity(figure=fig, swings=_swings(known, base, moved, i)))
    return Sensitivity(
        sets=list(sets),
        applied={s.name: s.applied for s in seeds},
        unknowns=list(known),
        figures=out,
    )
