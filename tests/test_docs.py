"""The docs stay true to the code."""

from __future__ import annotations

from pathlib import Path

from vpmu_core.reference import builtin_manager, config_reference

ROOT = Path(__file__).resolve().parent.parent


def test_config_reference_is_current() -> None:
    current = (ROOT / "docs/config.md").read_text()
    assert current == config_reference(builtin_manager()), (
        "docs/config.md is stale: `vpmu schema --markdown --builtin > docs/config.md`"
    )


def test_every_config_table_is_in_the_reference() -> None:
    """A table the config accepts has a section in docs/config.md ([guest] had none)."""
    from vpmu_core.config import root_model

    pm = builtin_manager()
    text = config_reference(pm)
    for table in root_model(pm).model_fields:
        if table != "extensions":  # each extension's table is named by the extension
            assert f"## [{table}]" in text, table


def test_every_shipped_config_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for config in sorted((ROOT / "configs").glob("*.toml")):
        assert f"`configs/{config.name}`" in readme, config.name


def test_guide_examples_run() -> None:
    """The Python snippets of docs/guide.md run as written."""
    guide = (ROOT / "docs/guide.md").read_text()
    blocks = guide.split("```python\n")[1:]
    assert blocks
    for block in blocks:
        code = block.split("```")[0]
        exec(compile(code, "docs/guide.md", "exec"), {"__name__": "guide"})
