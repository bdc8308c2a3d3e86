"""The pure core and the ports load no git, subprocess, docker, sqlite, pydantic or yaml code."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

FORBIDDEN = ("git", "subprocess", "docker", "sqlite3", "pydantic", "yaml")
# Runtime imports of bisector's own code from the core stay inside these (pure) modules.
ALLOWED_OWN = ("bisector.core", "bisector.ports", "bisector.errors")


def _pure_modules() -> list[str]:
    core = ROOT / "bisector" / "core"
    names = [f"bisector.core.{m.name}" for m in pkgutil.iter_modules([str(core)])]
    return ["bisector.core", *sorted(names), "bisector.ports"]


def _path(module: str) -> Path:
    rel = Path(*module.split("."))
    package = ROOT / rel / "__init__.py"
    return package if package.is_file() else ROOT / rel.with_suffix(".py")


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported module, guarded by `if TYPE_CHECKING:`) for every import statement."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in guarded) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in guarded))
    return found


def test_importing_the_core_and_the_ports_loads_no_adapter_library() -> None:
    """A fresh interpreter that imports every core module and the ports has none of them loaded."""
    modules = _pure_modules()
    assert "bisector.core.sampling" in modules and "bisector.core.judge" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(done.stdout)
    bad = [
        m
        for m in loaded
        if m.split(".")[0] in FORBIDDEN or m in ("bisector.config", "bisector.gitrepo")
    ]
    assert bad == []


@pytest.mark.parametrize("module", _pure_modules())
def test_import_statements_name_no_adapter(module: str) -> None:
    """No import of an adapter library anywhere; bisector's own only from pure modules at runtime."""
    tree = ast.parse(_path(module).read_text(encoding="utf-8"))
    for name, type_only in _imports(tree):
        assert name.split(".")[0] not in FORBIDDEN, f"{module} imports {name}"
        if name.split(".")[0] == "bisector" and not type_only:
            assert name.startswith(ALLOWED_OWN), f"{module} imports {name} at runtime"
