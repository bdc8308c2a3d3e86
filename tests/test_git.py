"""The git adapter on real repositories: refs, ranges, tags, files, worktrees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bisector.errors import GitError, RefError
from bisector.gitrepo import GitRepo, validate_ref
from bisector.testing.sample import SampleRepo

from .conftest import run_cli


@pytest.mark.parametrize("ref", ["--upload-pack=x", "-x", "", "a b", "v1..v2", "x;rm", "$(id)"])
def test_unsafe_refs_are_refused_before_git(ref: str) -> None:
    """Refs that git could read as options, or with odd characters, never reach git."""
    with pytest.raises(RefError):
        validate_ref(ref)


@pytest.mark.parametrize("ref", ["v2.3.1", "main", "HEAD~3", "abc123", "release/2.4", "v2.4.0^"])
def test_ordinary_refs_pass(ref: str) -> None:
    """Tags, branches, ancestry suffixes and shas are accepted."""
    assert validate_ref(ref) == ref


def test_ranges_tags_and_files(make_sample: Callable[..., SampleRepo]) -> None:
    """Ranges are oldest-first, tags between endpoints are found, files come from objects."""
    sample = make_sample(merges=True)
    with GitRepo(sample.path) as repo:
        good, bad = repo.resolve("v2.3.0"), repo.resolve("v2.4.0")
        assert good.sha == sample.tags["v2.3.0"] and bad.sha == sample.tags["v2.4.0"]
        fp = repo.commits_between(good.sha, bad.sha)
        assert [c.sha for c in fp] == sample.commits[1:]
        everything = repo.commits_between(good.sha, bad.sha, first_parent=False)
        assert len(everything) > len(fp) and fp[-1].sha == everything[-1].sha
        tags = repo.tags_between(good.sha, bad.sha)
        assert [t.name for t in tags] == ["v2.3.1", "v2.3.2", "v2.3.3"]
        text = repo.read_file(good.sha, "configs/serving.yaml")
        assert text is not None and b"pad_to_target: false" in text
        assert repo.read_file(good.sha, "no/such/file") is None
        assert "configs/serving.yaml" in repo.list_files(bad.sha)
        assert "requirements.txt" in repo.changed_paths(good.sha, bad.sha)


def test_endpoint_order_is_checked(make_sample: Callable[..., SampleRepo]) -> None:
    """good must be an ancestor of bad, and not the same commit."""
    sample = make_sample(n_commits=8, culprit=4)
    with GitRepo(sample.path) as repo:
        good, bad = repo.resolve("v2.3.0"), repo.resolve("v2.4.0")
        repo.check_range(good, bad)
        with pytest.raises(RefError, match="not an ancestor"):
            repo.check_range(bad, good)
        with pytest.raises(RefError, match="same commit"):
            repo.check_range(good, good)
        with pytest.raises(RefError, match="unknown ref"):
            repo.resolve("v9.9.9")


def test_worktree_leaves_user_checkout_alone(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """A detached worktree has the old files; the user's working tree is untouched."""
    sample = make_sample(n_commits=8, culprit=4)
    before = (sample.path / "serving/infer.py").read_text()
    with GitRepo(sample.path) as repo, repo.worktree(sample.tags["v2.3.0"], tmp_path / "wt") as wt:
        assert "max(batch_size" not in (wt / "serving/infer.py").read_text()
    assert not (tmp_path / "wt").exists()
    assert (sample.path / "serving/infer.py").read_text() == before


def test_not_a_repository(tmp_path: Path) -> None:
    """Opening a folder that is not a repository is a clean error."""
    with pytest.raises(GitError, match="not a git repository"):
        GitRepo(tmp_path)


def test_cli_refuses_option_like_ref(make_sample: Callable[..., SampleRepo]) -> None:
    """`--good=--upload-pack=x` is one error line, exit 2, nothing written."""
    sample = make_sample(n_commits=6, culprit=3)
    done = run_cli("run", "--good=--upload-pack=x", "--bad", "v2.4.0", "--repo", str(sample.path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "cannot start with '-'" in done.stderr
    assert not (sample.path / ".bisector").exists()
