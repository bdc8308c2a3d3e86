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


@pytest.mark.parametrize("builder", ["venv", pytest.param("docker", marks=pytest.mark.docker)])
@pytest.mark.parametrize("line", ["-e .", "--editable=./libs/core", "./libs/core"])
def test_a_requirement_on_a_repository_path_is_refused_in_words(
    tmp_path: Path, builder: str, line: str
) -> None:
    """`-e .` in requirements.txt failed as '`<store>/envs` does not appear to be a Python
    project' (uv resolved the path from the cache folder): a path of the repository cannot
    go into an environment built from the requirement files alone. The build log says so
    and points to `environment.install`."""
    root = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(root, {"requirements.txt": f"{line}\n", "libs/core/setup.py": ""}, "editable")
    env = _environment(builder, requirements=["requirements.txt"])
    with pytest.raises(BuildError) as caught:
        _prepare(root, tmp_path / "store", env)
    assert caught.value.message.startswith(f"requirements.txt: '{line}' installs a path")
    assert caught.value.hint is not None and "environment.install" in caught.value.hint
    assert caught.value.log_path is not None
    assert f"'{line}' installs a path" in caught.value.log_path.read_text()


@pytest.mark.docker
def test_gpus_on_a_daemon_without_gpus_is_a_clear_error(tmp_path: Path) -> None:
    """`gpus: all` where the daemon has no GPU runtime ended the run with docker's raw
    '500 Server Error for http+docker://.../start: ... could not select device driver'
    (or, with the image already built, made every trial fail). It is a DockerError now,
    naming the option, with a hint, whether the image is built or reused."""
    from bisector.builders.docker_run import ContainerOptions, ContainerTrial
    from bisector.errors import DockerError

    client = docker_or_skip()
    if "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this daemon has a GPU runtime")
    root = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(root, {"b.py": "print('{\"t\": 1}')\n"}, "bench")
    env = Environment(builder="docker", docker=DockerOptions(base_image=BASE_IMAGE, gpus="all"))
    with pytest.raises(DockerError) as caught:
        _prepare(root, tmp_path / "store", env)
    assert caught.value.message.startswith("environment.docker.gpus is all, but the Docker")
    assert caught.value.hint is not None and "gpus: none" in caught.value.hint
    mine = {"bisector.test": tmp_path.name}
    trial = ContainerTrial(client, BASE_IMAGE, ContainerOptions(gpus=1, labels=mine))
    with pytest.raises(DockerError, match="environment.docker.gpus is 1"):
        trial(
            ["true"],
            cwd=root,
            env={},
            timeout_s=30,
            stdout_path=tmp_path / "out",
            stderr_path=tmp_path / "err",
        )
    assert (
        client.containers.list(all=True, filters={"label": "bisector.test=" + tmp_path.name}) == []
    )


FORKED_UV_LOCK = """\
version = 1
revision = 2
requires-python = ">=3.8"
resolution-markers = ["python_full_version >= '3.10'", "python_full_version < '3.10'"]

[[package]]
name = "proj"
version = "0.1"
source = { virtual = "." }
dependencies = [
    { name = "other" },
    { name = "speedy", version = "1.0", source = { registry = "https://x/simple" }, marker = "python_full_version < '3.10'" },
    { name = "speedy", version = "2.0", source = { registry = "https://x/simple" }, marker = "python_full_version >= '3.10'" },
]

[[package]]
name = "other"
version = "1.0"
source = { registry = "https://x/simple" }
dependencies = [{ name = "winonly", marker = "sys_platform == 'win32'" }]

[[package]]
name = "speedy"
version = "1.0"
source = { registry = "https://x/simple" }
resolution-markers = ["python_full_version < '3.10'"]

[[package]]
name = "speedy"
version = "2.0"
source = { registry = "https://x/simple" }
resolution-markers = ["python_full_version >= '3.10'"]

[[package]]
name = "winonly"
version = "306"
source = { registry = "https://x/simple" }
"""


def test_a_uv_lock_of_several_pythons_and_platforms_installs_this_ones(tmp_path: Path) -> None:
    """A uv.lock resolved for Pythons < 3.10 and >= 3.10 (speedy 1.0 and 2.0) and with a
    Windows-only package was pinned entry by entry (speedy==1.0 and speedy==2.0, winonly
    too), which no installer can satisfy: every commit untestable. The pins keep the lock's
    markers, so this interpreter gets speedy 2.0 and no winonly."""
    from bisector.testing.wheels import make_wheel

    wheels = tmp_path / "wheels"
    for name, version in (("speedy", "1.0"), ("speedy", "2.0"), ("other", "1.0")):
        make_wheel(wheels, name, version, {f"{name}/__init__.py": ""})
    root = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(root, {"uv.lock": FORKED_UV_LOCK}, "lock")
    env = Environment(
        builder="venv", requirements=["uv.lock"], no_index=True, find_links=[str(wheels)]
    )
    with GitRepo(root) as git, Checkouts(git, tmp_path / "store") as checkouts:
        builder = make_builder("venv", vcs=git, environment=env, store=tmp_path / "store")
        head = git.resolve("HEAD")
        built = builder.prepare(head, checkouts.get(head))
        builder.close()
    assert sorted(built.packages) == [("other", "1.0"), ("speedy", "2.0")]


def test_cache_prune_removes_the_folder_of_a_build_that_never_finished(tmp_path: Path) -> None:
    """A build killed mid-install (kill -9, the OOM killer) leaves `<store>/envs/<key>/`
    without its marker: `cache list` does not show it, and `cache prune` never removed it,
    so a half-installed environment (gigabytes, with torch) stayed until that very key was
    built again. prune removes it now; a complete environment stays."""
    import json

    from tests.conftest import run_cli

    root = gitutil.make_repo(tmp_path / "repo")
    (root / "bisector.yaml").write_text(
        "benchmark: {command: [python, b.py]}\nmetrics: {t: {direction: lower}}\n"
        "environment: {builder: venv, no_index: true}\n"
    )
    gitutil.commit_all(root, "first")
    store = root / ".bisector"
    _prepare(root, store, Environment(builder="venv", no_index=True))
    (complete,) = [p for p in (store / "envs").iterdir() if p.name.startswith("venv-")]
    broken = store / "envs" / "venv-0123456789abcdef01234567"
    (broken / "lib").mkdir(parents=True)
    (broken / "lib" / "half-written.so").write_bytes(b"\0" * 1000)
    done = run_cli("cache", "prune", "--json", "--repo", str(root))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"removed": [str(broken)]}
    assert not broken.exists() and complete.is_dir()
