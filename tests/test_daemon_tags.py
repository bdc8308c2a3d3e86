"""The daemon against release tags that change under it: tags of non-commits, a last
known good whose tag was deleted or moved between cycles."""

from __future__ import annotations

import json
from pathlib import Path

from bisector.daemon.cycle import execute
from bisector.gitrepo import GitRepo
from bisector.releases import still_named
from bisector.store.daemon_state import DaemonState, LastGood
from bisector.testing import gitutil
from tests.conftest import run_cli
from tests.daemon_support import hide_release, publish_release, released_repo, webhook


def test_a_tag_of_a_blob_or_a_tree_is_skipped_and_the_cycle_completes(tmp_path: Path) -> None:
    """`git tag notes <blob>` (and a tree's, and an annotated tag of a blob) beside the
    releases: each is skipped with one `daemon.tag_skipped` warning, the cycle does not
    end `error` on every run; a tag of an annotated tag is peeled to its commit."""
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    hide_release(repo)
    blob = gitutil.git(repo.path, "hash-object", "-w", "bisector.yaml")
    gitutil.git(repo.path, "tag", "notes", blob)
    gitutil.git(repo.path, "tag", "tree", "HEAD^{tree}")
    gitutil.git(repo.path, "tag", "-a", "-m", "doc", "annotated-blob", blob)
    gitutil.git(
        repo.path, "-c", "advice.nestedTag=false", "tag", "-a", "-m", "n", "v2.3.1-n", "v2.3.1"
    )
    head = gitutil.git(repo.path, "rev-parse", "HEAD")
    with GitRepo(repo.path) as git:
        tags = {t.name: t.sha for t in git.tags()}
        assert tags["v2.3.1-n"] == repo.tags["v2.3.1"]
        assert not {"notes", "tree", "annotated-blob"} & set(tags)
    with DaemonState(repo.path / ".bisector") as state:
        state.set_last_good(head, "v2.3.1")  # nothing to measure: the cycle is the tags
    done = run_cli("daemon", "--once", "--repo", str(repo.path), timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    skipped = sorted(e["tag"] for e in events if e["event"] == "daemon.tag_skipped")
    assert skipped == ["annotated-blob", "notes", "tree"], done.stderr
    assert [e["outcome"] for e in events if e["event"] == "daemon.cycle.end"] == ["up_to_date"]
    with DaemonState(repo.path / ".bisector") as state:
        assert set(state.snapshotted_tags()) == {"v2.3.0", "v2.3.1", "v2.3.1-n"}


def test_a_last_good_whose_tag_moved_is_measured_by_its_commit(tmp_path: Path) -> None:
    """The last known good is v2.3.1; before the next cycle the tag is moved (`git tag -f`)
    onto the new head. The cycle bisects from the stored commit, named by its id (it used
    `v2.3.1`, now the head itself: `good and bad are the same commit`, every cycle)."""
    with webhook() as hook:
        repo = released_repo(tmp_path / "repo", webhook_url=hook.url)
        bad = hide_release(repo)
        assert execute(repo.path, None).outcome == "fine"
        publish_release(repo, bad)
        old = repo.tags["v2.3.1"]
        gitutil.git(repo.path, "tag", "-f", "v2.3.1", bad)
        result = execute(repo.path, None)
        assert result.outcome == "regression", result
        assert result.last_good == old and result.detail["culprit"] == repo.culprit
        assert len(hook.bodies) == 1
        assert f"between {old} and v2.4.0" in hook.bodies[0]["text"]


def test_a_last_good_tag_deleted_or_moved_is_named_by_what_names_its_commit_now(
    tmp_path: Path,
) -> None:
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    old = repo.tags["v2.3.1"]
    good = LastGood(old, "v2.3.1", 0.0)
    with GitRepo(repo.path) as git:
        assert still_named(git, good) == good
        gitutil.git(repo.path, "tag", "-d", "v2.3.1")
        assert still_named(git, good).ref == old
        gitutil.git(repo.path, "tag", "v2.3.1", repo.tags["v2.3.0"])
        gitutil.git(repo.path, "tag", "v2.3.1-final", old)
        assert still_named(git, good) == LastGood(old, "v2.3.1-final", 0.0)


def test_a_last_good_commit_gone_from_the_repository_starts_again_from_the_releases(
    tmp_path: Path,
) -> None:
    """The stored last known good names a commit the repository no longer has (history
    rewritten and collected, a fresh clone beside an old store): a warning and the first
    baseline again, not `error: git merge-base failed: 128` on every cycle."""
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    hide_release(repo)
    with DaemonState(repo.path / ".bisector") as state:
        state.set_last_good("0123456789" * 4, "v2.2.9")
    done = run_cli("daemon", "--once", "--repo", str(repo.path), timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [e["ref"] for e in events if e["event"] == "daemon.last_good_gone"] == ["v2.2.9"]
    assert [e["outcome"] for e in events if e["event"] == "daemon.cycle.end"] == ["fine"]
    with DaemonState(repo.path / ".bisector") as state:
        good = state.last_good()
        assert good is not None and good.sha == repo.tags["v2.3.1"]


def test_a_release_tag_that_is_also_a_branch_of_another_commit_is_skipped(
    tmp_path: Path,
) -> None:
    """`run` refuses a name that is a tag and a branch of different commits (ambiguous);
    the daemon skips such a release tag with one `daemon.tag_skipped` warning instead of
    failing every cycle on it (its snapshot, or its run as the baseline)."""
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    hide_release(repo)  # the head is v2.3.1: the first baseline would be v2.3.0
    gitutil.git(repo.path, "branch", "v2.3.0", repo.tags["v2.3.1"])
    # git then lists the tag as `v2.3.0`, not `tags/v2.3.0`: what the daemon does must
    # not hang on the user's git configuration
    gitutil.git(repo.path, "config", "core.warnAmbiguousRefs", "false")
    done = run_cli("daemon", "--once", "--repo", str(repo.path), timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    skipped = [e for e in events if e["event"] == "daemon.tag_skipped"]
    assert [e["tag"] for e in skipped] == ["v2.3.0"], done.stderr
    assert "refs/heads/v2.3.0" in skipped[0]["reason"]
    # v2.3.1, on the head, is the only release left: nothing below it to start from
    assert [e["outcome"] for e in events if e["event"] == "daemon.cycle.end"] == ["no_baseline"]
    with DaemonState(repo.path / ".bisector") as state:
        assert set(state.snapshotted_tags()) == {"v2.3.1"}


def test_a_last_good_tag_that_became_ambiguous_is_named_by_its_commit(tmp_path: Path) -> None:
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    old = repo.tags["v2.3.1"]
    good = LastGood(old, "v2.3.1", 0.0)
    with GitRepo(repo.path) as git:
        gitutil.git(repo.path, "branch", "v2.3.1", repo.tags["v2.3.0"])
        assert still_named(git, good) == LastGood(old, old, 0.0)
        # the same name as a branch of its own commit is not ambiguous
        gitutil.git(repo.path, "branch", "-f", "v2.3.1", old)
        assert still_named(git, good) == good


def test_a_daemon_branch_that_does_not_exist_names_the_key(tmp_path: Path) -> None:
    """`daemon.branch` naming no branch: the cycle's error names the key to fix (it said
    only git's `unknown ref 'nosuchbranch'`, with a hint about tags and commit ids)."""
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    config = repo.path / "bisector.yaml"
    config.write_text(config.read_text().replace("daemon:\n", "daemon:\n  branch: nosuchbranch\n"))
    done = run_cli("daemon", "--once", "--repo", str(repo.path), timeout=300)
    assert done.returncode != 0
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    (end,) = [e for e in events if e["event"] == "daemon.cycle.end"]
    assert end["outcome"] == "error", end
    assert "daemon.branch 'nosuchbranch': unknown ref" in json.dumps(end), end
