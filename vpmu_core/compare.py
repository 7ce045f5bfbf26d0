"""``vpmu compare``: one config run under several strategies, side by side.

Why a module of its own: the comparison is the product of this project (the same
guest under each KVM design, priced by one cost table), and the CLI, tests and
notebooks all want the same per-strategy summary without parsing a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .api import run
from .config import WORKLOAD_METRIC, load_dict
from .errors import ConfigError
from .overrides import configured, parse_strategies, strategy_label
from .plugins import PluginManager, default_manager
from .report import RunResult
from .units import STARVED_PCT

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
    error: ConfigError | None = field(default=None, compare=False, repr=False)


Column = RunResult | NotApplicable


#: vpmu's own strategies in the order of the KVM history; a plugin's follow, sorted
HISTORY = ("emulated-legacy", "emulated", "register", "fastpath", "mediated")


def all_strategies(plugins: PluginManager | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every installed strategy with its defaults: the columns of a plain ``vpmu compare``."""
    names = (plugins or default_manager()).names("strategies")
    ordered = [n for n in HISTORY if n in names] + [n for n in names if n not in HISTORY]
    return [(n, {}) for n in ordered]


def column_config(
    data: dict[str, Any], name: str, options: dict[str, Any], plugins: PluginManager
) -> dict[str, Any]:
    """The config tables of one column: the config's own strategy options carry over
    where strategy ``name`` has them, so only the design changes between columns."""
    cls = plugins.get("strategies", name, "--strategies")
    fields = cls.Config.model_fields
    table = {k: v for k, v in data.get("strategy", {}).items() if k in fields and k != "name"}
    table.update(options)
    table["name"] = name
    return {**data, "strategy": table}


def _refusal(exc: ConfigError, name: str, source: str | None) -> NotApplicable:
    """A strategy's refusal as an n/a column; a bad strategy option is raised instead."""
    named = exc.with_source(source) if source and not exc.source else exc
    if exc.key.startswith("strategy.") and exc.key != "strategy.name":
        raise named from None  # a bad option on the command line, not a refusal
    return NotApplicable(name, str(ConfigError(exc.key, exc.value, exc.allowed)), named)


def check_column(
    data: dict[str, Any],
    name: str,
    options: dict[str, Any],
    plugins: PluginManager | None = None,
    source: str | None = None,
) -> NotApplicable | None:
    """Validate one column without running it: None, or the strategy's refusal."""
    pm = plugins or default_manager()
    try:
        load_dict(column_config(data, name, options, pm), pm)
    except ConfigError as exc:
        return _refusal(exc, name, source)
    return None


def run_column(
    data: dict[str, Any],
    name: str,
    options: dict[str, Any],
    plugins: PluginManager | None = None,
    progress: Callable[[float], None] | None = None,
    source: str | None = None,
) -> Column:
    """One column: ``data`` run under strategy ``name`` (:func:`column_config`).

    A strategy that refuses the machine (ConfigError other than a bad option of its
    own) is a :class:`NotApplicable` with the one-line reason; a bad option is raised
    naming ``source``.
    """
    pm = plugins or default_manager()
    try:
        result = run(column_config(data, name, options, pm), pm, progress)
    except ConfigError as exc:
        return _refusal(exc, name, source)
    result.config = source
    return result


def compare(
    config: str | Path | dict[str, Any],
    strategies: list[tuple[str, dict[str, Any]]],
    plugins: PluginManager | None = None,
    progress: Progress | None = None,
    source: str | None = None,
) -> dict[str, Column]:
    """Run ``config`` once per strategy (:func:`run_column`).

    If every column refuses, the config itself is at fault and the first refusal
    is raised.
    """
    pm = plugins or default_manager()
    data, read_from = configured(config)
    source = source or read_from
    results: dict[str, Column] = {}
    for name, options in strategies:
        label = strategy_label(name, options)
        tell = None if progress is None else (lambda f, label=label: progress(label, f))
        results[label] = run_column(data, name, options, pm, tell, source)
    refused = [r for r in results.values() if isinstance(r, NotApplicable)]
    if refused and len(refused) == len(results) and refused[0].error is not None:
        raise refused[0].error
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
        "steady_ns": result.cost.steady_ns,
        "steady_pct": result.cost.steady_pct,
        "one_time_ns": sum(result.cost.one_time.values()),
        "one_time": result.cost.one_time,
        "dominant": result.cost.dominant,
        "operations": result.operations,
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


#: the metrics whose figure is the run's priced overhead: only for these is the
#: mechanism the run spends most on (``Cell.dominant``) what the figure is made of
OVERHEAD_METRICS = frozenset({"score", "time"})


def dominant_is_the_figure_s(cell: Cell) -> bool:
    """Whether ``cell.dominant`` explains the figure: a sample rate or a workload's own
    figure (skip-reprogram's 97 ns kvm_pmu_handle_event) is not the run's overhead,
    whose dominant (there events:ds_buffers_cpu) is of the run, not of the figure."""
    return cell.metric in OVERHEAD_METRICS


def starved(cell: Cell) -> bool:
    """Whether a ``score`` or ``time`` figure is of a guest its vPMU starved: an
    overhead of at least ``units.STARVED_PCT`` of guest time, which a score shows only
    as a share near 100% (the 10-event emulated mediated cell's 99.9955%)."""
    if cell.model is None or cell.metric not in OVERHEAD_METRICS:
        return False
    if cell.metric == "time":
        return cell.model >= STARVED_PCT
    # score = O/(T+O), so O/T = score / (100 - score)
    return cell.model >= 100.0 or 100.0 * cell.model / (100.0 - cell.model) >= STARVED_PCT


def relative_error(model: float | None, published: float | None) -> float | None:
    """(model - published) / published, in %; None without both (or a zero published)."""
    if model is None or published is None or published != published or published == 0:
        return None
    return 100.0 * (model - published) / published


def has_table(config: str | Path | dict[str, Any]) -> bool:
    data, _ = configured(config)
    return bool(data.get("compare", {}).get("strategies"))


def table_runs(config: str | Path | dict[str, Any]) -> list[tuple[str, str]]:
    """(row, column) of every run the table makes, in order (for a progress display)."""
    data, _ = configured(config)
    cmp = data.get("compare", {})
    labels = cmp.get("labels") or cmp.get("strategies", [])
    rows = [r.get("label", "") for r in cmp.get("rows", [])] or [""]
    return [(r, c) for r in rows for c in labels]


def compare_table(
    config: str | Path | dict[str, Any],
    plugins: PluginManager | None = None,
    progress: Callable[[str, str, float], None] | None = None,
    source: str | None = None,
) -> Table:
    """Run the config's ``[compare]`` table: each row's workload under each column's
    strategy, priced with the one cost table, set beside the published figures."""
    pm = plugins or default_manager()
    data, read_from = configured(config)
    source = source or read_from
    cfg = load_dict(data, pm, source=source)  # validates the whole file, [compare] included
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
                col = labels[[strategy_label(n, o) for n, o in specs].index(label)]
                progress(row_label, col, f)

        results = compare(row_data, specs, pm, tell, source)
        metric, unit = cmp.row_metric(row)
        for i, (label, result) in enumerate(results.items()):
            model = None if isinstance(result, NotApplicable) else overhead(result, metric)
            pub = row.published[i] if row is not None and row.published else None
            if pub is not None and pub != pub:  # nan: the source did not measure it
                pub = None
            cost = None if isinstance(result, NotApplicable) else result.cost
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
                    dominant=cost.dominant if cost else None,
                    dominant_pct=cost.dominant_pct if cost else None,
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
