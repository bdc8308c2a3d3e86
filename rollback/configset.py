"""The input of a rollback: an immutable set of config files with a label.

A `ConfigSet` is what any source (git objects today, the snapshot store later) hands to
the planner and the applier: relative POSIX paths mapped to bytes. Paths are checked
here, once, because they become file names under the live folder: an absolute path or a
`..` component would let a config set write outside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bisector.errors import RollbackError


def check_rel_path(path: str) -> str:
    """Refuse paths that could escape the live folder or collide with bisector's own files."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise RollbackError(
            f"unsafe config path {path!r}",
            hint="config paths must be relative POSIX paths without '.' or '..' parts",
        )
    return path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ConfigSet:
    """Config files (relative POSIX path -> bytes) plus where they came from."""

    label: str  # a human name: the ref, tag or snapshot id the set was read at
    files: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path in self.files:
            check_rel_path(path)
        names = set(self.files)
        for path in names:
            # A file that is also a folder of another file cannot be written.
            head = path.rsplit("/", 1)[0] if "/" in path else ""
            while head:
                if head in names:
                    raise RollbackError(f"config path {head!r} is both a file and a folder")
                head = head.rsplit("/", 1)[0] if "/" in head else ""
        # Read-only view over a private copy: the set cannot change after it was hashed.
        object.__setattr__(self, "files", MappingProxyType(dict(sorted(self.files.items()))))

    def checksums(self) -> dict[str, str]:
        """sha256 of every file, by path."""
        return {path: sha256_hex(data) for path, data in self.files.items()}

    @property
    def set_id(self) -> str:
        """Content address of the whole set (paths and bytes, not the label)."""
        h = hashlib.sha256()
        for path, digest in sorted(self.checksums().items()):
            h.update(path.encode("utf-8", "surrogateescape") + b"\0" + digest.encode() + b"\n")
        return h.hexdigest()[:20]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)
