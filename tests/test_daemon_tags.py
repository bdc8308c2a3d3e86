"""The daemon against release tags that change under it: tags of non-commits, a last
known good whose tag was deleted or moved between cycles."""

from __future__ import annotations

import json
from pathlib import Path

from bisector.gitrepo import GitRepo
from bisector.store.daemon_state import DaemonState
from bisector.testing import gitutil
from tests.conftest import run_cli
from tests.daemon_support import hide_release, released_repo


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
