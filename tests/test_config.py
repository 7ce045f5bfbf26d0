"""Configs: one clear error naming file, key, value and what is allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import vpmu_core as vpmu
from vpmu_core import ConfigError
from vpmu_core.config import root_model


def error(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as exc:
        vpmu.load_config(data)
    return str(exc.value)


def test_misspelt_key_is_named_with_the_allowed_keys() -> None:
    msg = error({"pmu": {"backend": "intel", "gp_countrs": 8}})
    assert msg.startswith("pmu.gp_countrs = 8: unknown key; allowed keys: ")
    assert "gp_counters" in msg


def test_misspelt_table_is_named() -> None:
    assert error({"pmu": {"backend": "intel"}, "machin": {}}).startswith("machin = {}: unknown key")


def test_bad_value_names_key_value_and_range() -> None:
    msg = error({"pmu": {"backend": "intel", "version": 9}})
    assert msg == "pmu.version = 9: must be less than or equal to 6"


def test_uninstalled_plugin_is_named_and_installed_ones_listed() -> None:
    msg = error({"pmu": {"backend": "ibm"}})
    assert msg.startswith("pmu.backend = 'ibm': no installed backend of that name; installed: ")
    assert "intel" in msg
    msg = error({"pmu": {"backend": "intel"}, "strategy": {"name": "magic"}})
    assert "strategy.name = 'magic'" in msg and "emulated" in msg


def test_cross_field_rules() -> None:
    msg = error({"pmu": {"backend": "intel", "version": 1, "fixed_counters": 3}})
    assert msg.startswith("pmu.fixed_counters = 3: version 1 has no fixed counters")


def test_workload_event_names_are_checked() -> None:
    msg = error(
        {"pmu": {"backend": "intel"}, "workload": {"kind": "counting", "events": ["cyclez"]}}
    )
    assert msg.startswith(
        "workload.events = 'cyclez': unknown event; did you mean cycles, ref-cycles, "
        "cpu-cycles? known: branch-instructions, "
    )
    assert "\n" not in msg


def test_costs_override_and_unknown_cost_key() -> None:
    cfg = vpmu.load_config({"pmu": {"backend": "intel"}, "costs": {"vm_exit": 900}})
    assert cfg.costs.vm_exit == 900
    assert error({"pmu": {"backend": "intel"}, "costs": {"vm_exits": 1}}).startswith(
        "costs.vm_exits = 1: unknown key"
    )


def test_toml_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text('[pmu]\nbackend = "intel"\ngp_countrs = 8\n')
    with pytest.raises(ConfigError) as exc:
        vpmu.load_config(bad)
    assert str(exc.value).startswith(f"{bad}: pmu.gp_countrs = 8: unknown key")
    broken = tmp_path / "broken.toml"
    broken.write_text("[pmu\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        vpmu.load_config(broken)


def test_schema_covers_every_table(plugins: vpmu.PluginManager) -> None:
    schema = root_model(plugins).model_json_schema(by_alias=True)
    for table in ("machine", "host", "pmu", "strategy", "workload", "filter", "costs", "report"):
        assert table in schema["properties"], table


def vpmu_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpmu_core.cli", *args], capture_output=True, text=True, check=False
    )


def test_cli_bad_config_is_one_line_and_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text('[pmu]\nbackend = "intel"\ngp_countrs = 8\n')
    proc = vpmu_cli("run", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pmu.gp_countrs = 8: unknown key" in lines[0]
    assert proc.stdout == ""


def test_cli_run_writes_json_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out" / "result.json"
    root = Path(__file__).parent.parent
    proc = vpmu_cli("run", str(root / "configs/intel-kvm.toml"), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = vpmu.RunResult.model_validate_json(out.read_text())
    assert result.backend == "intel" and result.ledger["exits"]["wrmsr:eventsel"] == 3
    assert not list(out.parent.glob("*.tmp"))


def test_cli_validate_plugins_schema() -> None:
    root = Path(__file__).parent.parent
    assert vpmu_cli("validate", str(root / "configs/intel-v1.toml")).returncode == 0
    proc = vpmu_cli("plugins", "--hooks")
    assert (
        proc.returncode == 0 and "intel" in proc.stdout and "vpmu_register_backends" in proc.stdout
    )
    proc = vpmu_cli("schema")
    assert proc.returncode == 0 and '"pmu"' in proc.stdout


def test_atomic_write_leaves_an_ordinary_file(tmp_path: Path) -> None:
    import os
    import stat

    from vpmu_core.io import atomic_write_text

    umask = os.umask(0o022)
    try:
        out = tmp_path / "r.json"
        atomic_write_text(out, "{}\n")
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        assert out.read_text() == "{}\n" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    finally:
        os.umask(umask)
