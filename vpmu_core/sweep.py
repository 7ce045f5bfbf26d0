"""``vpmu sweep``: one config over a grid of overrides, each point under each strategy.

Why a plan before any run: a sweep of a hundred points that fails at point 97 on a
typo wasted the first 96. :func:`plan` applies every point's overrides and validates
the config under every strategy first; a bad key or value is a ConfigError naming
the point, a strategy that refuses a point is an ``n/a`` row (as in ``vpmu compare``).

Why results do not depend on who runs them: a point is a whole config, and a run is a
function of its config (seeds included), so the local process pool, a dask cluster
and a plain loop give the same rows; rows are ordered by point and strategy, never by
completion. Inside a sweep each run simulates its vCPUs in one process
(``workload.workers = 1``): the sweep already has its processes, and sharding is
exact (vpmu_core/workloads/parallel.py), so only the wall time changes.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compare import NotApplicable, check_column, run_column, summary
from .errors import ConfigError
from .overrides import apply, configured, parse_param, strategy_label, value
from .plugins import PluginManager, default_manager

FORMAT = "vpmu-sweep/2"  # /2: the steady state is steady_ns, steady_pct (was overhead_*)


@dataclass(frozen=True)
class Task:
    """One run: a point's config under one strategy."""

    point: int  # 1-based, in grid order
    params: dict[str, str]  # key -> the value as typed
    strategy: str  # the column label
    name: str
    options: dict[str, Any]
    data: dict[str, Any]
    refused: str | None = None  # the strategy's one-line refusal, found by plan()


@dataclass
class Plan:
    """Every task of a sweep, validated, in the order rows are reported."""

    source: str | None
    sets: list[str]
    params: dict[str, list[str]]
    strategies: list[str]
    tasks: list[Task] = field(default_factory=list)

    def header(self) -> dict[str, Any]:
        """What identifies the sweep in its JSON (``--resume`` checks it matches)."""
        return {
            "format": FORMAT,
            "config": self.source,
            "set": self.sets,
            "params": self.params,
            "strategies": self.strategies,
        }


def grid(params: dict[str, list[str]]) -> list[dict[str, str]]:
    """The cartesian product, the first parameter varying slowest."""
    keys = list(params)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*params.values())]


def describe(point: int, params: dict[str, str]) -> str:
    return f"sweep point {point} ({', '.join(f'{k}={v}' for k, v in params.items())})"


def plan(
    config: str | Path | dict[str, Any],
    params: Sequence[str],
    strategies: list[tuple[str, dict[str, Any]]] | None = None,
    sets: Sequence[str] = (),
    plugins: PluginManager | None = None,
) -> Plan:
    """Every point x strategy, validated before anything runs.

    ``params`` are ``KEY=V1,V2`` items (vpmu_core.overrides); without ``strategies``
    the config's own strategy runs. A point every strategy refuses, or with a bad
    key or value, is a ConfigError naming the point.
    """
    pm = plugins or default_manager()
    data, source = configured(config, sets)
    parsed: dict[str, list[str]] = {}
    for item in params:
        key, texts = parse_param(item)
        if key in parsed:
            raise ConfigError("--param", item, f"{key} is swept twice; give its values once")
        parsed[key] = texts
    if not parsed:
        raise ConfigError("--param", None, "sweep at least one key: --param KEY=V1,V2,...")
    out = Plan(source, list(sets), parsed, [])
    single = _single_process(data, pm)
    for i, point in enumerate(grid(parsed), start=1):
        where = f"{source or 'config'}, {describe(i, point)}"
        try:
            point_data = apply(data, [(k, value(v)) for k, v in point.items()])
        except ConfigError as exc:
            raise exc.with_source(where) from None
        point_data = apply(point_data, single)
        # without --strategies, the point's own strategy (a --param may sweep it)
        own = point_data.get("strategy", {}).get("name", "emulated")
        specs = strategies or [(str(own), {})]
        tasks = []
        for name, options in specs:
            label = strategy_label(name, options)
            if label not in out.strategies:
                out.strategies.append(label)
            refused = check_column(point_data, name, options, pm, where)
            reason = None if refused is None else refused.reason
            tasks.append(Task(i, point, label, name, options, point_data, reason))
        if all(t.refused is not None for t in tasks):
            first = check_column(point_data, specs[0][0], specs[0][1], pm, where)
            assert first is not None and first.error is not None
            raise first.error
        out.tasks += tasks
    return out


def _single_process(data: dict[str, Any], pm: PluginManager) -> list[tuple[str, Any]]:
    """``workload.workers = 1`` for a workload that shards (see the module docstring)."""
    kind = data.get("workload", {}).get("kind")
    cls = pm.registry["workloads"].get(kind) if isinstance(kind, str) else None
    if cls is not None and "workers" in cls.Config.model_fields:
        return [("workload.workers", 1)]
    return []


def run_task(task: Task) -> dict[str, Any]:
    """One task's row (picklable: what a pool or a dask worker calls)."""
    row: dict[str, Any] = {"point": task.point, **task.params, "strategy": task.strategy}
    if task.refused is not None:
        return row | {"n/a": task.refused}
    result = run_column(task.data, task.name, task.options)
    if isinstance(result, NotApplicable):
        return row | {"n/a": result.reason}
    s = summary(result)
    extra = result.extra
    lost = [
        extra[k] for k in ("samples_lost_throttling", "samples_lost_host_contention") if k in extra
    ]
    ops = s["operations"]
    return row | {
        "steady_ns": s["steady_ns"],
        "steady_pct": s["steady_pct"],
        "ns_per_operation": s["steady_ns"] / ops if ops else None,
        "one_time_ns": s["one_time_ns"],
        "total_ns": s["overhead_ns"],
        "dominant": s["dominant"],
        "exits": s["exits"],
        "perf_ops": s["perf_ops"],
        "pmis": s["pmis"],
        "count_error_pct": s["count_error_pct"],
        "samples_lost": sum(lost) if lost else None,
    }


def key_of(row: dict[str, Any], params: Iterable[str]) -> tuple[Any, ...]:
    """A row's identity in a sweep: its parameter values (as read) and its strategy."""
    return (*(json.dumps(value(str(row[k])), sort_keys=True) for k in params), row["strategy"])


Runner = Callable[[list[Task], Callable[[Task, dict[str, Any]], None]], None]


def run(
    sweep: Plan,
    runner: Runner,
    done: Sequence[dict[str, Any]] = (),
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every task not in ``done`` with ``runner``; rows in plan order.

    ``on_row`` hears each row as it finishes (to save a resumable file).
    """
    have = {key_of(r, sweep.params): r for r in done}
    rows: dict[int, dict[str, Any]] = {}
    todo = []
    index = {id(t): i for i, t in enumerate(sweep.tasks)}
    for i, task in enumerate(sweep.tasks):
        old = have.get(key_of({**task.params, "strategy": task.strategy}, sweep.params))
        if old is not None:
            rows[i] = {"point": task.point, **{k: v for k, v in old.items() if k != "point"}}
        else:
            todo.append(task)

    def finished(task: Task, row: dict[str, Any]) -> None:
        rows[index[id(task)]] = row
        if on_row is not None:
            on_row(row)

    runner(todo, finished)
    return [rows[i] for i in sorted(rows)]


def serial(tasks: list[Task], finished: Callable[[Task, dict[str, Any]], None]) -> None:
    """Run the tasks one after the other in this process."""
    for task in tasks:
        finished(task, run_task(task))


# ------------------------------------------------------------------- outputs
def to_json(sweep: Plan, rows: list[dict[str, Any]]) -> str:
    return json.dumps(sweep.header() | {"rows": rows}, indent=2) + "\n"  # params in their order


def read_resume(path: str | Path, sweep: Plan) -> list[dict[str, Any]]:
    """The rows of a sweep's JSON (``--json`` or ``--resume`` file) of this same sweep."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("--resume", str(path), f"not a vpmu sweep JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError("--resume", str(path), f"not a vpmu sweep JSON ({FORMAT})")
    mine = sweep.header()
    for key in ("config", "set"):
        if data.get(key) != mine[key]:
            raise ConfigError(
                "--resume",
                str(path),
                f"a sweep with {key} {data.get(key)!r}, not {mine[key]!r}: resume the same sweep",
            )
    if set(data.get("params", {})) != set(sweep.params):
        raise ConfigError(
            "--resume", str(path), f"a sweep over {sorted(data.get('params', {}))}, not this one"
        )
    rows: list[dict[str, Any]] = data.get("rows", [])
    return rows


def columns(sweep: Plan, rows: list[dict[str, Any]]) -> list[str]:
    """CSV columns: point, the parameters, strategy, the figures, exits/perf/PMIs by key."""
    nested = {
        cat: sorted({k for r in rows for k in r.get(cat, {})})
        for cat in ("exits", "perf_ops", "pmis")
    }
    return [
        "point",
        *sweep.params,
        "strategy",
        "steady_ns",
        "steady_pct",
        "ns_per_operation",
        "one_time_ns",
        "total_ns",
        "dominant",
        "exits",
        *(f"exits.{k}" for k in nested["exits"]),
        *(f"perf_ops.{k}" for k in nested["perf_ops"]),
        *(f"pmis.{k}" for k in nested["pmis"]),
        "count_error_pct",
        "samples_lost",
        "n/a",
    ]


def to_csv(sweep: Plan, rows: list[dict[str, Any]]) -> str:
    """One line per point and strategy; numbers as Python writes them (exact, stable)."""
    cols = columns(sweep, rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        flat: dict[str, Any] = {k: v for k, v in r.items() if not isinstance(v, dict)}
        if "n/a" not in r:
            flat["exits"] = sum(r["exits"].values())
            for c in cols:
                cat, dot, k = c.partition(".")
                if dot and cat in ("exits", "perf_ops", "pmis"):
                    flat[c] = r[cat].get(k, 0)
        w.writerow(["" if flat.get(c) is None else flat.get(c, "") for c in cols])
    return buf.getvalue()
