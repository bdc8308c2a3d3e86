"""The logical lines of a requirements file, as isolation edits them package by package.

A requirement may span several physical lines joined by a trailing `\\`: pip-compile's
`--generate-hashes` output puts each `--hash=...` on a line of its own. Isolation swaps,
drops and pins whole logical lines, so a package is found (and replaced) with its hashes
and the rest of the file keeps its bytes.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

_COMMENT = re.compile(r"(^|\s)#.*$")
_OPTIONS = re.compile(r"\s--[A-Za-z]")  # per-requirement options: --hash=..., --config-settings


def logical_lines(text: str) -> list[tuple[str | None, str]]:
    """(canonical package name or None, the physical lines of one requirement joined by
    newlines), in order; comments, blank lines and option lines have no name."""
    out: list[tuple[str | None, str]] = []
    buf: list[str] = []
    for line in text.splitlines():
        buf.append(line)
        if line.endswith("\\") and not line.lstrip().startswith("#"):
            continue  # continued on the next line
        chunk = "\n".join(buf)
        out.append((requirement_name(chunk), chunk))
        buf = []
    if buf:  # a last line that ends in `\`
        chunk = "\n".join(buf)
        out.append((requirement_name(chunk), chunk))
    return out


def requirement_text(chunk: str) -> str:
    """The requirement of a logical line: continuations joined, comment and options cut."""
    parts = [_COMMENT.sub("", p).strip().removesuffix("\\").strip() for p in chunk.splitlines()]
    joined = " ".join(p for p in parts if p)
    return _OPTIONS.split(" " + joined, maxsplit=1)[0].strip()


def requirement_name(chunk: str) -> str | None:
    """The canonical name of the package a logical line asks for; None for anything else."""
    text = requirement_text(chunk)
    if not text or text.startswith("-"):
        return None
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def pinned(chunk: str, version: str) -> str:
    """The logical line pinned to `version`, extras and marker kept; hashes dropped (they
    are those of another version)."""
    req = Requirement(requirement_text(chunk))
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{req.name}{extras}=={version}{marker}"
