"""Tiny pure-Python wheels written by hand, for tests and the demo (no build backend, no network).

A wheel is a zip with the package files plus a `.dist-info` folder (METADATA, WHEEL and
RECORD). Timestamps are fixed, so the same inputs give byte-identical wheels.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)


def _wheel_name(name: str) -> str:
    """The distribution name as wheel file names spell it (PEP 427 / 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_wheel(
    dest_dir: Path,
    name: str,
    version: str,
    files: Mapping[str, str],
    requires: Sequence[str] = (),
) -> Path:
    """Write `<name>-<version>-py3-none-any.whl` into `dest_dir` and return its path.

    `files` maps paths inside site-packages (e.g. `"pkg/__init__.py"`) to their text;
    `requires` are `Requires-Dist` lines (e.g. `"numpy>=1.26"`).
    """
    dist = _wheel_name(name)
    info = f"{dist}-{version}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {name}\n",
            f"Version: {version}\n",
            *(f"Requires-Dist: {r}\n" for r in requires),
        ]
    )
    wheel = "Wheel-Version: 1.0\nGenerator: bisector.testing.wheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entries: dict[str, bytes] = {p: t.encode("utf-8") for p, t in sorted(files.items())}
    entries[f"{info}/METADATA"] = metadata.encode("utf-8")
    entries[f"{info}/WHEEL"] = wheel.encode("utf-8")
    record_lines = [f"{p},{_record_hash(d)},{len(d)}" for p, d in entries.items()]
    record_lines.append(f"{info}/RECORD,,")
    entries[f"{info}/RECORD"] = ("\n".join(record_lines) + "\n").encode("utf-8")

    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in entries.items():
            zi = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return path


def simple_index(root: Path, wheels: Path, yanked: frozenset[str] = frozenset()) -> Path:
    """A PEP 503 index under `root/simple` with every wheel of `wheels` copied to
    `root/files` (versions in `yanked` marked `data-yanked`); the index folder."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[str]] = {}
    for wheel in sorted(wheels.glob("*.whl")):
        shutil.copy(wheel, root / "files" / wheel.name)
        projects.setdefault(wheel.name.split("-")[0].replace("_", "-"), []).append(wheel.name)
    for project, files in projects.items():
        page = root / "simple" / project
        page.mkdir(parents=True)
        mark = {f: ' data-yanked=""' if f.split("-")[1] in yanked else "" for f in files}
        links = "".join(f'<a href="../../files/{f}"{mark[f]}>{f}</a>\n' for f in files)
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    return root / "simple"
