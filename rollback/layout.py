"""Where a rollback keeps things beside the live folder, and how to read the live state.

For `rollback.target: /srv/serving/configs` the layout is::

    /srv/serving/configs -> .configs.bisector/sets/<gen>   the live path (a symlink)
    /srv/serving/.configs.bisector/
        sets/<gen>/...            complete, immutable config sets (one per apply)
        sets/.staging-<op>/       a set being written (removed by recovery if left over)
        manifests/<gen>.json      sha256 of every file of a set, its label and set id
        live.json                 the generation bisector last switched the live path to
        intent.json               present only while a rollback is in flight
        lock                      flock(2) held by the rollback in progress
    /srv/serving/.configs.bisector-next   the new symlink, for an instant before rename(2)

Services read files through the live path. The symlink is replaced by one rename(2), so
a reader that resolves the live path once per reload (open the folder, or realpath it,
then read the files relative to that) sees the whole old set or the whole new one. A
generation is never modified after its manifest was written; the previous one is kept
for undo. `<gen>` is `<set id>-<op id>`: each apply stages a fresh copy, so an old
generation that someone edited by hand is never reused as if it were pristine.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bisector.errors import RollbackError
from bisector.plumbing.atomic import atomic_write_bytes
from rollback.configset import sha256_hex

LiveKind = Literal["absent", "managed", "directory", "foreign"]


@dataclass(frozen=True)
class Layout:
    """Paths of one live target and bisector's state beside it (same file system)."""

    target: Path

    @classmethod
    def for_target(cls, target: Path) -> Layout:
        target = Path(os.path.abspath(target))
        if target.parent == target:
            raise RollbackError("the rollback target cannot be the root folder")
        return cls(target)

    @property
    def state_dir(self) -> Path:
        return self.target.parent / f".{self.target.name}.bisector"

    @property
    def sets_dir(self) -> Path:
        return self.state_dir / "sets"

    @property
    def manifests_dir(self) -> Path:
        return self.state_dir / "manifests"

    @property
    def intent_path(self) -> Path:
        return self.state_dir / "intent.json"

    @property
    def live_record_path(self) -> Path:
        return self.state_dir / "live.json"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "lock"

    @property
    def next_link(self) -> Path:
        # Must sit in the target's own folder: rename(2) only replaces within one file system.
        return self.target.parent / f".{self.target.name}.bisector-next"

    @property
    def displaced_dir(self) -> Path:
        """Where a pre-existing real live folder goes when it is first replaced."""
        return self.target.parent / f".{self.target.name}.bisector-displaced"

    def staging_dir(self, op: str) -> Path:
        return self.sets_dir / f".staging-{op}"

    def gen_dir(self, gen: str) -> Path:
        return self.sets_dir / gen

    def manifest_path(self, gen: str) -> Path:
        return self.manifests_dir / f"{gen}.json"

    def link_value(self, gen: str) -> str:
        """Relative symlink text, so the parent folder can be moved as a whole."""
        return f"{self.state_dir.name}/sets/{gen}"

    def ensure_dirs(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        for d in (self.state_dir, self.sets_dir, self.manifests_dir):
            d.mkdir(exist_ok=True)


@dataclass(frozen=True)
class LiveState:
    """What the live path is now."""

    kind: LiveKind
    gen: str | None  # the generation it points to, when managed


def live_state(layout: Layout) -> LiveState:
    try:
        st = os.lstat(layout.target)
    except FileNotFoundError:
        return LiveState("absent", None)
    if stat.S_ISLNK(st.st_mode):
        value = os.readlink(layout.target)
        prefix = f"{layout.state_dir.name}/sets/"
        gen = value[len(prefix) :] if value.startswith(prefix) else ""
        if gen and "/" not in gen and layout.gen_dir(gen).is_dir():
            return LiveState("managed", gen)
        return LiveState("foreign", None)
    if stat.S_ISDIR(st.st_mode):
        return LiveState("directory", None)
    return LiveState("foreign", None)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` by relative POSIX path; refuses anything else."""
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [
            d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
        ]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() or not full.is_file():
                raise RollbackError(
                    f"{full} is not a regular file",
                    hint="the live config folder may only hold regular files and folders",
                )
            files[rel] = full.read_bytes()
    return files


def read_live_files(layout: Layout) -> dict[str, bytes]:
    """The files services see now (empty when the live path does not exist)."""
    state = live_state(layout)
    if state.kind == "absent":
        return {}
    if state.kind == "managed" and state.gen is not None:
        return read_tree(layout.gen_dir(state.gen))
    return read_tree(layout.target)


def write_manifest(
    layout: Layout, gen: str, set_id: str, label: str, files: dict[str, bytes]
) -> None:
    doc = {
        "gen": gen,
        "set_id": set_id,
        "label": label,
        "files": {p: sha256_hex(b) for p, b in sorted(files.items())},
    }
    atomic_write_bytes(layout.manifest_path(gen), json.dumps(doc, indent=1).encode())


LIVE_RECORD_HINT = (
    "delete it: bisector then takes the live folder as it stands (the next rollback "
    "adopts it; edits made since the last rollback are not flagged as drift)"
)
MANIFEST_HINT = (
    "delete it, then roll back with --force: without a manifest every live file counts as edited"
)
_GEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def is_gen_name(value: object) -> bool:
    """A generation name that stays inside `sets/` (no `/`, `..` or hidden name)."""
    return isinstance(value, str) and _GEN.fullmatch(value) is not None


def json_kind(doc: object) -> str:
    """How a JSON value reads in an error: `a list`, `a number`, ..."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    return "null" if doc is None else kinds.get(type(doc), "a number")


def _read_object(path: Path, hint: str) -> dict[str, Any] | None:
    """A JSON object from `path` (None when absent); anything else is a RollbackError."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RollbackError(f"unreadable record {path}: {exc}", hint=hint) from exc
    if not isinstance(doc, dict):
        raise RollbackError(
            f"unreadable record {path}: {json_kind(doc)}, not a JSON object", hint=hint
        )
    return doc


def _check_strings(path: Path, doc: dict[str, Any], names: tuple[str, ...], hint: str) -> None:
    for name in names:
        if name not in doc:
            raise RollbackError(f"unreadable record {path}: no {name!r}", hint=hint)
        value = doc[name]
        if not isinstance(value, str) or (name == "gen" and not is_gen_name(value)):
            raise RollbackError(
                f"unreadable record {path}: {name!r} is {json_kind(value)} "
                f"({json.dumps(value)[:60]}), not a {'generation name' if name == 'gen' else 'string'}",
                hint=hint,
            )


def read_manifest(layout: Layout, gen: str) -> dict[str, Any] | None:
    path = layout.manifest_path(gen)
    doc = _read_object(path, MANIFEST_HINT)
    if doc is None:
        return None
    _check_strings(path, doc, ("set_id", "label"), MANIFEST_HINT)
    files = doc.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise RollbackError(
            f"unreadable record {path}: 'files' is {json_kind(files)}, "
            "not an object of file hashes",
            hint=MANIFEST_HINT,
        )
    return doc


def read_live_record(layout: Layout) -> dict[str, Any] | None:
    """`live.json`: {gen, set_id, label}, each a string (None when absent)."""
    path = layout.live_record_path
    doc = _read_object(path, LIVE_RECORD_HINT)
    if doc is not None:
        _check_strings(path, doc, ("gen", "set_id", "label"), LIVE_RECORD_HINT)
    return doc


def write_live_record(layout: Layout, gen: str, set_id: str, label: str) -> None:
    doc = {"gen": gen, "set_id": set_id, "label": label}
    atomic_write_bytes(layout.live_record_path, json.dumps(doc).encode())
