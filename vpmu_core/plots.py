"""Plots of sweeps and comparisons (matplotlib, the optional ``.[plot]`` extra).

Why these plots and no others: a sweep asks how a design's overhead grows with a
parameter and where designs cross, so it is one line per strategy against the swept
parameter (a second parameter makes facets); a comparison asks how designs rank and
how far the model is from the published figure, so it is grouped bars with the
published value marked. Every axis names its unit; the title names the config.
Files are PNG or SVG by extension, written atomically; matplotlib is imported only
when a plot is asked for.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .io import atomic_write_bytes
from .overrides import value

FORMATS = (".png", ".svg")

#: the unit of a swept key, by its last part (``workload.freq`` -> ``freq``)
UNITS = {
    "freq": "samples/s per event",
    "duration_ms": "ms",
    "vcpus": "vCPUs",
    "pcpus": "pCPUs",
    "hz": "Hz",
    "gp_counters": "counters",
    "fixed_counters": "counters",
    "writes": "writes",
    "period": "events",
    "interval_ms": "ms",
    "gap_us": "µs",
    "events": "events",
}


def check_plot_path(path: str | Path) -> None:
    """Refuse, before anything runs, a plot file of no known format or without matplotlib."""
    if Path(path).suffix.lower() not in FORMATS:
        raise ConfigError("--plot", str(path), "a .png or .svg file")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--plot", str(path), 'needs matplotlib: pip install -e ".[plot]"'
        ) from None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    # the same plot is the same file: no date, no random ids in the SVG
    matplotlib.rcParams["svg.hashsalt"] = "vpmu"
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path, close: bool = True) -> None:
    """Write ``fig`` atomically; ``close=False`` keeps it for another format."""
    plt = _pyplot()
    fmt = Path(path).suffix.lower().lstrip(".")
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata=meta)
    if close:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def title(config: str | Path | None, sets: Sequence[str] = ()) -> str:
    """A plot's title: the config's file name and the keys the command line changed."""
    name = Path(config).name if config is not None else "config"
    return f"{name} ({', '.join(sets)})" if sets else name


def axis_label(key: str) -> str:
    """``workload.freq`` -> ``workload.freq (samples/s per event)``."""
    unit = UNITS.get(key.rpartition(".")[2])
    return f"{key} ({unit})" if unit else key


def _number(text: str) -> float | None:
    v = value(text)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, list):
        return float(len(v))  # a list of events plots by its length
    return None


def metric_of(rows: Sequence[dict[str, Any]]) -> tuple[str, str, float]:
    """The figure a sweep plots: the steady-state share of guest time, or the time per
    operation for a workload of a handful of operations (``key``, axis label, scale)."""
    if any(r.get("ns_per_operation") is not None for r in rows):
        return "ns_per_operation", "overhead per operation (µs, steady state)", 1e-3
    return "steady_pct", "overhead (% of guest time, steady state)", 1.0


def plot_sweep(
    rows: Sequence[dict[str, Any]],
    params: dict[str, list[str]],
    strategies: Sequence[str],
    path: str | Path,
    config: str | None,
) -> None:
    """The metric against the first swept key, one line per strategy, one facet per
    value of the other keys; an ``n/a`` point is a gap with a note under the facet."""
    plt = _pyplot()
    keys = list(params)
    x_key, facet_keys = keys[0], keys[1:]
    facets = list(itertools.product(*(params[k] for k in facet_keys))) or [()]
    metric, ylabel, scale = metric_of(rows)
    xs = [_number(t) for t in params[x_key]]
    numeric = all(x is not None for x in xs)
    positions = [x if numeric and x is not None else float(i) for i, x in enumerate(xs)]
    spread = numeric and min(positions) > 0 and max(positions) / min(positions) >= 10
    n = len(facets)
    cols = min(n, 3)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        nrows, cols, figsize=(5.2 * cols, 3.9 * nrows), squeeze=False, sharey=True
    )
    markers = "osD^v<>"
    highest = 0.0
    for f, facet in enumerate(facets):
        ax = axes[f // cols][f % cols]
        where = dict(zip(facet_keys, facet, strict=True))
        refused: list[str] = []
        for s, strategy in enumerate(strategies):
            pts = []
            for x_text, pos in zip(params[x_key], positions, strict=True):
                row = next(
                    (
                        r
                        for r in rows
                        if r["strategy"] == strategy
                        and str(r[x_key]) == x_text
                        and all(str(r[k]) == v for k, v in where.items())
                    ),
                    None,
                )
                if row is None or row.get(metric) is None:
                    if row is not None and "n/a" in row:
                        refused.append(f"{strategy} n/a at {x_text}")
                    pts.append((pos, float("nan")))
                else:
                    pts.append((pos, float(row[metric]) * scale))
                    highest = max(highest, pts[-1][1])
            ax.plot(
                [p for p, _ in pts],
                [v for _, v in pts],
                marker=markers[s % len(markers)],
                label=strategy,
            )
        if spread:
            ax.set_xscale("log")
        ax.set_xticks(positions)
        ax.set_xticklabels(params[x_key])
        ax.minorticks_off()
        ax.set_xlabel(axis_label(x_key) + (", log scale" if spread else ""))
        if f % cols == 0:
            ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if where:
            ax.set_title(", ".join(f"{k} = {v}" for k, v in where.items()), fontsize=10)
        if refused:
            ax.annotate(
                "; ".join(refused),
                (0.02, 0.02),
                xycoords="axes fraction",
                fontsize=8,
                color="0.35",
            )
    for f in range(n, nrows * cols):
        axes[f // cols][f % cols].set_visible(False)
    # one scale from 0 for every facet, set once all are drawn (sharey would keep the
    # first facet's limits)
    axes[0][0].set_ylim(0, highest * 1.08 if highest > 0 else 1)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        names,
        title="strategy",
        fontsize=9,
        loc="lower center",
        ncol=min(len(names), 3),
        frameon=False,
    )
    fig.suptitle(f"{config or 'config'}\nsteady-state overhead vs {x_key}", fontsize=11)
    legend_rows = (len(names) + 2) // 3
    fig.tight_layout(rect=(0, 0.06 + 0.05 * legend_rows / nrows, 1, 1))
    _save(fig, path)


def _bars(
    groups: Sequence[str],
    series: Sequence[str],
    values: dict[tuple[str, str], float | None],
    published: dict[tuple[str, str], float],
    ylabel: str,
    title: str,
    path: str | Path,
) -> None:
    """Grouped bars: one group per ``groups`` item, one bar per series, each labelled
    with its value (``n/a`` where the strategy refused); a published figure is a black
    line across its bar. One group of bars is labelled by series on the x axis instead."""
    plt = _pyplot()
    single = len(groups) == 1
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 + 1.15 * len(groups) * len(series)), 4.6))
    top = max([v for v in values.values() if v is not None] + list(published.values()) + [0.0])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    marked = False
    for s, name in enumerate(series):
        xs = [g + (s - (len(series) - 1) / 2) * width for g in range(len(groups))]
        hs = [values.get((grp, name)) for grp in groups]
        ax.bar(
            xs,
            [0.0 if h is None else h for h in hs],
            width * 0.92,
            label=None if single else name,
            color=colors[s % len(colors)],
        )
        for x, h, grp in zip(xs, hs, groups, strict=True):
            pub = published.get((grp, name))
            if pub is not None:
                ax.hlines(
                    pub,
                    x - width * 0.46,
                    x + width * 0.46,
                    colors="black",
                    linewidths=2.2,
                    label=None if marked else "published",
                )
                marked = True
            label = "n/a" if h is None else f"{h:.3g}"
            if pub is not None:
                label += f"\n(published {pub:.3g})"
            ax.annotate(
                label,
                (x, max(0.0 if h is None else h, pub or 0.0)),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
    if single:
        ax.set_xticks([(s - (len(series) - 1) / 2) * width for s in range(len(series))])
        ax.set_xticklabels(series, rotation=20 if len(series) > 4 else 0)
    else:
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.grid(True, axis="y", alpha=0.3)
    if not single or marked:
        ax.legend(
            fontsize=9,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.1),
            ncol=min(len(series) + int(marked), 4),
            frameon=False,
        )
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def plot_table(table: Any, path: str | Path, config: str | None) -> None:
    """A config's ``[compare]`` table: rows as groups, columns as bars, published marked."""
    first = table.cells[0] if table.cells else None
    ylabel = f"{first.metric} ({first.unit})" if first is not None else table.metric
    values = {(c.row or "-", c.column): c.model for c in table.cells}
    published = {
        (c.row or "-", c.column): c.published for c in table.cells if c.published is not None
    }
    groups = [r or "-" for r in table.rows]
    heading = f"{config or table.config}\nthe model vs the published figures"
    _bars(groups, table.columns, values, published, ylabel, heading, path)


def plot_compare(payload: dict[str, dict[str, Any]], path: str | Path, config: str | None) -> None:
    """``vpmu compare`` without a table: one bar per strategy, ``n/a`` where it refused."""
    per_op = any(s.get("operations") for s in payload.values())
    values: dict[tuple[str, str], float | None] = {}
    for label, s in payload.items():
        if "n/a" in s:
            values[("", label)] = None
        elif per_op:
            values[("", label)] = s["steady_ns"] / s["operations"] / 1e3
        else:
            values[("", label)] = s["steady_pct"]
    ylabel = (
        "overhead per operation (µs, steady state)"
        if per_op
        else "overhead (% of guest time, steady state)"
    )
    heading = f"{config}\nstrategies side by side (n/a: the strategy refuses this config)"
    _bars([""], list(payload), values, {}, ylabel, heading, path)
