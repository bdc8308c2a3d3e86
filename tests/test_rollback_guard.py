"""Rollback and isolation never write where they must not: the repository, the store,
files and devices as targets, paths outside the checkout, symlinks committed as configs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from bisector.testing.gitutil import commit_all, git
from tests.conftest import tree_digest
from tests.rollback_support import GOOD, Demo, make_demo, run_cli

# End to end: real repositories, stores and CLI processes (seconds each).
pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    return make_demo(tmp_path)


def _write_target(demo: Demo, text: str) -> None:
    (demo.repo / "bisector.yaml").write_text(
        "benchmark:\n  command: [python, bench.py]\nmetrics:\n  latency_ms: {direction: lower}\n"
        f"rollback:\n  target: {text}\n"
    )


def _assert_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def _assert_repo_intact(demo: Demo) -> None:
    assert not demo.repo.is_symlink() and (demo.repo / ".git").is_dir()
    assert (
        subprocess.run(
            ["git", "rev-parse", "--git-dir"], cwd=demo.repo, capture_output=True, check=False
        ).returncode
        == 0
    )  # still a repository
    assert not list(demo.repo.parent.glob(".*.bisector*"))  # nothing staged beside it
    assert not (demo.repo.parent.parent / f".{demo.repo.parent.name}.bisector").exists()


@pytest.mark.parametrize("text", ["''", "'.'", "'./'", "'..'", "'../..'", "'configs/..'"])
def test_config_refuses_the_repository_as_target(demo: Demo, text: str) -> None:
    """`rollback.target` of '', '.', or a folder above the repository fails validation; a rollback touches nothing."""
    _write_target(demo, text)
    _assert_error(run_cli("config", "check", cwd=demo.repo), "rollback.target")
    before = tree_digest(demo.repo)
    for extra in (["--yes"], ["--dry-run"]):
        _assert_error(
            run_cli("rollback", "--to", "v2.3.1", *extra, cwd=demo.repo), "rollback.target"
        )
    _assert_repo_intact(demo)
    assert tree_digest(demo.repo) == before


def test_resolved_targets_covering_repository_or_store_are_refused(
    demo: Demo, tmp_path: Path
) -> None:
    """The repository, its parent, the store and a symlink to the repository are refused as targets (resolved)."""
    link = tmp_path / "repo-link"
    link.symlink_to(demo.repo)
    (demo.repo / ".bisector").mkdir()
    before = tree_digest(demo.repo)
    cases = {
        str(demo.repo): "is the repository",
        str(demo.repo.parent): "contains the repository",
        str(demo.repo / ".bisector"): "is the bisector store",
        str(link): "the repository",
        str(demo.repo / "configs" / ".."): "the repository",
    }
    for target, words in cases.items():
        for extra in (["--yes"], ["--dry-run"]):
            _assert_error(
                run_cli("rollback", "--to", "v2.3.1", "--target", target, *extra, cwd=demo.repo),
                words,
            )
    # The same through bisector.yaml, where the text alone looks harmless.
    _write_target(demo, json.dumps(str(link)))
    _assert_error(run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo), "the repository")
    assert link.is_symlink() and os.readlink(link) == str(demo.repo)
    (demo.repo / "bisector.yaml").unlink()
    _assert_repo_intact(demo)
    assert {k: v for k, v in tree_digest(demo.repo).items() if k != "bisector.yaml"} == {
        k: v for k, v in before.items() if k != "bisector.yaml"
    }


def _listing(root: Path) -> dict[str, str]:
    """Every entry under `root`, links not followed: folders, symlinks with their text and
    files with their bytes, so a refused rollback that created or swapped anything shows."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "folder"
            else:
                found[rel] = f"file {path.read_bytes()!r}"
    return found


# What QA hit: a folder of the store (emptied by the next `run --fresh`, live set and all),
# a folder tracked in git (shown deleted by `git status`), a link whose folder is in the
# repository, and a path not made yet whose folder is in the repository.
_INSIDE = {
    "store folder": (".bisector/worktrees", "inside the bisector store"),
    "tracked folder": ("configs", "inside the repository"),
    "link into the repository": ("{tmp}/srv-link", "inside the repository"),
    "missing path under the repository": ("new/live", "inside the repository"),
}


@pytest.mark.parametrize("case", list(_INSIDE))
def test_targets_inside_the_repository_or_store_are_refused_and_touch_nothing(
    demo: Demo, tmp_path: Path, case: str
) -> None:
    """A target inside the store or the work tree (tracked, linked into or not made yet) is exit 2, one `error:` line, nothing changed; `config check` says so too."""
    (demo.repo / ".bisector" / "worktrees").mkdir(parents=True)
    (tmp_path / "srv-link").symlink_to(demo.repo / "configs")
    text, says = _INSIDE[case]
    text = text.format(tmp=tmp_path)
    _write_target(demo, json.dumps(text))  # relative to the repository, as bisector.yaml is
    before = _listing(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    runs = [  # --target is relative to the current folder; so is --repo
        run_cli("rollback", "--to", "v2.3.1", "--target", text, "--yes", cwd=demo.repo),
        run_cli("rollback", "--to", "v2.3.1", "--target", text, "--dry-run", cwd=demo.repo),
        run_cli("rollback", "--to", "v2.3.1", "--repo", "../repo", "--yes", cwd=outside),
        run_cli("config", "check", "--repo", "../repo", cwd=outside),  # said before any rollback
    ]
    outside.rmdir()
    for done in runs:
        _assert_error(done, says, "refusing to replace it", "outside the repository")
        assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
            done.stderr.splitlines()[0]
        ], done.stderr
    assert _listing(tmp_path) == before
    assert git(demo.repo, "status", "--porcelain", "--untracked-files=no") == ""
    _assert_repo_intact(demo)


def test_the_daemons_policy_rollback_refuses_a_target_inside_the_repository(demo: Demo) -> None:
    """The daemon's policy (and the guard, through the same call) refuses `rollback.target: configs` before touching it."""
    from bisector.config import load_config
    from bisector.daemon.policy import roll_back_to
    from bisector.errors import RollbackError
    from bisector.store.control import ControlStore

    _write_target(demo, "configs")
    cfg = load_config(demo.repo, None)
    with ControlStore.for_repo(demo.repo, cfg.snapshots.store) as control:
        before = _listing(demo.repo.parent)
        with pytest.raises(RollbackError, match="is inside the repository"):
            roll_back_to(demo.repo, cfg, "v2.3.1", control)
        assert _listing(demo.repo.parent) == before
        assert control.last_rollback() is None  # no journal entry either


def test_targets_outside_both_still_roll_back(demo: Demo, tmp_path: Path) -> None:
    """Beside the repository (a name it prefixes) and a link to a folder outside both: applied."""
    (demo.repo / ".bisector").mkdir()
    beside = tmp_path / "repo-live"  # "repo" is a string prefix of it, not a folder above it
    real = tmp_path / "srv" / "real"
    real.mkdir(parents=True)
    link = tmp_path / "srv" / "live-link"
    link.symlink_to(real)
    for target in (beside, link):
        done = run_cli(
            "rollback", "--to", "v2.3.1", "--target", str(target), "--yes", cwd=demo.repo
        )
        assert done.returncode == 0, done.stderr
        assert (target / "model.yaml").read_bytes() == GOOD["configs/model.yaml"]
        _write_target(demo, json.dumps(str(target)))
        checked = run_cli("config", "check", cwd=demo.repo)
        assert checked.returncode == 0 and checked.stderr.endswith(": ok\n"), checked.stderr
    assert git(demo.repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_targets_that_are_not_folders_are_refused_with_their_type(
    demo: Demo, tmp_path: Path
) -> None:
    """A regular file, a FIFO and /dev/null as the target are refused naming their type, with and without --dry-run."""
    regular = tmp_path / "live.yaml"
    regular.write_text("keep: me\n")
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo)
    cases = {regular: "a regular file", fifo: "a FIFO", Path("/dev/null"): "a character device"}
    for target, kind in cases.items():
        for extra in (["--yes"], ["--dry-run"]):
            _assert_error(
                run_cli(
                    "rollback", "--to", "v2.3.1", "--target", str(target), *extra, cwd=demo.repo
                ),
                kind,
                "not a folder",
            )
    assert regular.read_text() == "keep: me\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert not list(tmp_path.glob(".*.bisector*"))


def test_symlinked_config_in_git_is_refused_and_leaves_nothing(demo: Demo) -> None:
    """A config committed as a symlink (mode 120000) is refused clearly; no state folder is left beside the target."""
    (demo.repo / "configs").mkdir(exist_ok=True)
    for path, data in GOOD.items():
        (demo.repo / path).parent.mkdir(parents=True, exist_ok=True)
        (demo.repo / path).write_bytes(data)
    (demo.repo / "configs" / "current.yaml").symlink_to("serving.yaml")
    commit_all(demo.repo, "link a config", "v2.5.0", annotated=True)
    assert "120000" in git(demo.repo, "ls-tree", "v2.5.0", "configs/current.yaml")
    for extra in (["--dry-run"], ["--yes"]):
        _assert_error(
            run_cli("rollback", "--to", "v2.5.0", *extra, cwd=demo.repo),
            "symlink",
            "configs/current.yaml",
        )
    assert not demo.target.exists() and not demo.target.is_symlink()
    assert not list(demo.target.parent.glob(f".{demo.target.name}.bisector*"))


def _sample_isolation_repo(tmp_path: Path) -> tuple[Path, Path, Path]:
    from bisector.testing.sample import SampleSpec, build_sample_repo

    sample = build_sample_repo(tmp_path / "repo", SampleSpec(n_commits=10, culprit=8))
    good = tmp_path / "good.yaml"
    bad = tmp_path / "bad.yaml"
    serving = (sample.path / "configs" / "serving.yaml").read_text()
    good.write_text(serving)
    bad.write_text(serving.replace("pad_to_target: false", "pad_to_target: true"))
    return sample.path, good, bad


def test_isolation_writes_only_inside_the_checkout(tmp_path: Path) -> None:
    """`config --target` and `deps` refuse absolute and `..` paths before measuring, and write nothing there."""
    repo, good, bad = _sample_isolation_repo(tmp_path)
    outside = tmp_path / "outside" / "evil.yaml"
    for target in (str(outside), "../outside/evil.yaml", "configs/../../outside/evil.yaml"):
        _assert_error(
            run_cli(
                "config",
                "--good",
                str(good),
                "--bad",
                str(bad),
                "--target",
                target,
                "--repo",
                str(repo),
                cwd=repo,
            ),
            "not a path inside the repository",
        )
        _assert_error(
            run_cli(
                "config",
                "isolate",
                "--good",
                str(good),
                "--bad",
                str(bad),
                "--target",
                target,
                "--repo",
                str(repo),
                cwd=repo,
            ),
            "not a path inside the repository",
        )
    assert not outside.parent.exists()
    cfg = (repo / "bisector.yaml").read_text()
    assert "  requirements: [requirements.txt]\n" in cfg
    (repo / "bisector.yaml").write_text(
        cfg.replace("[requirements.txt]", f"[{json.dumps(str(outside))}]")
    )
    lock = tmp_path / "req.txt"
    lock.write_text("numpy==1.26.4\n")
    _assert_error(
        run_cli(
            "deps", "--good-lock", str(lock), "--bad-lock", str(lock), "--repo", str(repo), cwd=repo
        ),
        "not a path inside the repository",
    )
    assert not outside.parent.exists()
    assert not (repo / ".bisector" / "runs").exists() or not any(
        (repo / ".bisector" / "runs").iterdir()
    )
