"""The compiled engine and the pure-Python one give identical results.

Why a subprocess on a copy of the sources: an install compiles the engine (mypyc,
setup.py) into extension modules beside the ``.py`` files, and those take
precedence on import. A copy of the package's ``.py`` files alone, first on
``PYTHONPATH``, is the same code uncompiled; its ``vpmu run --json`` must be
byte-identical to this process's (compiled when a C compiler was present).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import vpmu_core as vpmu

ROOT = Path(__file__).parent.parent
PACKAGES = {
    "vpmu_core": ROOT / "vpmu_core",
    "vpmu_intel": ROOT / "plugins" / "intel" / "vpmu_intel",
    "vpmu_amd": ROOT / "plugins" / "amd" / "vpmu_amd",
    "vpmu_grouped": ROOT / "plugins" / "grouped" / "vpmu_grouped",
}
SCRIPT = """
import json, sys
import vpmu_core as vpmu
import vpmu_core.vcpu, vpmu_core.guest_perf.core, vpmu_intel.pmu
mods = [vpmu_core.vcpu.__file__, vpmu_core.guest_perf.core.__file__, vpmu_intel.pmu.__file__]
out = [vpmu.run(c).model_dump_json() for c in json.loads(sys.stdin.read())]
print(json.dumps({"modules": mods, "results": out}))
"""


def compiled() -> bool:
    import vpmu_core.vcpu

    return not str(vpmu_core.vcpu.__file__).endswith(".py")


def _cells() -> list[dict[str, Any]]:
    base = tomllib.loads((ROOT / "configs" / "seed-mediated-table.toml").read_text())
    base.pop("compare")
    cells = []
    for strategy, backend, events in (
        ("mediated", "intel", 10),
        ("emulated", "intel", 6),
        ("register", "amd", 6),
    ):
        data = json.loads(json.dumps(base))
        data["machine"]["vcpus"] = data["host"]["pcpus"] = 3
        # the seed's mediated PMU is the RFC's: a 6.20 one refuses the v5 guest
        data["strategy"] = {"name": strategy, **({"mode": "rfc"} if strategy == "mediated" else {})}
        if backend == "amd":
            data["pmu"] = {"backend": "amd"}
        data["workload"] |= {"events": ["instructions"] * events, "duration_ms": 30}
        cells.append(data)
    seed = tomllib.loads((ROOT / "configs" / "seed-legacy-sample-loss.toml").read_text())
    cells.append(seed)
    return cells


def test_pure_python_copy_gives_byte_identical_results(tmp_path: Path) -> None:
    for name, src in PACKAGES.items():
        shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    cells = _cells()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        input=json.dumps(cells),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    pure = json.loads(proc.stdout)
    for module in pure["modules"]:
        assert module.startswith(str(tmp_path)) and module.endswith(".py")
    here = [vpmu.run(c).model_dump_json() for c in cells]
    assert pure["results"] == here


@pytest.mark.skipif(not compiled(), reason="installed without a C compiler or VPMU_PURE=1")
def test_the_hot_modules_are_compiled_and_subclassable() -> None:
    """A compiled class a plugin subclasses overrides as in Python (mypyc_attr)."""
    from vpmu_amd.pmu import AmdPmu

    import vpmu_core.guest_perf.core

    assert not str(vpmu_core.guest_perf.core.__file__).endswith(".py")

    class Quiet(AmdPmu):
        def pmi_status(self) -> int:
            return 0x5A

    m = vpmu.Machine.from_dict({"pmu": {"backend": "amd"}})
    pmu = m.vcpus[0].pmu
    assert isinstance(pmu, AmdPmu)
    pmu.__class__ = Quiet  # type: ignore[assignment]
    assert m.vcpus[0].pmu.pmi_status() == 0x5A


def test_every_package_is_installed() -> None:
    """A non-editable install ships exactly pyproject's package list: every directory
    with an ``__init__.py`` must be on it (vpmu_core.guest_perf once was not)."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = {"vpmu_core": ROOT / "vpmu_core", **{k: Path(v) for k, v in cfg["package-dir"].items()}}
    found = set()
    for top, path in dirs.items():
        base = path if path.is_absolute() else ROOT / path
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([top, *rel.parts]))
    assert found == listed
