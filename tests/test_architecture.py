"""Architecture rules checked on the source: no import cycles between files, small modules.

Only module-level imports count (including those under a module-level `if`, `try` or
`with`, and `if TYPE_CHECKING:` blocks): imports inside functions are allowed on purpose,
to keep `bisector --help` fast and to load torch, docker and apscheduler lazily.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bisector", "snapshots", "rollback")
# Files copied into sample git repositories, not part of bisector itself.
EXCLUDED = (ROOT / "bisector" / "testing" / "sample_repo",)
MAX_LINES = 400


def _module_files() -> dict[str, Path]:
    """Every module of the checked packages by dotted name (a package is its `__init__`)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if any(path.is_relative_to(excluded) for excluded in EXCLUDED):
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (not those in functions)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))


def _ancestors(name: str) -> list[str]:
    """`a.b.c` -> ["a", "a.b"]: the packages whose `__init__` importing `a.b.c` runs first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _import_targets(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The checked modules that importing `module` runs (directly) at import time."""
    targets: set[str] = set()
    # A module's own parent packages are always initialised before it runs, so running
    # them again on a sibling import is no edge; any other package on the way is.
    own_ancestors = set(_ancestors(module))

    def add_with_ancestors(name: str) -> None:
        for ancestor in _ancestors(name):
            if ancestor in modules and ancestor not in own_ancestors:
                targets.add(ancestor)
        if name in modules:
            targets.add(name)

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in _module_level_imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add_with_ancestors(alias.name)
            continue
        if node.level:
            # Relative: `from . import x` inside package p (or inside module p.m) means p.
            base_parts = module.split(".") if _is_package(path) else module.split(".")[:-1]
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            source = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        add_with_ancestors(source)
        # `from pkg import name` reads pkg's namespace (running its __init__), even when
        # pkg is the importer's own package: that is what makes `from pkg import sibling`
        # inside pkg a cycle with a pkg/__init__ that imports the importer.
        if source in modules and source != module:
            targets.add(source)
        for alias in node.names:
            if f"{source}.{alias.name}" in modules:
                targets.add(f"{source}.{alias.name}")
    targets.discard(module)
    return targets


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components with more than one module."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = lowlink[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = lowlink[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _import_graph() -> dict[str, set[str]]:
    modules = _module_files()
    return {name: _import_targets(name, path, modules) for name, path in modules.items()}


def test_cycle_finder_reports_a_two_module_loop_and_ignores_a_chain() -> None:
    """The cycle finder reports modules that import each other and nothing for a chain."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": set()}
    assert _strongly_connected(graph) == [["a", "b"]]


def test_the_import_graph_sees_the_packages() -> None:
    """The walker finds the modules and their module-level imports (guards a vacuous pass)."""
    graph = _import_graph()
    assert {"bisector.cli", "snapshots.api", "rollback.service"} <= graph.keys()
    assert "bisector.errors" in graph["bisector"]


def test_no_import_cycles_between_modules() -> None:
    """No set of modules imports itself back at import time (module-level imports only)."""
    graph = _import_graph()
    cycles = _strongly_connected(graph)
    described = [
        " <-> ".join(component)
        + "\n    "
        + "\n    ".join(
            f"{name} -> {', '.join(sorted(graph[name] & set(component)))}" for name in component
        )
        for component in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(described)


def test_no_module_over_the_line_limit() -> None:
    """Every module stays at or under 400 lines, so each file holds one concept."""
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in _module_files().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
