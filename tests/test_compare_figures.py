"""Every seed config carries its published figures: metric, unit, source, design."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from vpmu_core.api import load_config
from vpmu_core.compare import compare_table, relative_error
from vpmu_core.config import METRICS
from vpmu_core.errors import ConfigError

ROOT = Path(__file__).parent.parent
SEEDS = sorted((ROOT / "configs").glob("seed-*.toml"))


def _load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_every_seed_config_has_a_compare_table_with_designs(path: Path) -> None:
    cfg = load_config(_load(path))
    assert cfg.compare is not None and cfg.compare.strategies, path.name
    assert cfg.compare.designs is not None and len(cfg.compare.designs) == len(
        cfg.compare.strategies
    )
    for row in cfg.compare.rows:
        assert row.source, f"{path.name}: row {row.label!r} names no source"
        metric, unit = cfg.compare.row_metric(row)
        assert unit, (path.name, metric)


# the figures of issue 12's table, each in the seed config that models its setup
PUBLISHED = {
    "seed-register": [2_500_000, 400],
    "seed-skip-reprogram": [85_282_765, 97],
    "seed-legacy-sample-loss": [25.17, 109.19],
    "seed-mediated-table": [33.62, 4.24, 6.21, 79.32, 7.34, 10.45],
}


@pytest.mark.parametrize("stem", sorted(PUBLISHED))
def test_the_published_figures_are_in_their_seed_configs(stem: str) -> None:
    cfg = load_config(_load(ROOT / "configs" / f"{stem}.toml"))
    found = [p for row in cfg.compare.rows for p in (row.published or []) if p == p]
    assert found == PUBLISHED[stem]


def test_a_workload_figure_is_read_from_the_run_and_set_beside_the_published() -> None:
    table = compare_table(ROOT / "configs" / "seed-register.toml")
    legacy, register = table.cells
    assert (legacy.metric, legacy.unit) == ("workload:event-change_ns_per_write", "ns")
    assert legacy.published == 2_500_000 and register.published == 400
    assert legacy.source is not None and "§1a" in legacy.source
    assert legacy.design is not None and "2018" in legacy.design
    run = table.runs[f"{legacy.row} | {legacy.column}"]
    assert legacy.model == run["workload"]["event-change_ns_per_write"]
    assert legacy.rel_error_pct == relative_error(legacy.model, 2_500_000)
    # the run's costliest mechanism: the 88 CPUs' DS buffers at each release + create
    assert legacy.dominant == "events:ds_buffers_cpu"
    assert legacy.dominant_pct is not None and 90 < legacy.dominant_pct < 100
    assert register.dominant == "exit:wrmsr:eventsel"


def test_a_nan_published_cell_is_no_figure() -> None:
    data = _load(ROOT / "configs" / "seed-skip-reprogram.toml")
    data["workload"]["duration_ms"] = 20.0
    table = compare_table(data)
    assert [c.published for c in table.cells] == [85_282_765, 97, None, None]
    assert table.cells[2].rel_error_pct is None and table.cells[2].model is not None


def test_relative_error() -> None:
    assert relative_error(125.0, 100.0) == 25.0
    assert relative_error(None, 100.0) is None
    assert relative_error(1.0, None) is None
    assert relative_error(1.0, 0.0) is None


def test_named_metrics_have_units() -> None:
    assert set(METRICS) == {"score", "time", "samples"}
    assert all(unit == "%" for unit, _ in METRICS.values())


@pytest.mark.parametrize(
    ("row", "key"),
    [
        ({"label": "x", "metric": "workload:foo"}, "compare.rows[0].metric"),
        ({"label": "x", "metric": "latency"}, "compare.rows[0].metric"),
    ],
)
def test_a_bad_figure_is_a_config_error_naming_its_key(row: dict[str, Any], key: str) -> None:
    data = _load(ROOT / "configs" / "seed-register.toml")
    data["compare"]["rows"] = [row]
    with pytest.raises(ConfigError) as exc:
        load_config(data)
    assert exc.value.key == key


def test_designs_must_name_every_column() -> None:
    data = _load(ROOT / "configs" / "seed-register.toml")
    data["compare"]["designs"] = ["one"]
    with pytest.raises(ConfigError) as exc:
        load_config(data)
    assert exc.value.key == "compare.designs"
