"""``vpmu compare``: one config run under several strategies, side by side.

Why a module of its own: the comparison is the product of this project (the same
guest under each KVM design, priced by one cost table), and the CLI, tests and
notebooks all want the same per-strategy summary without parsing a table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .api import run
from .config import WORKLOAD_METRIC
from .errors import ConfigError
from .overrides import parse_strategies
from .plugins import PluginManager, default_manager
from .report import RunResult

PERF_KEYS = ("create", "release", "reuse", "period")


Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class NotApplicable:
    """A column whose strategy refused the config (its ``check`` raised ConfigError).

    Why not abort: a comparison asks "what would each design cost here", and "this
    design cannot run here, because ..." is an answer; the other columns still run.
    """

    strategy: str
    reason: str


Column = RunResult | NotApplicable


def read_config(config: str | Path | dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The raw TOML tables of a config (and its path), before validation."""
    if isinstance(config, dict):
        return config, None
    path = Path(config)
    source = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), source
    except OSError as exc:
        raise ConfigError("file", source, f"cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("toml", source, f"not valid TOML: {exc}") from None


def compare(
    config: str | Path | dict[str, Any],
    strategies: list[tuple[str, dict[str, Any]]],
    plugins: PluginManager | None = None,
    progress: Progress | None = None,
    source: str | None = None,
) -> dict[str, Column]:
    """Run ``config`` once per strategy; the config's own strategy options carry over
    to every strategy that has them, so only the design changes between columns.

    A strategy that refuses the machine (ConfigError other than a bad option of its
    own) gets a :class:`NotApplicable` column with the one-line reason; if every
    column refuses, the config itself is at fault and the first error is raised.
    """
    pm = plugins or default_manager()
    data, read_from = read_config(config)
    source = source or read_from
    base = dict(data.get("strategy", {}))
    results: dict[str, Column] = {}
    first: ConfigError | None = None
    for name, options in strategies:
        cls = pm.get("strategies", name, "--strategies")
        fields = cls.Config.model_fields
        table = {k: v for k, v in base.items() if k in fields and k != "name"}
        table.update(options)
        table["name"] = name
        label = _label(name, options)
        tell = None if progress is None else (lambda f, label=label: progress(label, f))
        try:
            result = run({**data, "strategy": table}, pm, tell)
        except ConfigError as exc:
            if exc.key.startswith("strategy.") and exc.key != "strategy.name":
                raise  # a bad option on the command line, not a refusal
            first = first or exc
            results[label] = NotApplicable(name, str(ConfigError(exc.key, exc.value, exc.allowed)))
            continue
        result.config = source
        results[label] = result
    if first is not None and all(isinstance(r, NotApplicable) for r in results.values()):
        raise first
    return results


def summary(result: Column) -> dict[str, Any]:
    """The per-strategy JSON record of ``vpmu compare --json`` (``{"n/a": reason}``
    for a strategy that refused the config)."""
    if isinstance(result, NotApplicable):
        return {"n/a": result.reason}
    led = result.ledger
    perf = led.get("perf_ops", {})
    return {
        "overhead_ns": result.cost.total_ns,
        "overhead_pct": result.cost.overhead_pct,
        "exits": led.get("exits", {}),
        "perf_ops": {k: perf.get(k, 0) for k in PERF_KEYS}
        | {k: v for k, v in perf.items() if k not in PERF_KEYS},
        "pmis": led.get("pmis", {}),
        "context_switches": led.get("context_switches", {}),
        "switch_msrs": led.get("switch_msrs", {}),
        "count_error_pct": result.count_error_pct,
        "score_loss_pct": overhead(result, "score"),
        "host_blind_s": result.host_blind_s,
        "ns_per_op": result.cost.ns_per_op,
        "workload": result.extra,
    }


# ------------------------------------------------------- a config's own table
class Cell(BaseModel):
    """One published figure beside the model's: a row's metric under one column.

    ``metric``/``unit`` say what the number is, ``source`` where the published value
    comes from and ``design`` which published design the column models, so a reader
    (or ``vpmu reproduce``) needs nothing but the cell.
    """

    row: str
    column: str
    strategy: str
    design: str | None = None
    metric: str
    unit: str
    source: str | None = None
    model: float | None
    published: float | None
    rel_error_pct: float | None
    dominant: str | None = Field(
        None, description="the mechanism with the largest share of the run's priced ledger"
    )
    dominant_pct: float | None = Field(None, description="that mechanism's share, in %")


class Table(BaseModel):
    config: str | None
    metric: str
    columns: list[str]
    rows: list[str]
    cells: list[Cell]
    runs: dict[str, dict[str, Any]]


def overhead(result: RunResult, metric: str) -> float | None:
    """A row's figure from one run. ``score`` is the share of the score lost,
    O/(T+O) (a benchmark score is inverse run time); ``time`` is O/T; ``samples``
    the samples perf took as a % of the asked rate; ``workload:<key>`` a figure
    the workload reported (None when it reported none)."""
    if metric.startswith(WORKLOAD_METRIC):
        value = result.extra.get(metric[len(WORKLOAD_METRIC) :])
        return float(value) if isinstance(value, (int, float)) else None
    if metric == "samples":
        taken = result.extra.get("samples_taken")
        expected = result.extra.get("samples_expected")
        return 100.0 * taken / expected if taken is not None and expected else None
    t = result.cost.guest_ns
    o = result.cost.total_ns
    if t <= 0:
        return None
    return 100.0 * o / (t + o) if metric == "score" else 100.0 * o / t


def dominant(result: RunResult) -> tuple[str, float] | None:
    """The mechanism that costs the run most and its share of the priced ledger (%)."""
    by = result.cost.by_mechanism
    total = result.cost.total_ns
    if not by or total <= 0:
        return None
    name = max(by, key=lambda k: by[k])
    return name, 100.0 * by[name] / total


def relative_error(model: float | None, published: float | None) -> float | None:
    """(model - published) / published, in %; None without both (or a zero published)."""
    if model is None or published is None or published != published or published == 0:
        return None
    return 100.0 * (model - published) / published


def has_table(config: str | Path | dict[str, Any]) -> bool:
    data, _ = read_config(config)
    return bool(data.get("compare", {}).get("strategies"))


def table_runs(config: str | Path | dict[str, Any]) -> list[tuple[str, str]]:
    """(row, column) of every run the table makes, in order (for a progress display)."""
    data, _ = read_config(config)
    cmp = data.get("compare", {})
    labels = cmp.get("labels") or cmp.get("strategies", [])
    rows = [r.get("label", "") for r in cmp.get("rows", [])] or [""]
    return [(r, c) for r in rows for c in labels]


def compare_table(
    config: str | Path | dict[str, Any],
    plugins: PluginManager | None = None,
    progress: Callable[[str, str, float], None] | None = None,
) -> Table:
    """Run the config's ``[compare]`` table: each row's workload under each column's
    strategy, priced with the one cost table, set beside the published figures."""
    from .api import load_config

    pm = plugins or default_manager()
    data, source = read_config(config)
    cfg = load_config(data, pm)  # validates the whole file, [compare] included
    cmp = cfg.compare
    if cmp is None or not cmp.strategies:
        raise ConfigError("compare.strategies", None, "this config has no comparison table")
    specs = parse_strategies(",".join(cmp.strategies))
    labels = cmp.labels or list(cmp.strategies)
    rows = cmp.rows or []
    cells: list[Cell] = []
    runs: dict[str, dict[str, Any]] = {}
    plan = rows or [None]
    for row in plan:
        row_label = row.label if row is not None else ""
        wl = dict(data.get("workload", {}))
        if row is not None:
            wl.update(row.workload)
        row_data = {k: v for k, v in data.items() if k != "compare"} | {"workload": wl}

        def tell(label: str, f: float, row_label: str = row_label) -> None:
            if progress is not None:
                col = labels[[_label(n, o) for n, o in specs].index(label)]
                progress(row_label, col, f)

        results = compare(row_data, specs, pm, tell, source)
        metric, unit = cmp.row_metric(row)
        for i, (label, result) in enumerate(results.items()):
            model = None if isinstance(result, NotApplicable) else overhead(result, metric)
            pub = row.published[i] if row is not None and row.published else None
            if pub is not None and pub != pub:  # nan: the source did not measure it
                pub = None
            top = None if isinstance(result, NotApplicable) else dominant(result)
            cells.append(
                Cell(
                    row=row_label,
                    column=labels[i],
                    strategy=label,
                    design=cmp.designs[i] if cmp.designs else None,
                    metric=metric,
                    unit=unit,
                    source=row.source if row is not None else None,
                    model=model,
                    published=pub,
                    rel_error_pct=relative_error(model, pub),
                    dominant=top[0] if top else None,
                    dominant_pct=top[1] if top else None,
                )
            )
            runs[f"{row_label} | {labels[i]}"] = summary(result)
    return Table(
        config=source,
        metric=cmp.metric,
        columns=labels,
        rows=[r.label for r in rows] or [""],
        cells=cells,
        runs=runs,
    )


def _label(name: str, options: dict[str, Any]) -> str:
    return name + "".join(f":{k}={v}" for k, v in sorted(options.items()))
