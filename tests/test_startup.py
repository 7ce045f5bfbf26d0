"""Startup: ``vpmu --help`` and a small ``vpmu run`` import only what they use.

Why a test: one eager import in ``vpmu_core/__init__`` (the whole API, pydantic,
the cost tables) or a top-level matplotlib/dask import costs a visible fraction
of a second on every command; the names stay importable lazily (PEP 562).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import vpmu_core as vpmu

CONFIG = Path(__file__).parent.parent / "configs" / "intel-kvm.toml"


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_the_cli_module_imports_no_engine_and_no_optional_extra() -> None:
    loaded = _modules_after("import vpmu_core.cli")
    for heavy in ("vpmu_core.api", "vpmu_core.config", "pydantic", "matplotlib", "dask"):
        assert heavy not in loaded


def test_a_run_imports_no_plotting_and_no_dask() -> None:
    code = (
        "import sys\nfrom vpmu_core.cli import app\n"
        f"try:\n    app(['run', {str(CONFIG)!r}])\nexcept SystemExit:\n    pass"
    )
    loaded = _modules_after(code)
    assert "vpmu_core.api" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("matplotlib", "dask", "distributed")}


def test_the_public_names_resolve_lazily() -> None:
    # the lazy table and __all__ name the same API (the TYPE_CHECKING imports are
    # checked by mypy against both)
    assert sorted(vpmu._LAZY) == sorted(vpmu.__all__)
    for name in vpmu.__all__:
        assert getattr(vpmu, name) is not None
    assert vpmu.Machine.__name__ == "Machine"
    assert vpmu.msr.__name__ == "vpmu_core.msr"
