"""Tornado charts of ``vpmu reproduce --sensitivity``: which unknowns move a figure.

Why a tornado: a reader asks of each figure "how much of this is known?"; one
horizontal bar per unknown cost, from the figure with that cost at the low end of
its range to the figure at the high end, around the baseline and sorted by swing,
answers it at a glance. The published value is marked so a reader sees whether any
end of any range reaches it. Files are written through vpmu_core.plots (PNG and
SVG, atomically, reproducibly).
"""

from __future__ import annotations

import re
from pathlib import Path

from .plots import _pyplot, _save
from .sensitivity import FigureSensitivity
from .units import TIME_NAMES, duration, time_unit

#: bars drawn at most; the rest are named in a note under the chart
MAX_BARS = 12


def slug(text: str) -> str:
    """A file-name part: ``basic-sampling (6 events)`` -> ``basic-sampling-6-events``."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "figure"


def chart_name(fs: FigureSensitivity) -> str:
    f = fs.figure
    return f"{slug(f.seed)}--{slug(f.row)}--{slug(f.column)}"


def _scale(unit: str, values: list[float]) -> tuple[float, str]:
    """A time axis in the unit that reads best (ns figures span 97 ns to 85 ms)."""
    if unit != "ns":
        return 1.0, unit
    return time_unit(max((abs(v) for v in values), default=0.0))


#: what the axis of a figure says, by its metric (a workload's own figure: its key)
AXIS = {
    "score": "overhead: the share of the score lost",
    "time": "overhead over guest time",
    "samples": "samples taken, share of the asked rate",
}


def axis_label(metric: str, figure: str, unit: str) -> str:
    """``score``, ``%`` -> ``overhead: the share of the score lost (%)``; a workload's
    own figure is named by the row (its key, ``eventsel-write_ns_per_write``, says ns
    on an axis in ms)."""
    return f"{AXIS.get(metric, figure)} ({unit})"


def plot_tornado(fs: FigureSensitivity, directory: str | Path, ran_with: str = "") -> list[Path]:
    """``<dir>/<seed>--<figure>--<column>.png`` and ``.svg`` for one figure;
    ``ran_with`` (the overrides the seed ran with) goes under the title, so a chart of
    a shrunk run does not pass for the published setup."""
    plt = _pyplot()
    f = fs.figure
    base = f.model
    moving = [s for s in fs.swings if s.swing > 0][:MAX_BARS]
    still = [s.cost for s in fs.swings if s.swing == 0]
    rest = [s.cost for s in fs.swings if s.swing > 0][MAX_BARS:]
    ends = [v for s in moving for v in (s.at_low, s.at_high) if v is not None]
    # the axis unit follows the bars: a published figure far off them (85 ms beside
    # 55 µs) is a note in its own unit, not a reason to print 0.0551 ms
    scale, unit = _scale(f.unit, ends + ([base] if base is not None else []))
    rows = max(len(moving), 1)
    fig, ax = plt.subplots(figsize=(10.0, 2.6 + 0.45 * rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn: set[str] = set()  # legend entries made
    for i, s in enumerate(moving):
        y = rows - 1 - i  # the largest swing on top
        ends_of = [
            (s.at_low, colors[0], "the cost at the low end of its range"),
            (s.at_high, colors[1], "the cost at the high end of its range"),
        ]
        # both ends may lie on one side of the baseline (a cheaper handler lets the
        # guest keep more samples): the longer bar first, so the shorter stays seen
        ends_of.sort(key=lambda e: -abs((e[0] or 0.0) - (base or 0.0)))
        for value, color, label in ends_of:
            if value is not None and base is not None:
                ax.barh(
                    y,
                    (value - base) / scale,
                    left=base / scale,
                    height=0.6,
                    color=color,
                    label=label if label not in drawn else None,
                )
                drawn.add(label)
        # the figure at either end, in words: a swing too small to see is still read
        ax.annotate(
            f"{_fmt(s.at_low, scale, unit)} → {_fmt(s.at_high, scale, unit)} "
            f"({_delta(s.at_low, s.at_high, f.unit)})",
            xy=(1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(moving)))
    ax.set_yticklabels(
        [
            f"{s.cost}{' (estimate)' if s.estimate else ''}: {duration(s.low)} – {duration(s.high)}"
            for s in reversed(moving)
        ],
        fontsize=8.5,
    )
    known = ends + ([base] if base is not None else [])
    lo = min(known, default=0.0) / scale
    hi = max(known, default=1.0) / scale
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    left, right = lo - pad, hi + pad
    if base is not None:
        ax.axvline(
            base / scale, color="black", linewidth=1.2, label=f"model: {_fmt(base, scale, unit)}"
        )
    pub = f.published
    if pub is not None:
        p = pub / scale
        span = hi - lo + pad
        if lo - 2 * span <= p <= hi + 2 * span:
            left, right = min(left, p - pad), max(right, p + pad)
            ax.axvline(p, color="crimson", linestyle="--", linewidth=1.5, label="published")
        side = "right" if p > hi else "left"
        where = "" if left <= p <= right else f", off the axis to the {side}"
        ax.annotate(
            f"published: {_fmt(pub, *_scale(f.unit, [pub]), 5)}{where}",
            xy=(0.0, 1.0),
            xycoords="axes fraction",
            xytext=(0, 4),
            textcoords="offset points",
            fontsize=8.5,
            color="crimson",
        )
    ax.set_xlim(left, right)
    ax.set_ylim(-0.7, rows - 0.3)
    ax.set_xlabel(axis_label(f.metric, f.row, unit))
    ax.grid(True, axis="x", alpha=0.3)
    heading = f"{f.seed}: {f.row}\n{f.column}"
    ax.set_title(heading + (f"\nran with {ran_with}" if ran_with else ""), fontsize=11, pad=16)
    notes = []
    if not moving:
        notes.append("no unknown moves this figure")
    if rest:
        notes.append(f"{len(rest)} smaller swings not drawn: {', '.join(rest)}")
    if still:
        notes.append(f"unmoved by: {', '.join(still)}")
    text = "\n".join(_wrap(n) for n in notes)
    lines = text.count("\n") + 1 if text else 0
    bottom = (0.55 + 0.14 * lines) / (2.6 + 0.45 * rows)
    fig.legend(
        fontsize=8,
        loc="lower center",
        ncol=2,
        frameon=False,
        bbox_to_anchor=(0.5, 0.14 * lines / (2.6 + 0.45 * rows)),
    )
    if text:
        fig.text(0.01, 0.005, text, fontsize=7, va="bottom", color="dimgray")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    out = Path(directory)
    paths = [out / f"{chart_name(fs)}{ext}" for ext in (".png", ".svg")]
    for path in paths:
        _save(fig, path, close=path is paths[-1])
    return paths


def _fmt(value: float | None, scale: float, unit: str, digits: int = 3) -> str:
    """A figure on the chart's axis, with its unit: ``21.0 ms``, ``47.3%``; a published
    figure keeps the digits it was published with (``10.45%``)."""
    if value is None:
        return "n/a"
    if unit in TIME_NAMES:  # a time reads best in its own unit, not the axis's
        return duration(value)
    v = value / scale
    text = f"{v:#.{digits}g}" if abs(v) < 10**digits else f"{v:,.0f}"
    if digits > 3:  # as published: no trailing zeros a source did not print
        text = text.rstrip("0").rstrip(".") if "." in text else text
    return f"{text}%" if unit == "%" else f"{text} {unit}"


def _delta(low: float | None, high: float | None, unit: str) -> str:
    """The swing in words, exact where the axis cannot show it: ``+500 ns``, ``-1.20 pp``."""
    if low is None or high is None:
        return "n/a"
    d = high - low
    if unit == "ns":
        return ("+" if d >= 0 else "-") + duration(abs(d))
    return f"{d:+#.3g} {'pp' if unit == '%' else unit}"


def _wrap(text: str, width: int = 140) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
