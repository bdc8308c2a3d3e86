"""The git adapter on real repositories: refs, ranges, tags, files, worktrees."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bisector.errors import GitError, RefError
from bisector.gitrepo import GitRepo, validate_ref
from bisector.testing import gitutil
from bisector.testing.sample import SampleRepo

from .conftest import BENCH_PY_CONFIG, run_cli

REFUSED = [
    "--upload-pack=x",
    "-x",
    "",
    "a b",
    "v1..v2",
    "a..b",
    "x\n",
    "x\r",
    "x\x1b[31m",
    "x\u2028y",
    "v2.2\u202e",  # RIGHT-TO-LEFT OVERRIDE: format characters (Cf) too
    "x\u2066y",
    "x\u200ey",
    "x\u200by",
    "x\ufeff",
    "foo.lock",
    "v1/foo.lock/x",
    "@{",
    "v1@{",
    "v1^{",
    "HEAD~x",
    "~1",
    "x/",
    "/x",
    "a//b",
    "x.",
    ".x",
    "a/.b",
    "x?",
    "x*",
    "x[1]",
    "x\\y",
    "a" * 256,
]


@pytest.mark.parametrize("ref", REFUSED, ids=repr)
def test_unsafe_refs_are_refused_before_git(ref: str) -> None:
    """Refs that git could read as options, with control characters, or that git itself
    would refuse as names, never reach git."""
    with pytest.raises(RefError):
        validate_ref(ref)


def test_an_empty_ref_is_called_empty() -> None:
    """'' is refused as empty, not as an option."""
    with pytest.raises(RefError, match="the ref is empty") as info:
        validate_ref("")
    assert "'-'" not in info.value.message


ACCEPTED = [
    "v2.3.1",
    "main",
    "HEAD~3",
    "abc123",
    "release/2.4",
    "v2.4.0^",
    "HEAD^2~3",
    "HEAD^{commit}",
    "HEAD@{1}",
    "@{-1}",
    "main@{upstream}",
    "@",
    "@~2",
    ":/fix",
    "v1.0,x",
    "ünï",
    "ünï~1",
    "x;rm",  # harmless: refs go to git as one argv item, never through a shell
    "$(id)",
    "a@b",
    "v1.lock.x",
]


@pytest.mark.parametrize("ref", ACCEPTED)
def test_ordinary_refs_pass(ref: str) -> None:
    """Tags, branches, ancestry suffixes, reflog forms, shas and any name git allows."""
    assert validate_ref(ref) == ref


# Names (no rev suffix, no leading '-', no control or format character) on which bisector and
# `git check-ref-format --allow-onelevel` must agree.
NAMES = [
    *["v1.0,x", "ünï", "a.b", "a/b/c", "x.y.lock", "x.lock", "a/x.lock/b", ".a", "a/.b"],
    *["a.", "a/", "/a", "a//b", "a..b", "a b", "a?", "a*", "a[", "a\\b", "@", "a@{b"],
    *["a@b", "{}", "a{b}", "é/ü", "x;rm", "$(id)", "<script>", "a'b", 'a"b'],
]


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_names_agree_with_git_check_ref_format(name: str) -> None:
    """Every name git accepts is accepted; every name git refuses is refused ('@' aside:
    git refuses it as a name, bisector takes it as HEAD)."""
    done = subprocess.run(
        ["git", "check-ref-format", "--allow-onelevel", name], capture_output=True, check=False
    )
    try:
        validate_ref(name)
    except RefError:
        accepted = False
    else:
        accepted = True
    assert accepted == (done.returncode == 0 or name == "@")


def test_tags_with_a_comma_or_non_ascii_letters_resolve(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """`git tag 'v1.0,x'` and `git tag ünï` are refs like any other, in the adapter and in
    `snapshot show`."""
    sample = make_sample(n_commits=4, culprit=2)
    head = gitutil.git(sample.path, "rev-parse", "HEAD")
    for tag in ("v1.0,x", "ünï"):
        gitutil.git(sample.path, "tag", tag)
        with GitRepo(sample.path) as repo:
            assert repo.resolve(tag).sha == head
            assert repo.resolve(f"{tag}~1").sha == sample.commits[-2]
        taken = run_cli("snapshot", "take", tag, "--repo", str(sample.path), timeout=120)
        assert taken.returncode == 0, taken.stderr
        shown = run_cli("snapshot", "show", tag, "--repo", str(sample.path), "--json")
        assert shown.returncode == 0, shown.stderr
        snap = json.loads(shown.stdout)
        assert snap["commit"] == head and tag in snap["tags"]


def test_a_tag_with_a_bidi_override_is_refused_like_a_control_character(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """git allows the tag `v2.2<U+202E>`; `snapshot show` of it is one `error:` line, exit 2,
    which writes the character out."""
    sample = make_sample(n_commits=4, culprit=2)
    gitutil.git(sample.path, "tag", "v2.2\u202e")
    done = run_cli("snapshot", "show", "v2.2\u202e", "--repo", str(sample.path))
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: invalid ref 'v2.2\\u202e': a ref cannot contain control characters, line "
        "breaks or Unicode format characters (bidi overrides, zero-width spaces)"
    ], done.stderr
    assert "\u202e" not in done.stderr


def test_an_empty_good_ref_says_it_is_empty(make_sample: Callable[..., SampleRepo]) -> None:
    """`run --good ''`: one `error:` line saying the ref is empty, exit 2."""
    sample = make_sample(n_commits=4, culprit=2)
    done = run_cli("run", "--good", "", "--bad", "v2.4.0", "--repo", str(sample.path))
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: invalid ref '': the ref is empty"], done.stderr


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
        with pytest.raises(
            RefError, match=r"^good v2.4.0 \(\w+\) is not an ancestor of bad v2.3.0 "
        ):
            repo.check_range(bad, good, ("v2.4.0", "v2.3.0"))
        with pytest.raises(RefError, match="same commit"):
            repo.check_range(good, good)
        with pytest.raises(RefError, match="unknown ref"):
            repo.resolve("v9.9.9")
    # both refs and the commit: a branch far back, a tag moved, read wrong on their own
    gitutil.git(sample.path, "branch", "release", "v2.3.0")
    done = run_cli("run", "--good", "release", "--bad", "v2.3.0", "--repo", str(sample.path))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"error: good release and bad v2.3.0 are the same commit ({good.sha[:10]})"
    ), done.stderr


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


def test_a_commit_message_search_resolves_and_a_tree_is_not_a_commit(tmp_path: Path) -> None:
    """`:/text` (the youngest commit whose message matches) is a ref the docs accept: it
    named no commit at all, because `^{commit}` was searched for as part of the text."""
    repo = gitutil.make_repo(tmp_path / "repo")
    first = gitutil.commit(repo, {"a.txt": "1\n"}, "release one")
    second = gitutil.commit(repo, {"a.txt": "2\n"}, "fix the cache")
    with GitRepo(repo) as git:
        assert git.resolve(":/release").sha == first
        assert git.resolve(":/fix").sha == second
        with pytest.raises(RefError, match="does not name a commit"):
            git.resolve("HEAD:a.txt")
        with pytest.raises(RefError, match="does not name a commit"):
            git.resolve(":/nosuchmessage")


def test_a_name_that_is_a_tag_and_a_branch_of_other_commits_is_refused(tmp_path: Path) -> None:
    """git reads `same` as the tag when a branch `same` exists too, with only a warning:
    `run --good same` bisected a range the user may not have meant (here: "good and bad are
    the same commit", with the branch far back). Refused, naming both; the full names
    resolve, and a tag and a branch of one commit are not ambiguous."""
    repo = gitutil.make_repo(tmp_path / "repo")
    files = {"a.txt": "1\n", "bisector.yaml": BENCH_PY_CONFIG, "bench.py": "print('{}')\n"}
    first = gitutil.commit(repo, files, "one")
    second = gitutil.commit(repo, {"a.txt": "2\n"}, "two")
    gitutil.git(repo, "branch", "same", first)
    gitutil.git(repo, "tag", "-a", "same", "-m", "annotated", second)
    gitutil.git(repo, "branch", "also", second)
    gitutil.git(repo, "tag", "also", second)
    with GitRepo(repo) as git:
        with pytest.raises(RefError) as refused:
            git.resolve("same~1")
        assert refused.value.message == (
            f"ambiguous ref 'same~1': same is both the tag refs/tags/same ({second[:10]}) "
            f"and the branch refs/heads/same ({first[:10]})"
        )
        assert refused.value.hint == "pass the full name: refs/tags/same or refs/heads/same"
        assert git.resolve("refs/heads/same").sha == first
        assert git.resolve("refs/tags/same").sha == second
        assert git.resolve("also").sha == second
    done = run_cli("run", "--good", "same", "--bad", "HEAD", "--repo", str(repo))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ambiguous ref 'same': "), done.stderr
    assert not (repo / ".bisector").exists()
