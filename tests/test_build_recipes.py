"""What a builder makes of a commit's requirement files before anything is installed.

Real git repositories and real uv environments (wheels from `bisector.testing.wheels`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bisector.builders.registry import make_builder
from bisector.config import DockerOptions, Environment
from bisector.engine.checkouts import Checkouts
from bisector.errors import BuildError
from bisector.gitrepo import GitRepo
from bisector.testing import gitutil
from tests.docker_support import BASE_IMAGE, docker_or_skip


def _prepare(root: Path, store: Path, env: Environment) -> None:
    """Build HEAD's environment (raising what the builder raises)."""
    with GitRepo(root) as git, Checkouts(git, store) as checkouts:
        builder = make_builder(env.builder, vcs=git, environment=env, store=store)
        try:
            head = git.resolve("HEAD")
            builder.prepare(head, checkouts.get(head))
        finally:
            builder.close()


def _environment(builder: str, **options: object) -> Environment:
    if builder == "docker":
        docker_or_skip()
        options["docker"] = DockerOptions(base_image=BASE_IMAGE)
    return Environment(builder=builder, no_index=True, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("builder", ["venv", pytest.param("docker", marks=pytest.mark.docker)])
def test_an_unreadable_requirement_file_fails_the_build_with_its_log(
    tmp_path: Path, builder: str
) -> None:
    """A pyproject.toml that is not TOML made a BuildError without a build log: the journal
    kept its message where the log belongs (`log: pyproject.toml is not valid TOML ...`) and
    the log that was written lacked the reason. The log is named and holds it now."""
    root = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(root, {"pyproject.toml": "[project\nname = 1\n"}, "broken")
    env = _environment(builder, requirements=["pyproject.toml"])
    with pytest.raises(BuildError) as caught:
        _prepare(root, tmp_path / "store", env)
    log_path = caught.value.log_path
    assert log_path is not None and log_path.parent == tmp_path / "store" / "logs" / "build"
    assert "pyproject.toml is not valid TOML" in log_path.read_text()
    assert "pyproject.toml is not valid TOML" in caught.value.message
