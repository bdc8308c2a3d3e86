"""A generator of sample serving repositories: the demo's subject and the tests' fixture.

It writes a small inference service whose latency comes from its own code, configs and
installed packages (see `sample_repo/bench.py`), then commits a history with releases,
filler commits, optional feature-branch merges, untestable commits and one planted
culprit: code (padding every request to the target batch size, the dynamic-batching
regression), a dependency upgrade (with `venv`, a locally built wheel of `fastpad` that
got slower) or a config key. The generator also says what it planted and what changed
between releases, computed from its own model of the files, so tests can compare the
tool's answers with an independent truth.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bisector.plumbing.yamlkeys import diff_flat, flatten
from bisector.testing import gitutil
from bisector.testing.sample_spec import (
    AUTHOR,
    CULPRIT_KEYS,
    CULPRIT_UPGRADES,
    EXTRA_REQUIREMENTS,
    MODEL_YAML,
    RELEASE_CHANGES,
    RELEASES,
    REQUIREMENTS,
    SERVING_YAML,
    START,
    TEMPLATE,
    CulpritKind,
    SampleRepo,
    SampleSpec,
    bisector_yaml,
    fastpad_wheels,
    infer_py,
    pyproject,
    set_key,
    yaml,
)

__all__ = [
    "AUTHOR",
    "RELEASES",
    "CulpritKind",
    "SampleRepo",
    "SampleSpec",
    "build_sample_repo",
    "expected_diff",
]


_DEFAULT_SPEC = SampleSpec()


def build_sample_repo(path: Path, spec: SampleSpec = _DEFAULT_SPEC) -> SampleRepo:
    """Create the repository at `path` (replacing it) and return what was planted."""
    if not 1 <= spec.culprit <= spec.n_commits:
        raise ValueError("culprit must be within 1..n_commits")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    wheelhouse: Path | None = None
    if spec.builder in ("venv", "docker"):
        wheelhouse = path.parent / (path.name + "-wheels")
        shutil.rmtree(wheelhouse, ignore_errors=True)
        wheelhouse.mkdir()
        fastpad_wheels(wheelhouse, spec.slowdown)
    gitutil.make_repo(path, author=AUTHOR, start=START)
    history = _History(SampleRepo(path=path, spec=spec, wheelhouse=wheelhouse))
    history.initial_commit()
    for i in range(1, spec.n_commits + 1):
        history.change(i)
    return history.repo


class _History:
    """Writes the sample's commits one by one; the files' model lives here between them.

    The order of git calls is what fixes the commit ids (dates come from gitutil's clock),
    so a change here must keep it: the demo's and the tests' ids stay the same.
    """

    def __init__(self, repo: SampleRepo) -> None:
        self.repo, self.spec, self.path = repo, repo.spec, repo.path
        spec = self.spec
        self.serving = copy.deepcopy(SERVING_YAML)
        self.model = copy.deepcopy(MODEL_YAML)
        extra = EXTRA_REQUIREMENTS[spec.culprit_deps] if spec.kind == "dependency" else {}
        self.reqs = {**REQUIREMENTS, **extra}
        self.pad_code = self.untestable = self.second = False
        self.release_at = _release_points(spec)

    def write_all(self) -> None:
        path, spec = self.path, self.spec
        (path / "configs").mkdir(exist_ok=True)
        (path / "configs/serving.yaml").write_text(yaml(self.serving))
        (path / "configs/model.yaml").write_text(yaml(self.model))
        if spec.deps_file == "pyproject":
            (path / "pyproject.toml").write_text(pyproject(self.reqs))
        else:
            (path / "requirements.txt").write_text(
                "".join(f"{n}=={v}\n" for n, v in sorted(self.reqs.items()))
            )
        (path / "serving/infer.py").write_text(
            infer_py(spec, pad_code=self.pad_code, untestable=self.untestable, second=self.second)
        )

    def initial_commit(self) -> None:
        path, spec, repo = self.path, self.spec, self.repo
        shutil.copytree(
            TEMPLATE, path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
        (path / "serving/__init__.py").write_text("")
        (path / "bisector.yaml").write_text(bisector_yaml(spec, path, repo.wheelhouse))
        (path / ".gitignore").write_text(".bisector/\n__pycache__/\n")
        (path / "README.md").write_text("# sample serving stack\n")
        self.write_all()
        tag_first = spec.releases[0]
        repo.commits.append(
            gitutil.commit_all(path, "Initial serving stack", tag_first, annotated=True)
        )
        repo.tags[tag_first] = repo.commits[0]
        repo.states[tag_first] = _state_model(self.serving, self.model, self.reqs)

    def _subject(self, i: int) -> str:
        """Change the model for commit `i` and say what it did."""
        spec = self.spec
        subject = f"Refactor request handling ({i})"
        culprit_here = i == spec.culprit
        if i in spec.untestable:
            self.untestable = True
            subject = f"WIP: move kernels to new build ({i})"
        elif self.untestable:
            self.untestable = False
            subject = f"Fix kernel build ({i})"
        if spec.second_step and i == spec.second_step:
            self.second = True
            subject = "Tokenize every request twice for the audit log"
        if culprit_here and spec.kind == "code":
            self.pad_code = True
            subject = "Pad requests to the target batch size for dynamic batching"
        elif culprit_here and spec.kind == "dependency":
            self.reqs.update(CULPRIT_UPGRADES[spec.culprit_deps])
            subject = (
                "Upgrade fastpad to 1.3.0"
                if spec.culprit_deps == "fastpad"
                else "Upgrade " + ", ".join(sorted(CULPRIT_UPGRADES[spec.culprit_deps]))
            )
        elif culprit_here and spec.kind == "config":
            for key, value in CULPRIT_KEYS[spec.culprit_keys].items():
                set_key(self.serving, key, value)
            subject = (
                "Enable pad_to_target in batching config"
                if spec.culprit_keys == "one"
                else "Tune batching, server and logging config"
            )
        return subject

    def change(self, i: int) -> None:
        """Commit `i` (on a feature branch merged back, every 6th with `merges`), then its release."""
        path, spec, repo = self.path, self.spec, self.repo
        subject = self._subject(i)
        culprit_here = i == spec.culprit
        branch = spec.merges and i % 6 == 0 and i != spec.n_commits
        if branch and (not culprit_here or spec.culprit_in_branch):
            gitutil.git(path, "checkout", "-q", "-b", f"feature-{i}")
            (path / "serving" / f"feature_{i}.py").write_text(f"FEATURE = {i}\n")
            gitutil.commit_all(path, f"Add feature {i} scaffolding")
            self.write_all()
            (path / "serving" / f"feature_{i}.py").write_text(f"FEATURE = {i}\nENABLED = True\n")
            inner = gitutil.commit_all(path, subject)
            gitutil.git(path, "checkout", "-q", "main")
            sha = gitutil.merge(path, f"feature-{i}", f"Merge feature {i}")
            if culprit_here:
                repo.culprit = inner
        else:
            self.write_all()
            (path / "serving" / "changelog.txt").write_text(f"change {i}\n")
            sha = gitutil.commit_all(path, subject)
            if culprit_here:
                repo.culprit = sha
        repo.commits.append(sha)
        if spec.second_step and i == spec.second_step:
            repo.second_culprit = sha
        if culprit_here:
            repo.culprit_first_parent = sha
            repo.culprit_subject = subject
        if i in spec.untestable:
            repo.untestable.append(sha)
        tag = self.release_at.get(i)
        if tag is not None:
            self._release(tag)

    def _release(self, tag: str) -> None:
        repo = self.repo
        for kind, key, value in RELEASE_CHANGES.get(tag, []):
            if kind == "req":
                self.reqs[key] = value
            else:
                set_key(self.serving if kind == "serving" else self.model, key, value)
        self.write_all()
        sha = gitutil.commit_all(self.path, f"Prepare release {tag}", tag, annotated=True)
        repo.commits.append(sha)
        if self.untestable:  # the release commit inherits the broken build
            repo.untestable.append(sha)
        repo.tags[tag] = sha
        repo.states[tag] = _state_model(self.serving, self.model, self.reqs)


def _release_points(spec: SampleSpec) -> dict[int, str]:
    """Spread the releases after the first evenly; the last one is on the last commit."""
    later = spec.releases[1:]
    return {round(spec.n_commits * (k + 1) / len(later)): tag for k, tag in enumerate(later)}


def _state_model(
    serving: Mapping[str, Any], model: Mapping[str, Any], reqs: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "configs/serving.yaml": flatten(serving),
        "configs/model.yaml": flatten(model),
        "requirements": dict(reqs),
    }


def expected_diff(repo: SampleRepo, a: str, b: str) -> dict[str, Any]:
    """What changed between two release tags, from the generator's own model of the files."""
    sa, sb = repo.states[a], repo.states[b]
    keys: list[tuple[str, str]] = []
    for file in ("configs/serving.yaml", "configs/model.yaml"):
        fa, fb = sa[file], sb[file]
        keys.extend((file, d.key) for d in diff_flat(fa, fb))
    packages = {
        name: (sa["requirements"].get(name), sb["requirements"].get(name))
        for name in sorted(set(sa["requirements"]) | set(sb["requirements"]))
        if sa["requirements"].get(name) != sb["requirements"].get(name)
    }
    return {"config_keys": keys, "packages": packages}
