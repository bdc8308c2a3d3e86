"""A checkout shipped to a Ray worker (`executors.archive`, `ray_task.run_trial_task`),
from a real git repository whose commits hold symlinks leading out of the checkout:
`git archive` keeps them, tar's data filter refuses them, and the worker leaves them out
instead of failing every trial of the commit. Run without Ray: the task is plain Python."""

from __future__ import annotations

import io
import os
import pickle
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bisector.errors import BisectorError
from bisector.executors.archive import checkout_archive, commit_archive, folder_archive, unpack
from bisector.executors.ray_task import run_trial_task
from bisector.testing import gitutil

BENCH = 'import json\nprint(json.dumps({"t": 1.0}))\n'
NEEDS_LINK = (
    'import json, pathlib\npathlib.Path("hostlink").read_bytes()\nprint(json.dumps({"t": 1.0}))\n'
)
#: (name, target): absolute; relative but climbing out; out only through the link `a`
#: unpacked before it (`a/a/..` is `..`); the rest stay inside and are kept.
OUT = [("hostlink", "/etc/hosts"), ("esc", "../../etc"), ("sub/up", "../../x"), ("b", "a/a/..")]
INSIDE = [("a", "."), ("same", "bench.py"), ("sub/ok", "../bench.py")]


def _repo(tmp_path: Path, bench: str = BENCH) -> tuple[Path, str]:
    repo = gitutil.make_repo(tmp_path / "repo")
    (repo / "bench.py").write_text(bench)
    (repo / "sub").mkdir()
    for name, target in OUT + INSIDE:
        os.symlink(target, repo / name)
    return repo, gitutil.commit_all(repo, "links")


def _trial(repo: Path, sha: str, cache: Path) -> dict[str, Any]:
    spec = {
        "sha": sha,
        "checkout_id": sha,
        "builder": "local",
        "environment": {},
        "command": [sys.executable, "bench.py"],
        "env": {},
        "timeout_s": 60.0,
        "cache_dir": str(cache),
        "node_type": None,
    }
    return run_trial_task(spec, commit_archive(repo, sha))


def test_links_out_of_the_checkout_are_left_out_and_the_trial_measures(tmp_path: Path) -> None:
    """A benchmark that does not need them measures as with the local executor; the links
    inside the checkout are kept, nothing lands outside it and no half-unpacked folder stays."""
    repo, sha = _repo(tmp_path)
    cache = tmp_path / "cache"
    out = _trial(repo, sha, cache)
    assert out["status"] == "ok", out["reason"]
    assert out["metrics"] == {"t": [1.0]}
    checkout = cache / "checkouts" / sha
    for name, target in INSIDE:
        assert os.readlink(checkout / name) == target
    for name, _ in OUT:
        assert not os.path.lexists(checkout / name)
    assert sorted(p.name for p in (cache / "checkouts").iterdir()) == [sha]
    assert not (cache / "etc").exists() and not (tmp_path / "x").exists()


def test_a_benchmark_that_needs_a_left_out_link_fails_naming_it(tmp_path: Path) -> None:
    """Its reason names the links the checkout lacks, from a fresh unpack and from the
    node's cached checkout alike."""
    repo, sha = _repo(tmp_path, NEEDS_LINK)
    for _ in range(2):
        out = _trial(repo, sha, tmp_path / "cache")
        assert out["status"] == "failed"
        assert out["reason"].startswith("exited 1: FileNotFoundError")
        assert out["reason"].endswith(
            "; its checkout on the worker lacks b -> a/a/.., esc -> ../../etc, hostlink -> "
            "/etc/hosts and 1 more (a symlink that leads out of the checkout is not unpacked "
            "on Ray workers)"
        )


def test_the_driver_warns_of_each_link_workers_leave_out_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Named by their text alone (the driver has no checkout): absolute or climbing out;
    a synthetic state's folder is read the same way."""
    repo, sha = _repo(tmp_path)
    warned: set[str] = set()
    checkout_archive(repo, sha, None, warned=warned)
    checkout_archive(repo, sha, repo, warned=warned)
    lines = [line for line in capsys.readouterr().err.splitlines() if "symlink" in line]
    expected = ["esc -> ../../etc", "hostlink -> /etc/hosts", "sub/up -> ../../x"]
    assert len(lines) == len(expected), lines
    for line, link in zip(lines, expected, strict=True):
        assert "symlink leads out of the checkout: Ray workers leave it out" in line
        assert line.endswith(f"link='{link}'")
    assert os.readlink(repo / "hostlink") == "/etc/hosts"  # the archive keeps it as it is
    assert "hostlink" in tarfile.open(fileobj=io.BytesIO(folder_archive(repo))).getnames()


def test_another_entry_the_filter_refuses_is_one_error_the_driver_can_read(
    tmp_path: Path,
) -> None:
    """A file outside the checkout is refused: a bisector error (Ray pickles it back to
    the driver; tar's own errors do not survive that), nothing written, nothing left."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        entry = tarfile.TarInfo("../evil")
        tar.addfile(entry, io.BytesIO(b""))
    dest = tmp_path / "cache" / "checkouts" / "x"
    with pytest.raises(BisectorError) as caught:
        unpack(buffer.getvalue(), dest)
    error = pickle.loads(pickle.dumps(caught.value))
    assert error.message.startswith("the checkout cannot be unpacked: '../evil'")
    assert error.hint is not None and "local executor" in error.hint
    assert list(dest.parent.iterdir()) == []
    assert not (tmp_path / "cache" / "evil").exists()
