"""Layers import downward only: no import cycle, no core-to-plugin or plugin-to-plugin import.

Every module of ``vpmu_core/`` and ``plugins/`` is read with :mod:`ast` (nothing is imported), and
every import counts: module level, inside ``if TYPE_CHECKING:`` and inside functions. A type-only
import is still a dependency a reader must follow, and a function-local import is a cycle hidden
from the interpreter, not one removed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: top-level package name -> its directory
PACKAGES: dict[str, Path] = {
    "vpmu_core": ROOT / "vpmu_core",
    "vpmu_intel": ROOT / "plugins" / "intel" / "vpmu_intel",
    "vpmu_amd": ROOT / "plugins" / "amd" / "vpmu_amd",
    "vpmu_grouped": ROOT / "plugins" / "grouped" / "vpmu_grouped",
}
PLUGIN_PACKAGES = frozenset(PACKAGES) - {"vpmu_core"}


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            found[_module_name(package, root, path)] = path
    return found


MODULES = _modules()


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _target(name: str) -> str | None:
    """The nearest known module for a dotted name (``a.b.c`` may name a thing in ``a.b``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """Every known module ``module`` imports, wherever in the file the import statement sits."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            # ``from pkg import sub`` imports the submodule when there is one
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for name in names:
            target = _target(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete cycle through the component, to print: start -> ... -> start."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = parent[node]
                    return [start, *reversed(path[1:]), start]
                if succ not in parent:
                    parent[succ] = node
                    nxt.append(succ)
        frontier = nxt
    return component


def test_the_scan_sees_the_packages() -> None:
    # A scan that found nothing would pass vacuously.
    assert "vpmu_core.vcpu" in MODULES
    assert "vpmu_intel.pmu" in MODULES
    assert "vpmu_core.counters" in GRAPH["vpmu_core.vcpu"] or GRAPH["vpmu_core.vcpu"]


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    message = "\n".join(
        f"cycle of {len(c)} modules: {' -> '.join(_path_in(c, GRAPH))}\n  members: {', '.join(c)}"
        for c in cycles
    )
    assert not cycles, message


def _top(module: str) -> str:
    return module.partition(".")[0]


def _bad_edges() -> list[tuple[str, str]]:
    bad = []
    for module, targets in GRAPH.items():
        for target in targets:
            src, dst = _top(module), _top(target)
            core_to_plugin = src == "vpmu_core" and dst in PLUGIN_PACKAGES
            plugin_to_plugin = src in PLUGIN_PACKAGES and dst in PLUGIN_PACKAGES and src != dst
            if core_to_plugin or plugin_to_plugin:
                bad.append((module, target))
    return sorted(bad)


def test_core_imports_no_plugin() -> None:
    bad = [(m, t) for m, t in _bad_edges() if _top(m) == "vpmu_core"]
    assert not bad, "\n".join(f"{m} imports {t}" for m, t in bad)


def test_plugins_import_no_other_plugin() -> None:
    bad = [(m, t) for m, t in _bad_edges() if _top(m) != "vpmu_core"]
    assert not bad, "\n".join(f"{m} imports {t}" for m, t in bad)


def test_amd_decodes_its_own_event_select() -> None:
    present = [
        m for m, targets in GRAPH.items() if _top(m) == "vpmu_amd" and "vpmu_core.filter" in targets
    ]
    assert not present, f"{present} import vpmu_core.filter"


def test_no_module_over_500_lines() -> None:
    # a module past 500 lines holds more than one thing a reader looks for
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long
