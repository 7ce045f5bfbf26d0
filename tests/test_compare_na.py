"""A strategy that refuses the config is an ``n/a`` column, not an aborted comparison.

Why: ``vpmu compare`` answers "what would each design cost on this machine"; "the
mediated PMU cannot run on a v2 PMU" is one of the answers, and the other columns
must still be computed and printed.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vpmu_core.cli import app
from vpmu_core.compare import NotApplicable, compare, summary
from vpmu_core.errors import ConfigError

SEED = Path(__file__).resolve().parent.parent / "configs" / "seed-enable-bit.toml"
REASON = (
    "host.version = 2: the mediated PMU needs an Intel host PMU of version 4+ with "
    "full-width writes and GLOBAL_STATUS_SET"
)


def small() -> dict[str, Any]:
    data = tomllib.loads(SEED.read_text(encoding="utf-8"))
    data["workload"]["writes"] = 20
    return data


def test_refusing_strategy_is_not_applicable_and_the_others_run() -> None:
    results = compare(small(), [("emulated", {}), ("mediated", {}), ("fastpath", {})])
    assert list(results) == ["emulated", "mediated", "fastpath"]
    assert results["mediated"] == NotApplicable("mediated", REASON)
    assert summary(results["mediated"]) == {"n/a": REASON}
    assert summary(results["emulated"])["workload"]["writes"] == 20
    assert summary(results["fastpath"])["workload"]["writes"] == 20


def test_every_column_refusing_is_the_config_at_fault() -> None:
    with pytest.raises(ConfigError) as info:
        compare(small(), [("mediated", {})])
    assert str(info.value) == REASON


def test_a_bad_option_is_still_an_error() -> None:
    with pytest.raises(ConfigError):
        compare(small(), [("emulated", {"nope": 1}), ("fastpath", {})])


def test_cli_marks_the_column_and_prints_the_reason(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    text = SEED.read_text(encoding="utf-8").replace("writes = 1000", "writes = 20")
    cfg.write_text(text, encoding="utf-8")
    out = tmp_path / "c.json"
    res = CliRunner().invoke(
        app,
        ["compare", str(cfg), "--strategies", "emulated,fastpath,mediated", "--json", str(out)],
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert f"mediated: n/a ({REASON})" in lines
    overhead_row = next(line for line in lines if "overhead per operation" in line)
    assert overhead_row.split("│")[-2].strip() == "n/a"
    data = json.loads(out.read_text())
    assert data["mediated"] == {"n/a": REASON}
    assert data["emulated"]["workload"]["writes"] == 20
    assert data["fastpath"]["workload"]["writes"] == 20
