"""Shared helpers of the rollback tests: a real git repo with configs at two tags."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bisector.testing.gitutil import commit, make_repo

ROOT = Path(__file__).resolve().parents[1]

GOOD = {
    "configs/serving.yaml": b"server:\n  workers: 4\nbatching:\n  dynamic: true\n  target_batch: 8\n",
    "configs/model.yaml": b"model:\n  name: tiny-lm\n  dtype: bfloat16\n",
    "configs/limits/rate.yaml": b"rate:\n  rps: 100\n",
    "configs/notes.yaml": b"a: 1\n",
}
BAD = {
    "configs/serving.yaml": b"server:\n  workers: 8\nbatching:\n  dynamic: false\n  target_batch: 8\n",
    "configs/model.yaml": b"model:\n  name: tiny-lm\n  dtype: float16\n",
    "configs/cache.yaml": b"cache:\n  size_mb: 512\n",
    "configs/notes.yaml": b"a: 1\n",
}


def live_view(files: dict[str, bytes]) -> dict[str, str]:
    """What the live folder must hold for a tag: paths under `configs/`, sha256 each."""
    return {p.removeprefix("configs/"): hashlib.sha256(b).hexdigest() for p, b in files.items()}


GOOD_LIVE = live_view(GOOD)
BAD_LIVE = live_view(BAD)


@dataclass
class Demo:
    repo: Path
    target: Path

    def write_config(self, **rollback: object) -> None:
        lines = [
            "benchmark:\n  command: [python, bench.py]\n",
            "metrics:\n  latency_ms: {direction: lower}\n",
            f"rollback:\n  target: {json.dumps(str(self.target))}\n",
        ]
        for key, value in rollback.items():
            if key != "alerts":
                lines.append(f"  {key}: {json.dumps(value)}\n")
        if "alerts" in rollback:
            lines.append(f"daemon:\n  alerts: {json.dumps(rollback['alerts'])}\n")
        (self.repo / "bisector.yaml").write_text("".join(lines))


def make_demo(base: Path) -> Demo:
    """A repo whose configs/ differ between tags v2.3.1 (GOOD) and v2.4.0 (BAD)."""
    repo = make_repo(base / "repo")
    for tag, files in (("v2.3.1", GOOD), ("v2.4.0", BAD)):
        stale = {p: None for p in GOOD if p not in files}  # the release drops them
        commit(
            repo,
            {**stale, **files, "README.md": f"release {tag}\n"},
            f"release {tag}",
            tag,
            annotated=True,
        )
    demo = Demo(repo, base / "srv" / "configs")
    demo.write_config()
    return demo


def read_live(target: Path) -> dict[str, str]:
    """Checksums of the live set, read through one resolution of the live path."""
    root = Path(os.path.realpath(target))
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_clean(target: Path) -> None:
    """No intent, no staging folder, no temp link left beside the live path."""
    state = target.parent / f".{target.name}.bisector"
    assert not (state / "intent.json").exists()
    assert not list((state / "sets").glob(".staging-*")) if (state / "sets").exists() else True
    assert not (target.parent / f".{target.name}.bisector-next").exists()
    assert not (target.parent / f".{target.name}.bisector-next").is_symlink()
    assert not (target.parent / f".{target.name}.bisector-displaced").exists()


def _cli_env(env: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}


def run_cli(
    *args: str,
    cwd: Path,
    stdin: int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bisector", *args],
        cwd=cwd,
        env=_cli_env(env),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    """`bisector ARGS` started, not waited for (a test kills it mid-way); output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "bisector", *args],
        cwd=cwd,
        env=_cli_env(None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at `where` (`-o options`) for the block, unmounted after; the
    test is skipped where mounting is not allowed (not root, or no mount permission)."""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@contextmanager
def hooked(hook: Callable[[str], None]) -> Iterator[None]:
    """`hook` called at each rollback checkpoint (by name) for the block, the previous after."""
    from rollback.checkpoints import set_hook

    previous = set_hook(hook)
    try:
        yield
    finally:
        set_hook(previous)
