"""Requirement files as they are at one commit, and the environment key they give.

Files are read from git objects (never from a checkout), so keys are cheap and a build can
start before the candidate is checked out. `-r` / `-c` includes inside a requirements
file are followed within the repository, so a change in an included file changes the key.

Normalization, so cosmetic edits share an environment: comments, blank lines and line
continuations are dropped; requirement lines are canonicalized with `packaging` (name
case, spacing) and sorted. For `pyproject.toml` only the dependency tables count (a
version bump does not rebuild). Other files (lock files) count byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bisector.builders.lockpins import uv_lock_pins
from bisector.errors import BuildError
from snapshots.deps import read_declared

KEY_FORMAT = 1  # bump when the key's recipe changes
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE = re.compile(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+)(\S+)$")
_EDITABLE = re.compile(r"^(?:-e|--editable)(?:\s*=\s*|\s+)(\S+)")

ReadFile = Callable[[str], bytes | None]


@dataclass(frozen=True)
class RequirementSet:
    """The configured requirement files (`roots`) plus their includes, at one commit."""

    roots: tuple[str, ...]
    files: tuple[tuple[str, bytes | None], ...]  # repo-relative path -> content (None: absent)
    extras: tuple[str, ...] = ()  # pyproject optional-dependency groups to install too

    def normalized(self) -> list[tuple[str, str | None]]:
        out = [(path, None if data is None else normalize(path, data)) for path, data in self.files]
        if self.extras:  # only then, so keys of sets without extras stay what they were
            out.append(("[extras]", ",".join(sorted(self.extras))))
        return out

    def absent(self) -> list[str]:
        """The configured files (and includes) this commit lacks: built without them, which a
        benchmark then shows as a missing module, so the build says so (`note_absent`)."""
        return [path for path, data in self.files if data is None]

    def materialize(self, dest: Path) -> list[Path]:
        """Write the files under `dest` at their repo paths; the roots that exist, in order."""
        for path, data in self.files:
            if data is not None:
                _refuse_repository_paths(path, data)
                target = dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        present = dict(self.files)
        out: list[Path] = []
        for root in self.roots:
            data = present.get(root)
            if data is None:
                continue
            if root.endswith(".lock"):
                out.append(_lock_pins(dest, root, data))
            elif posixpath.basename(root) == "pyproject.toml":
                out.append(_pyproject_requirements(dest, root, data, self.extras))
            else:
                out.append(dest / root)
        return out


def _refuse_repository_paths(path: str, data: bytes) -> None:
    """A requirement on a relative path (`-e .`, `./libs/core`) names the commit's own tree,
    which an environment cannot hold: it is built from the requirement files alone (keyed
    by their text, shared between commits, maybe before any checkout exists), and the
    installer would resolve the path from wherever it runs. :raises BuildError: one does.
    """
    if not path.endswith((".txt", ".in")):
        return
    for line in _logical_lines(data.decode("utf-8", errors="replace")):
        editable = _EDITABLE.match(line)
        target = editable.group(1) if editable else line
        if target.startswith(".") and "://" not in target:
            raise BuildError(
                f"{path}: {line!r} installs a path of the repository, which an environment "
                "built from the requirement files alone (and shared between commits) "
                "cannot hold",
                hint="remove the line (the checkout is on PYTHONPATH already), or install "
                "the project per commit with environment.install, e.g. "
                "[pip, install, --no-deps, -e, .]",
            )


def _pyproject_requirements(dest: Path, root: str, data: bytes, extras: Sequence[str]) -> Path:
    """[project].dependencies (and the configured optional groups) as a requirements file.

    pip cannot read pyproject.toml with `-r` (uv can, but then without the groups), so
    both builders install this translation and extras work the same way in each.
    """
    try:
        project = tomllib.loads(data.decode("utf-8")).get("project", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{root} is not valid TOML: {exc}") from exc
    lines = [str(r) for r in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {})
    for group in extras:
        if group not in optional:
            raise BuildError(
                f"{root} has no optional-dependencies group {group!r}",
                hint="check environment.extras in bisector.yaml",
            )
        lines += [str(r) for r in optional[group]]
    target = dest / (root + ".requirements.txt")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return target


def _lock_pins(dest: Path, root: str, data: bytes) -> Path:
    """uv.lock / poetry.lock as exact pins (`name==version`), a file pip and uv can install.

    Neither installer reads lock files with `-r`; the lock's resolved versions are what
    the commit ran with, so they are installed as such. A uv.lock's pins keep the markers
    that say which platform or Python needs each (`lockpins`); poetry.lock's are pinned
    unconditionally.
    """

    if posixpath.basename(root) == "uv.lock":
        pins = uv_lock_pins(root, data)
    else:
        declared = read_declared(lambda p: data if p == root else None, [root])
        pins = sorted({f"{d.name}=={d.version}" for d in declared.dependencies if d.version})
    target = dest / (root + ".pins.txt")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(line + "\n" for line in pins), encoding="utf-8")
    return target


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = []
    for raw in joined.splitlines():
        line = _COMMENT.sub("", raw).strip()
        if line:
            lines.append(" ".join(line.split()))
    return lines


def _canonical_requirement(line: str) -> str:
    if line.startswith("-"):
        return line
    try:
        req = Requirement(line)
    except InvalidRequirement:
        return line
    extras = f"[{','.join(sorted(canonicalize_name(e) for e in req.extras))}]" if req.extras else ""
    url = f" @ {req.url}" if req.url else ""
    spec = ",".join(sorted(str(s) for s in req.specifier))
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{url}{spec}{marker}"


def _normalize_pyproject(data: bytes) -> str:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "raw:" + hashlib.sha256(data).hexdigest()
    project: Mapping[str, Any] = doc.get("project", {})
    if "dependencies" in project.get("dynamic", []):
        return "raw:" + hashlib.sha256(data).hexdigest()
    relevant = {
        "dependencies": sorted(_canonical_requirement(d) for d in project.get("dependencies", [])),
        "optional": {
            k: sorted(_canonical_requirement(d) for d in v)
            for k, v in project.get("optional-dependencies", {}).items()
        },
        "requires-python": project.get("requires-python"),
        "build-system": doc.get("build-system"),
    }
    return json.dumps(relevant, sort_keys=True)


def normalize(path: str, data: bytes) -> str:
    """A text that is equal for two files exactly when they ask for the same packages."""
    name = posixpath.basename(path)
    if name == "pyproject.toml":
        return _normalize_pyproject(data)
    if name.endswith((".txt", ".in")):
        text = data.decode("utf-8", errors="replace")
        return "\n".join(sorted({_canonical_requirement(li) for li in _logical_lines(text)}))
    return "raw:" + hashlib.sha256(data).hexdigest()


def _includes(path: str, data: bytes) -> list[str]:
    if not path.endswith((".txt", ".in")):
        return []
    found = []
    for line in _logical_lines(data.decode("utf-8", errors="replace")):
        m = _INCLUDE.match(line)
        if m is None or "://" in m.group(1) or m.group(1).startswith("/"):
            continue
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), m.group(1)))
        if not target.startswith("../") and target != "..":
            found.append(target)
    return found


def read_requirements(
    read_file: ReadFile, roots: Sequence[str], extras: Sequence[str] = ()
) -> RequirementSet:
    """The requirement files at one commit, following includes (`read_file(path)`)."""
    files: dict[str, bytes | None] = {}
    todo = [posixpath.normpath(r) for r in roots]
    while todo:
        path = todo.pop(0)
        if path in files:
            continue
        data = read_file(path)
        files[path] = data
        if data is not None:
            todo.extend(_includes(path, data))
    return RequirementSet(
        tuple(posixpath.normpath(r) for r in roots), tuple(files.items()), tuple(extras)
    )


def environment_key(
    reqs: RequirementSet, *, python: str, index: Mapping[str, object], prefix: str = "venv"
) -> str:
    """`<prefix>-<sha256 of the recipe>` (24 hex digits: short paths keep shebangs valid)."""
    recipe = {
        "format": KEY_FORMAT,
        "requirements": reqs.normalized(),
        "python": python,
        "index": index,
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:24]}"
