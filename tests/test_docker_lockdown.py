"""Docker trials are locked down (non-root, no capabilities, no new privileges, a pids
limit) and the builder never pulls an image.

Skipped when no daemon or no local base image is available (see tests/docker_support.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.images import ImageCollection

from bisector.builders.base import BuiltEnv, EnvBuilder
from bisector.builders.docker_env import DockerBuilder
from bisector.builders.docker_run import PIDS_LIMIT
from bisector.builders.registry import make_builder
from bisector.config import DockerOptions, Environment
from bisector.engine.checkouts import Checkouts
from bisector.engine.runner import TrialRunner
from bisector.errors import DockerError
from bisector.gitrepo import GitRepo
from bisector.ports import TrialStatus
from bisector.testing import gitutil
from tests.docker_support import BASE_IMAGE, docker_or_skip

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WHOAMI = """\
import json, os
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
pids_max = None
for path in ("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"):
    if os.path.exists(path):
        pids_max = open(path).read().strip()
        break
print(json.dumps({"value": 1.0, "_uid": os.getuid(), "_gid": os.getgid(), "_cap_eff": status["CapEff"].strip(),
                  "_cap_bnd": status["CapBnd"].strip(), "_no_new_privs": status.get("NoNewPrivs", "").strip(),
                  "_pids_max": pids_max, "_home_writable": os.access(os.environ["HOME"], os.W_OK)}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuiltEnv, Path]]:
    """A built docker environment (no requirements) for a one-commit repository."""
    docker_or_skip()
    root = gitutil.make_repo(tmp_path_factory.mktemp("lockdown") / "repo")
    gitutil.commit(root, {"whoami.py": WHOAMI}, "bench")
    git = GitRepo(root)
    store = root.parent / "store"
    environment = Environment(builder="docker", docker=DockerOptions(base_image=BASE_IMAGE))
    builder: EnvBuilder = make_builder("docker", vcs=git, environment=environment, store=store)
    commit = git.resolve("HEAD")
    try:
        with Checkouts(git, store) as checkouts:
            yield builder.prepare(commit, checkouts.get(commit)), store
    finally:
        builder.close()
        git.close()


def test_a_trial_runs_unprivileged(built: tuple[BuiltEnv, Path]) -> None:
    """Inside a trial: uid and gid are not 0, no capability, no new privileges, a pids limit."""
    env, store = built
    runner = TrialRunner(store / "runs" / "whoami", timeout_s=60, grace_s=1)
    result = runner.trial(env.command(["python", "whoami.py"]), cwd=env.checkout, env=env.environ(),
                          launcher=env.launcher)
    assert result.status is TrialStatus.OK, result.stderr_path.read_text()
    meta = result.meta
    assert meta["_uid"] != 0 and meta["_gid"] != 0
    assert int(meta["_cap_eff"], 16) == 0 and int(meta["_cap_bnd"], 16) == 0
    assert meta["_no_new_privs"] == "1"
    assert meta["_pids_max"] == str(PIDS_LIMIT)
    assert meta["_home_writable"] is True  # HOME is the tmpfs /tmp
    session = env.launcher.options.labels  # type: ignore[union-attr]  # this builder's containers only
    left = docker_or_skip().containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in session.items()]})
    assert left == []


class _NoPullClient(docker.DockerClient):
    """A real client that records (and refuses) every pull."""

    pulls: list[str] = []

    @property
    def images(self) -> ImageCollection:
        pulls = self.pulls

        class Recording(ImageCollection):
            def pull(self, repository: str, *args: Any, **kwargs: Any) -> Any:
                pulls.append(repository)
                raise AssertionError(f"pulled {repository}")

        return Recording(client=self)


def test_a_missing_base_image_is_an_error_without_a_pull(tmp_path: Path) -> None:
    """A base image not on the daemon is a DockerError naming it with a hint; nothing is pulled."""
    docker_or_skip()
    root = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(root, {"whoami.py": WHOAMI}, "one")
    missing = "docker.io/library/busybox:bisector-no-such-tag"
    environment = Environment(builder="docker", docker=DockerOptions(base_image=missing))
    client = _NoPullClient.from_env()
    assert isinstance(client, _NoPullClient)
    git = GitRepo(root)
    builder = DockerBuilder(git, environment, tmp_path / "store", client=client)
    commit = git.resolve("HEAD")
    try:
        with Checkouts(git, tmp_path / "store") as checkouts, pytest.raises(DockerError) as info:
            builder.prepare(commit, checkouts.get(commit))
        assert missing in str(info.value) and "never pulls" in str(info.value)
        assert info.value.hint is not None and "docker load" in info.value.hint
        assert client.pulls == []
    finally:
        builder.close()
        git.close()
    assert json.dumps(client.pulls) == "[]"
