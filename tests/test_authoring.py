"""Plugin authoring: the guide documents every hook, new-plugin works, errors are clear."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import vpmu_core as vpmu
from vpmu_core import hookspecs, plugins
from vpmu_core.cli import app
from vpmu_core.scaffold import KINDS, new_plugin

DOCS = Path(__file__).parent.parent / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return [
        n
        for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
        if n.startswith("vpmu_") and hasattr(f, "vpmu_spec")
    ]


def test_every_hook_is_documented_with_its_firstresult() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert len(hook_names()) >= 12
    for name in hook_names():
        m = re.search(rf"^### `{name}\((.*?)\).*?(?=^### |^## )", text, re.M | re.S)
        assert m, f"docs/plugins.md has no section '### `{name}(...)`'"
        spec_args = list(inspect.signature(getattr(hookspecs, name)).parameters)
        doc_args = [a.strip() for a in m.group(1).split(",") if a.strip()]
        assert doc_args == spec_args, f"{name}: documented as {doc_args}, hookspec has {spec_args}"
        first = getattr(hookspecs, name).vpmu_spec["firstresult"]
        assert f"**firstresult:** {'yes' if first else 'no'}" in m.group(0), name
        assert "**May not:**" in m.group(0), f"{name}: what it may not do is missing"


def load_generated(root: Path, name: str) -> Any:
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module("vpmu_" + name.replace("-", "_"))
    finally:
        sys.path.remove(str(root))


@pytest.mark.parametrize("kind", KINDS)
def test_new_plugin_generates_a_working_plugin(tmp_path: Path, kind: str) -> None:
    name = f"gen-{kind}"
    files = new_plugin(name, kind, tmp_path / name)
    assert {f.name for f in files} == {
        "pyproject.toml",
        "__init__.py",
        "test_conformance.py",
        "example.toml",
    }
    pyproject = (tmp_path / name / "pyproject.toml").read_text()
    assert f'{name} = "vpmu_gen_{kind}"' in pyproject
    module = load_generated(tmp_path / name, name)
    pm = vpmu.PluginManager(plugins=[(name, module)])
    assert pm.infos[name].error is None
    result = vpmu.run(tmp_path / name / "example.toml", pm)
    assert result.counters and (result.count_error_pct or 0.0) < 0.01


def test_new_plugin_refuses_a_non_empty_dir_and_bad_names(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "mine.py").write_text("")
    runner = CliRunner()
    res = runner.invoke(app, ["new-plugin", "ok", "--dir", str(tmp_path / "x")])
    assert res.exit_code == 2 and "not empty" in res.output
    res = runner.invoke(app, ["new-plugin", "Bad_Name", "--dir", str(tmp_path / "y")])
    assert res.exit_code == 2 and "NAME = 'Bad_Name'" in res.output
    res = runner.invoke(app, ["new-plugin", "ok", "--kind", "thing", "--dir", str(tmp_path / "z")])
    assert res.exit_code == 2 and "backend, strategy, extension" in res.output


@pytest.fixture
def broken_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed plugin whose module cannot be imported."""
    real = metadata.entry_points

    def entry_points(**kw: Any) -> Any:
        found = list(real(**kw))
        if kw.get("group") == plugins.ENTRY_POINT_GROUP:
            found.append(
                metadata.EntryPoint("ghost", "vpmu_no_such_module", plugins.ENTRY_POINT_GROUP)
            )
        return found

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    plugins.reset_default_manager()
    yield
    plugins.reset_default_manager()


@pytest.mark.usefixtures("broken_entry_point")
def test_a_plugin_that_fails_to_import_is_listed_failed_and_others_work() -> None:
    pm = vpmu.PluginManager()
    assert pm.infos["ghost"].error == "ModuleNotFoundError: No module named 'vpmu_no_such_module'"
    assert "intel" in pm.names("backends")
    vpmu.Machine.from_dict({"pmu": {"backend": "intel"}}, pm).vcpus[0].wrmsr(0x186, 0)
    res = CliRunner().invoke(app, ["plugins"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    row = next(line for line in res.output.splitlines() if "ghost" in line)
    assert "failed: ModuleNotFoundError: No module named 'vpmu_no_such_module'" in row
    assert re.search(r"intel .* ok", res.output)


def test_plugins_hooks_shows_each_plugins_hooks() -> None:
    res = CliRunner().invoke(app, ["plugins", "--hooks"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    blocks = dict(re.findall(r"^(\w[\w-]*)\n((?:  .*\n)+)", res.output, re.M))
    assert "module hooks: vpmu_register_backends" in blocks["intel"]
    assert "backend intel: " in blocks["intel"]
    for hook in ("vpmu_vcpu_counters", "vpmu_vcpu_msr_handlers", "vpmu_save_state"):
        assert hook in blocks["intel"]
    assert "vpmu_register_strategies, vpmu_register_workloads" in blocks["core"]
    assert "vpmu_counter_allocator" in blocks["core"]  # the strategies' machine hooks


class RaisingExtension:
    name = "raising"
    Config = vpmu.PluginManager  # replaced below; any pydantic model works

    def __init__(self, config: Any, machine: Any) -> None:
        pass

    @vpmu.hookimpl
    def vpmu_vcpu_cpuid(self, vcpu: vpmu.Vcpu) -> Any:
        raise KeyError("leaf 7")


def test_a_plugin_raising_in_a_hook_is_named_with_the_hook() -> None:
    from pydantic import BaseModel

    class Config(BaseModel):
        pass

    RaisingExtension.Config = Config  # type: ignore[assignment]

    class Module:
        @vpmu.hookimpl
        def vpmu_register_extensions(self, register: Any) -> None:
            register(RaisingExtension)

    pm = vpmu.PluginManager(plugins=[("raising-plugin", Module())])
    with pytest.raises(
        vpmu.PluginError, match=r"plugin 'raising' raised in hook vpmu_vcpu_cpuid: KeyError"
    ):
        vpmu.Machine.from_dict({"pmu": {"backend": "amd"}, "extensions": ["raising"]}, pm)


def test_uninstalled_extension_is_named_and_installed_listed() -> None:
    with pytest.raises(vpmu.ConfigError) as exc:
        vpmu.load_config({"pmu": {"backend": "intel"}, "extensions": ["nope"]})
    assert "extensions = 'nope': no installed extension of that name; installed: " in str(exc.value)
    assert "grouped" in str(exc.value)
