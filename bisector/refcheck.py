"""Refs checked before git sees them, in pure Python (`validate_ref`): what git could read
as an option, control and format characters, and any name `git check-ref-format` refuses.
"""

from __future__ import annotations

import re
import unicodedata

from bisector.errors import RefError

__all__ = ["is_valid_ref", "name_end", "validate_ref"]

_MAX_REF = 255
# What may follow a name in a rev expression: `~N`, `^N`, `^{type}`, `@{...}` (reflog,
# upstream, `@{-1}`), then at most one `:path` or `:/text` at the end. ASCII only, as before.
_SUFFIX = re.compile(r"~[0-9]*|\^[0-9]*(?![{])|\^\{[a-z]*\}|@\{[A-Za-z0-9._/+:-]+\}")
_PATH_TAIL = re.compile(r"^:[A-Za-z0-9._/@{}^~+:-]*$")
# Where a name stops and a suffix starts: characters (and `@{`) git never allows in a name.
_NAME_END = re.compile(r"[~^:]|@\{")
# Never in a git ref name (`git check-ref-format`): space and these, besides controls.
_GIT_BAD_CHARS = frozenset(" ~^:?*[\\")


def name_end(ref: str) -> re.Match[str] | None:
    """Where the name of `ref` ends and its suffixes (`~1`, `^{commit}`, `:path`) begin."""
    return _NAME_END.search(ref)


def _control(ch: str) -> bool:
    """A control character: C0, DEL, C1, a line or paragraph separator, a surrogate (a
    byte that was not UTF-8), or a format character (a bidi override such as U+202E that
    shows `v2.2` followed by text reversed, a zero-width space)."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def _name_problem(name: str) -> str | None:
    """Why `name` is not a ref name by `git check-ref-format --allow-onelevel`, else None."""
    if any(ch in _GIT_BAD_CHARS for ch in name):
        return "git does not allow space or any of ~ ^ : ? * [ \\ in a ref name"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "a ref name cannot start or end with '/' or contain '//'"
    if ".." in name:
        return "a ref name cannot contain '..'"
    if "@{" in name or name == "@":
        return "a ref name cannot contain '@{' or be '@'"
    if name.endswith("."):
        return "a ref name cannot end with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return "no part of a ref name can start with '.'"
        if part.endswith(".lock"):
            return "no part of a ref name can end with '.lock'"
    return None


def _rev_problem(ref: str) -> str | None:
    """Why `ref` is not a name (or `@`, or nothing before `@{`/`:`) plus suffixes, else None."""
    end = _NAME_END.search(ref)
    name, rest = (ref, "") if end is None else (ref[: end.start()], ref[end.start() :])
    if name and name != "@":
        problem = _name_problem(name)
        if problem is not None:
            return problem
    elif not name and not rest.startswith(("@{", ":")):
        return "a rev needs a name before ~ or ^"
    pos = 0
    while pos < len(rest) and rest[pos] != ":":
        m = _SUFFIX.match(rest, pos)
        if m is None:
            return f"cannot read {rest[pos:]!r} after the name (~N, ^N, ^{{type}}, @{{...}})"
        pos = m.end()
    tail = rest[pos:]
    if tail and (not _PATH_TAIL.match(tail) or ".." in tail):
        return f"cannot read {tail!r} after the name"
    return None


def validate_ref(ref: str) -> str:
    """Refuse what git could read as an option, control characters, and anything that is not
    a ref name `git check-ref-format --allow-onelevel` accepts (optionally followed by
    `~N`, `^N`, `^{type}`, `@{...}` or a final `:path`). Pure Python: this runs before any
    git command sees the ref.
    """
    if not ref:
        raise RefError(
            "invalid ref '': the ref is empty",
            hint="pass a tag, branch or commit id, e.g. --good v2.3.1",
        )
    if ref.startswith("-"):
        raise RefError(
            f"invalid ref {ref!r}: a ref cannot start with '-'",
            hint="pass a tag, branch or commit id, e.g. --good v2.3.1",
        )
    if any(_control(ch) for ch in ref):
        problem: str | None = (
            "a ref cannot contain control characters, line breaks or Unicode format "
            "characters (bidi overrides, zero-width spaces)"
        )
    elif len(ref) > _MAX_REF:
        problem = f"a ref is at most {_MAX_REF} characters"
    else:
        problem = _rev_problem(ref)
    if problem is not None:
        raise RefError(
            f"invalid ref {ref!r}: {problem}",
            hint="pass a tag, branch or commit name, optionally with ~N or ^N",
        )
    return ref


def is_valid_ref(ref: str) -> bool:
    """Whether `validate_ref` accepts `ref`."""
    try:
        validate_ref(ref)
    except RefError:
        return False
    return True
