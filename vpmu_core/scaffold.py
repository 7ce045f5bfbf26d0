"""``vpmu new-plugin``: the skeleton of a third-party plugin package.

The generated package is a working plugin, not a stub: installed (``pip install
-e DIR``) it registers through the ``vpmu`` entry point, its config model joins
``vpmu schema``, and its test runs the conformance suite over it. A backend
reuses the Intel backend through its public classes, a strategy subclasses
:class:`vpmu_core.Strategy`, an extension contributes one MSR with save/restore.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from .errors import ConfigError
from .output import check_output, write_output

KINDS = ("backend", "strategy", "extension")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = Template("""\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "vpmu-$name"
version = "0.1.0"
description = "vpmu $kind plugin: $name"
requires-python = ">=3.11"
dependencies = ["vpmu>=0.1"]

# The entry point is what makes this a vpmu plugin: vpmu loads every module in
# the "vpmu" group and calls its vpmu_register_* hooks.
[project.entry-points.vpmu]
$name = "$mod"

[tool.setuptools]
packages = ["$mod"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-q $pytest_opts"
""")

TEST = Template('''\
"""The vpmu conformance suite, run over this plugin (options: pyproject.toml, addopts)."""

from vpmu_core.testing.suite import *  # noqa: F403
''')

BACKEND = Template('''\
"""vpmu backend plugin "$name".

A working starting point: the Intel architectural PMU, reused through the Intel
backend's public classes, with a ``[pmu]`` model of its own. Change the defaults
in ``Config``, or override ``create_pmu`` (a vCPU's registers and rules) or
``cpuid_leaves`` to change behaviour; ``vpmu.Backend`` answers the hooks over them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import vpmu_core as vpmu
from pydantic import Field
from vpmu_intel import IntelBackend, IntelConfig

__version__ = "0.1.0"


class Config(IntelConfig):
    """The ``[pmu]`` table when ``backend = "$name"``."""

    backend: Literal["$name"]  # type: ignore[assignment]
    version: int = Field(4, ge=0, le=5, description="architectural PMU version")
    gp_counters: int = Field(4, ge=0, le=32, description="general-purpose counters")


class ${cls}Backend(IntelBackend):
    name: ClassVar[str] = "$name"
    Config: ClassVar[type[Config]] = Config  # type: ignore[assignment]

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        """The ``[pmu]`` tables the conformance suite runs this backend with."""
        return {
            "default": {"backend": cls.name},
            "v2-narrow": {"backend": cls.name, "version": 2, "gp_counters": 2, "gp_width": 40},
        }


@vpmu.hookimpl
def vpmu_register_backends(register: Callable[[type[Any]], None]) -> None:
    register(${cls}Backend)
''')

STRATEGY = Template('''\
"""vpmu strategy plugin "$name".

A working starting point: every PMU MSR access exits (``intercept``), except the
counters when ``pass_counters`` is set; no host perf events back the counters
(no ``vpmu_counter_allocator``), and PMIs take the architectural path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import vpmu_core as vpmu
from pydantic import BaseModel, ConfigDict, Field

__version__ = "0.1.0"


class Config(BaseModel):
    """The ``[strategy]`` table when ``name = "$name"``."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["$name"]
    pass_counters: bool = Field(False, description="counter reads and writes do not exit")


class ${cls}Strategy(vpmu.Strategy):
    name: ClassVar[str] = "$name"
    Config: ClassVar[type[Config]] = Config  # type: ignore[assignment]
    config: Config

    def intercept(self, vcpu: vpmu.VcpuPort, handler: vpmu.MsrHandler, write: bool) -> str | None:
        """Asked once per MSR when a vCPU is bound: the exit reason, or None to pass through."""
        if self.config.pass_counters and handler.klass == "counter":
            return None
        return super().intercept(vcpu, handler, write)


@vpmu.hookimpl
def vpmu_register_strategies(register: Callable[[type[Any]], None]) -> None:
    register(${cls}Strategy)
''')

EXTENSION = Template('''\
"""vpmu extension plugin "$name".

A working starting point: one scratch MSR per vCPU that the guest can write and
read back, carried through snapshots. Select it with ``extensions = ["$name"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import vpmu_core as vpmu
from pydantic import BaseModel, ConfigDict, Field

__version__ = "0.1.0"


class Config(BaseModel):
    """The ``[$name]`` table."""

    model_config = ConfigDict(extra="forbid")

    msr: int = Field(0x4000_0F00, ge=0, lt=1 << 32, description="index of the scratch MSR")


class Scratch:
    """Per-vCPU state, kept in ``vcpu.ext["$name"]``."""

    def __init__(self) -> None:
        self.value = 0

    def read(self) -> int:
        return self.value

    def write(self, value: int) -> None:
        self.value = value


class ${cls}Extension:
    name: ClassVar[str] = "$name"
    Config: ClassVar[type[Config]] = Config

    def __init__(self, config: Config, machine: vpmu.MachinePort) -> None:
        self.config = config
        self.machine = machine

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        """Whole configs the conformance suite runs with this extension loaded."""
        return {
            "intel": {"pmu": {"backend": "intel"}, "extensions": [cls.name]},
            "amd": {"pmu": {"backend": "amd"}, "extensions": [cls.name]},
        }

    @vpmu.hookimpl
    def vpmu_vcpu_msr_handlers(self, vcpu: vpmu.VcpuPort) -> list[vpmu.MsrHandler]:
        scratch = vcpu.ext[self.name] = Scratch()
        # read/write are bound methods: the guest's WRMSR calls them directly.
        return [vpmu.MsrHandler(self.config.msr, "SCRATCH", "other", scratch.read, scratch.write)]

    @vpmu.hookimpl
    def vpmu_save_state(self, vcpu: vpmu.VcpuPort) -> dict[str, Any]:
        return {"value": vcpu.ext[self.name].value}

    @vpmu.hookimpl
    def vpmu_restore_state(self, vcpu: vpmu.VcpuPort, states: dict[str, dict[str, Any]]) -> None:
        vcpu.ext[self.name].value = int(states[self.name]["value"])


@vpmu.hookimpl
def vpmu_register_extensions(register: Callable[[type[Any]], None]) -> None:
    register(${cls}Extension)
''')

CONFIG = {
    "backend": Template("""\
# Run with: vpmu run example.toml
[pmu]
backend = "$name"

[workload]
kind = "counting"
events = ["instructions", "cycles", "branches"]
steps = 4

[workload.mix]
instructions = 1_000_000
cycles = 1_250_000
branches = 200_000
"""),
    "strategy": Template("""\
# Run with: vpmu run example.toml
[pmu]
backend = "intel"

[strategy]
name = "$name"
pass_counters = true

[workload]
kind = "counting"
events = ["instructions", "cycles", "branches"]
steps = 4

[workload.mix]
instructions = 1_000_000
cycles = 1_250_000
branches = 200_000
"""),
    "extension": Template("""\
# Run with: vpmu run example.toml
extensions = ["$name"]

[pmu]
backend = "intel"

[$name]
msr = 0x40000F00

[workload]
kind = "counting"
events = ["instructions", "cycles", "branches"]
steps = 4

[workload.mix]
instructions = 1_000_000
cycles = 1_250_000
branches = 200_000
"""),
}

SOURCES = {"backend": BACKEND, "strategy": STRATEGY, "extension": EXTENSION}
PYTEST_OPTS = {
    "backend": "--vpmu-backend $name",
    "strategy": "--vpmu-backend intel --vpmu-backend amd --vpmu-strategy $name",
    "extension": "--vpmu-extension $name",
}


def _check_free(name: str, mod: str) -> None:
    """Refuse a name already taken: the generated package would be shadowed or clash.

    Taken are the name of an installed plugin (a ``vpmu`` entry point), of a
    component some plugin registers (a backend, strategy, workload or extension
    of that name: the registry keys the new one's config by it), and the module
    name ``vpmu_NAME`` when anything importable already answers to it.
    """
    from importlib import metadata
    from importlib.util import find_spec

    from .plugins import ENTRY_POINT_GROUP, default_manager

    entry = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name in entry:
        raise ConfigError(
            "NAME", name, f"an installed plugin has it ({entry[name]}); choose another"
        )
    pm = default_manager()
    for kind, components in pm.registry.items():
        if name in components:
            raise ConfigError("NAME", name, f"installed {kind} have it; choose another")
    try:
        found = find_spec(mod) is not None
    except (ImportError, ValueError):
        found = True
    if found:
        raise ConfigError("NAME", name, f"module {mod} is importable already; choose another")


def new_plugin(name: str, kind: str, directory: Path | None = None) -> list[Path]:
    """Write a plugin package for ``name`` of ``kind``; return the files written.

    Refuses (ConfigError) a bad name or kind, a name already taken, a directory that
    is not empty (so it never overwrites an author's work) or cannot be written.
    """
    if not NAME_RE.match(name):
        raise ConfigError("NAME", name, "lowercase letters, digits and single dashes, e.g. my-pmu")
    if kind not in KINDS:
        raise ConfigError("--kind", kind, f"one of {', '.join(KINDS)}")
    mod = "vpmu_" + name.replace("-", "_")
    _check_free(name, mod)
    root = directory if directory is not None else Path(f"vpmu-{name}")
    if root.is_dir() and any(root.iterdir()):
        raise ConfigError("--dir", str(root), "exists and is not empty; choose another")
    if root.exists() and not root.is_dir():
        raise ConfigError("--dir", str(root), "is a file, not a directory")
    check_output(root / "pyproject.toml", "--dir")
    words = {
        "name": name,
        "kind": kind,
        "mod": mod,
        "cls": "".join(p.capitalize() for p in name.split("-")),
    }
    words["pytest_opts"] = Template(PYTEST_OPTS[kind]).substitute(words)
    files = {
        root / "pyproject.toml": PYPROJECT.substitute(words),
        root / mod / "__init__.py": SOURCES[kind].substitute(words),
        root / "tests" / "test_conformance.py": TEST.substitute(words),
        root / "example.toml": CONFIG[kind].substitute(words),
    }
    for path, text in files.items():
        write_output(path, text, "--dir")
    return list(files)
