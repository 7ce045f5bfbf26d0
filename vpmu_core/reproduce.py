"""``vpmu reproduce``: every published figure the shipped configs carry, modelled again.

Why one command: each seed config's ``[compare]`` table pairs the model with the
figures a source published (vpmu_core.compare). Run one by one, a reader had to
collect seven tables to see how far the model is from the literature; here every
figure is one row with its relative error and the mechanism dominating the run that
produced it (the priced mechanism the run's ledger spends most on,
``Priced.dominant``, as ``vpmu compare`` shows it).

Why ``--set`` may name a config: the mediated table runs 56 vCPUs for 10 s per cell
and the others a handful of operations, so one shrink does not fit all. ``KEY=VALUE``
goes to every config that has the key (a ``workload.*`` key only to configs whose
workload kind has it); ``SEED:KEY=VALUE`` to that config only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .compare import Cell, compare_table, table_runs
from .errors import ConfigError
from .overrides import apply, configured, parse_set
from .plugins import PluginManager, default_manager

FORMAT = "vpmu-reproduce/1"
#: the shipped configs: ``configs/`` of the source tree vpmu runs from (an editable
#: install, as the README's), so ``vpmu reproduce`` works from any directory
CONFIGS = Path(__file__).resolve().parent.parent / "configs"

#: progress of one table run: (seed, row, column, share done)
Progress = Callable[[str, str, str, float], None]


class Figure(Cell):
    """A table's cell with the seed it comes from and what the model's run is mostly
    made of: one row of ``vpmu reproduce``."""

    seed: str = Field(description="the config's file stem, e.g. seed-register")
    config: str


class Reproduction(BaseModel):
    """What ``vpmu reproduce --json`` writes."""

    format: str = FORMAT
    sets: list[str] = Field(description="the --set items as given")
    configs: dict[str, str] = Field(description="seed -> config file")
    applied: dict[str, list[str]] = Field(description="seed -> the KEY=VALUE items it ran with")
    figures: list[Figure] = Field(description="every cell of every table, published or not")

    def published(self) -> list[Figure]:
        """The figures a source published (a ``nan`` cell is one it did not measure)."""
        return [f for f in self.figures if f.published is not None]


@dataclass(frozen=True)
class Seed:
    """A shipped config with published figures, and the overrides it runs with."""

    name: str
    path: Path
    data: dict[str, Any]
    applied: list[str]


def _published(data: dict[str, Any]) -> bool:
    rows = data.get("compare", {}).get("rows", [])
    return any(
        isinstance(p, (int, float)) and not math.isnan(p)
        for row in rows
        for p in row.get("published") or []
    )


def discover(directory: str | Path = CONFIGS) -> dict[str, Path]:
    """Every config in ``directory`` whose ``[compare]`` table has a published figure."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError("--configs", str(directory), "a directory of TOML configs")
    found = {p.stem: p for p in sorted(root.glob("*.toml")) if _published(configured(p)[0])}
    if not found:
        raise ConfigError("--configs", str(directory), "holds no config with published figures")
    return found


def select(found: dict[str, Path], only: Sequence[str] = ()) -> dict[str, Path]:
    """``--only``: a seed by its file stem, with or without ``seed-``."""
    if not only:
        return found
    picked: dict[str, Path] = {}
    for name in only:
        stem = name if name in found else f"seed-{name}"
        if stem not in found:
            raise ConfigError("--only", name, f"one of {', '.join(found)}")
        picked[stem] = found[stem]
    return picked


def _scope(item: str) -> tuple[str | None, str]:
    """``seed-x:KEY=VALUE`` -> ``("seed-x", "KEY=VALUE")``; no scope before the ``=``."""
    head, colon, rest = item.partition(":")
    if colon and "=" not in head:
        return head.strip(), rest
    return None, item


def _has_key(data: dict[str, Any], key: str, pm: PluginManager) -> bool:
    """Whether an unscoped ``--set`` key belongs to this config: a ``workload.*`` key
    only where the workload kind has that field (the toggle workload has no duration)."""
    table, _, rest = key.partition(".")
    if table != "workload" or not rest:
        return True
    kind = data.get("workload", {}).get("kind")
    cls = pm.registry["workloads"].get(kind) if isinstance(kind, str) else None
    return cls is None or rest.partition(".")[0] in cls.Config.model_fields


def prepare(
    paths: dict[str, Path], sets: Sequence[str] = (), plugins: PluginManager | None = None
) -> list[Seed]:
    """Each selected config with the ``--set`` items that apply to it.

    A scoped item naming no selected config, or an unscoped one no config has, is a
    ConfigError naming ``--set``: it would silently change nothing.
    """
    pm = plugins or default_manager()
    scoped = [(*_scope(item), item) for item in sets]
    for seed, _, item in scoped:
        if seed is not None and seed not in paths and f"seed-{seed}" not in paths:
            raise ConfigError("--set", item, f"scope one of {', '.join(paths)}")
    seeds: list[Seed] = []
    used: set[str] = set()
    for name, path in paths.items():
        data, _ = configured(path)
        applied: list[str] = []
        for seed, text, item in scoped:
            if seed is not None and name not in (seed, f"seed-{seed}"):
                continue
            key, val = parse_set(text)
            if seed is None and not _has_key(data, key, pm):
                continue
            data = apply(data, [(key, val)])
            applied.append(text)
            used.add(item)
        seeds.append(Seed(name, path, data, applied))
    for _, _, item in scoped:
        if item not in used:
            raise ConfigError("--set", item, "no selected config has this key")
    return seeds


def seed_figures(
    seed: Seed,
    data: dict[str, Any] | None = None,
    plugins: PluginManager | None = None,
    progress: Progress | None = None,
) -> list[Figure]:
    """One run of a seed's table as figures: what :func:`reproduce` reports and what
    ``--sensitivity`` runs as its baseline (``data`` None) and each cost end (``data``:
    the seed's tables changed further)."""

    def tell(row: str, col: str, f: float) -> None:
        if progress is not None:
            progress(seed.name, row, col, f)

    table = compare_table(seed.data if data is None else data, plugins, tell, source=str(seed.path))
    if progress is not None:  # a workload that cannot tell its progress is done now too
        for row, col in table_runs(seed.data):
            progress(seed.name, row, col, 1.0)
    return [Figure(**c.model_dump(), seed=seed.name, config=str(seed.path)) for c in table.cells]


def runs(seeds: Sequence[Seed]) -> list[tuple[str, str, str]]:
    """(seed, row, column) of every run :func:`reproduce` makes, in order."""
    return [(s.name, r, c) for s in seeds for r, c in table_runs(s.data)]


def reproduce(
    seeds: Sequence[Seed],
    sets: Sequence[str] = (),
    plugins: PluginManager | None = None,
    progress: Progress | None = None,
) -> Reproduction:
    """Run every seed's table and gather its figures (:func:`prepare` makes ``seeds``)."""
    pm = plugins or default_manager()
    found: list[Figure] = []
    for seed in seeds:
        found += seed_figures(seed, None, pm, progress)
    return Reproduction(
        sets=list(sets),
        configs={s.name: str(s.path) for s in seeds},
        applied={s.name: s.applied for s in seeds},
        figures=found,
    )
