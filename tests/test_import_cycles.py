"""The builders and the trial runner import each other in no cycle (read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where cycles are looked for: every module reachable from these is walked.
START = [
    "bisector.engine.runner",
    *(f"bisector.builders.{p.stem}" for p in (ROOT / "bisector/builders").glob("*.py")),
]
WATCHED = ("bisector.builders", "bisector.engine.runner")


def _file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(module: str) -> list[str]:
    """Importing `a.b.c` runs `a`, `a.b` and `a.b.c` (each package's `__init__` first)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> set[str]:
    """Project modules that importing `module` runs at once: module-level statements only
    (imports inside functions are lazy, `if TYPE_CHECKING:` blocks never run)."""
    path = _file(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.update(_with_parents(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                found.update(_with_parents(base))
                # `from pkg import name` may name a submodule
                found.update(f"{base}.{a.name}" for a in node.names if _file(f"{base}.{a.name}"))
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {m for m in found if m.split(".")[0] == "bisector" and m != module and _file(m)}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    todo = [m for s in START for m in _with_parents(s)]
    while todo:
        module = todo.pop()
        if module not in graph:
            graph[module] = _imports(module)
            todo.extend(graph[module])
    return graph


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if there is one."""
    seen: set[str] = set()
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_cycle_runs_through_the_builders_or_the_runner() -> None:
    """No module of bisector.builders, nor the runner, imports itself back at import time."""
    graph = _graph()
    watched = sorted(m for m in graph if m.startswith(WATCHED))
    assert "bisector.builders.base" in watched and "bisector.engine.runner" in watched
    cycles = {m: c for m in watched if (c := _cycle_through(graph, m)) is not None}
    assert cycles == {}


def test_the_builders_package_module_imports_nothing() -> None:
    """Reaching one builder module (the runner reaches `base`) loads no other builder."""
    assert _imports("bisector.builders") == set()
