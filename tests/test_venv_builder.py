"""What only the venv builder does: environment keys, per-commit installs, uv options."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from bisector.builders.requirements import environment_key, read_requirements
from bisector.builders.uvtool import IndexOptions, scrub, translate_install
from bisector.builders.venv import VenvBuilder
from bisector.config import Environment
from bisector.engine.checkouts import Checkouts
from bisector.gitrepo import GitRepo
from bisector.testing import gitutil


def _key(files: dict[str, str], roots: list[str], python: str = "3.11") -> str:
    reqs = read_requirements(lambda p: files[p].encode() if p in files else None, roots)
    return environment_key(reqs, python=python, index=IndexOptions().key_material())


def test_key_ignores_comments_order_and_spelling() -> None:
    """Cosmetic edits of a requirements file keep the key."""
    a = _key({"r.txt": "numpy==1.26\nTorch>=2.0\n"}, ["r.txt"])
    b = _key({"r.txt": "# deps\ntorch >= 2.0  # gpu\n\nnumpy == 1.26\n"}, ["r.txt"])
    assert a == b
    assert a != _key({"r.txt": "numpy==1.27\ntorch>=2.0\n"}, ["r.txt"])
    assert a != _key({"r.txt": "numpy==1.26\nTorch>=2.0\n"}, ["r.txt"], python="3.12")


def test_key_follows_includes() -> None:
    """A change in a file included with -r changes the key."""
    base = {"req/main.txt": "-r common.txt\nfoo==1\n", "req/common.txt": "bar==1\n"}
    changed = {**base, "req/common.txt": "bar==2\n"}
    assert _key(base, ["req/main.txt"]) != _key(changed, ["req/main.txt"])


def test_key_of_pyproject_counts_dependencies_only() -> None:
    """A version bump in pyproject.toml keeps the key; a dependency change does not."""
    doc = '[project]\nname = "x"\nversion = "{v}"\ndependencies = ["{d}"]\n'
    k1 = _key({"pyproject.toml": doc.format(v="1.0", d="foo==1")}, ["pyproject.toml"])
    assert k1 == _key({"pyproject.toml": doc.format(v="1.1", d="foo==1")}, ["pyproject.toml"])
    assert k1 != _key({"pyproject.toml": doc.format(v="1.1", d="foo==2")}, ["pyproject.toml"])


def test_install_argv_is_bound_to_the_environment() -> None:
    """`pip install` becomes `uv pip install --python <env>` with the index options; only
    it gets the index variables."""
    py = Path("/e/bin/python")
    index = IndexOptions(
        ("/w",), "https://bob:tok@idx/simple", ("https://a/simple", "https://b/simple"), True
    )
    got = translate_install(
        ["pip", "install", "--no-deps", "-e", "."], uv="uv", python=py, index=index
    )
    assert got == (
        ["uv", "pip", "install", "--no-deps", "-e", ".", "--python", str(py), "--no-index"],
        {
            "UV_FIND_LINKS": "/w",
            "UV_INDEX_URL": "https://bob:tok@idx/simple",
            "UV_EXTRA_INDEX_URL": "https://a/simple https://b/simple",
        },
    )
    assert translate_install(["python", "-m", "pip", "list"], uv="uv", python=py, index=index) == (
        ["uv", "pip", "list", "--python", str(py)],
        {},
    )
    assert translate_install(
        ["python", "setup.py", "develop"], uv="uv", python=py, index=index
    ) == (
        [str(py), "setup.py", "develop"],
        {},
    )
    assert translate_install(["make", "install"], uv="uv", python=py, index=index) == (
        ["make", "install"],
        {},
    )


def test_credentials_are_scrubbed_from_logged_commands() -> None:
    """Index URLs with a user and token are logged without them."""
    assert scrub("--index-url https://bob:s3cret@pypi.example.org/simple") == (
        "--index-url https://***@pypi.example.org/simple"
    )


def test_install_runs_per_commit_into_the_shared_environment(tmp_path: Path) -> None:
    """`install` runs in each candidate's checkout with the env's python, once per commit."""
    root = gitutil.make_repo(tmp_path / "repo")
    git = GitRepo(root)
    commits = []
    for value in (1, 2):
        (root / "requirements.txt").write_text("")
        (root / "app.py").write_text(f"VALUE = {value}\n")
        gitutil.commit_all(root, f"v{value}")
        commits.append(git.resolve("HEAD"))
    script = (
        "import os, pathlib, sys; p = pathlib.Path(os.environ['VIRTUAL_ENV'], 'installed');"
        " p.write_text(p.read_text() + open('app.py').read() if p.exists() else open('app.py').read())"
    )
    env = Environment(
        builder="venv",
        requirements=["requirements.txt"],
        no_index=True,
        install=["python", "-c", script],
    )
    builder = VenvBuilder(git, env, tmp_path / "store")
    with Checkouts(git, tmp_path / "store") as checkouts:
        first = builder.prepare(commits[0], checkouts.get(commits[0]))
        second = builder.prepare(commits[1], checkouts.get(commits[1]))
        builder.prepare(commits[1], checkouts.get(commits[1]))  # same commit again: no reinstall
    assert first.env_key == second.env_key and builder.builds_done == 1
    assert (first.python.parent.parent / "installed").read_text() == "VALUE = 1\nVALUE = 2\n"
    assert second.env["PYTHONPATH"] == ""  # the installed project, not the checkout, is imported
    assert second.runtime is not None and second.runtime.python_version == ".".join(
        map(str, sys.version_info[:3])
    )
    builder.close()
    git.close()


UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "fastpad"
version = "{version}"
source = {{ registry = "https://pypi.org/simple" }}

[[package]]
name = "serving"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "fastpad" }}]
"""


def test_lock_file_is_installed_as_its_exact_pins(tmp_path: Path) -> None:
    """A uv.lock named in `requirements` installs the locked versions (the project itself skipped)."""
    from bisector.testing.wheels import make_wheel

    wheels = tmp_path / "wheels"
    for version in ("1.0.0", "1.1.0"):
        make_wheel(wheels, "fastpad", version, {"fastpad/__init__.py": f"V = {version!r}\n"}, [])
    root = gitutil.make_repo(tmp_path / "repo")
    git = GitRepo(root)
    (root / "uv.lock").write_text(UV_LOCK.format(version="1.0.0"))
    gitutil.commit_all(root, "lock")
    commit = git.resolve("HEAD")
    env = Environment(
        builder="venv", requirements=["uv.lock"], no_index=True, find_links=[str(wheels)]
    )
    builder = VenvBuilder(git, env, tmp_path / "store")
    with Checkouts(git, tmp_path / "store") as checkouts:
        built = builder.prepare(commit, checkouts.get(commit))
    assert ("fastpad", "1.0.0") in built.packages
    assert not any(name == "serving" for name, _ in built.packages)
    builder.close()
    git.close()


def test_jobs_sets_how_many_environments_build_in_parallel(tmp_path: Path) -> None:
    """`run --jobs N` reaches the builder as its number of background build workers."""
    from bisector.builders.registry import make_builder

    root = gitutil.make_repo(tmp_path / "repo")
    git = GitRepo(root)
    env = Environment(builder="venv", requirements=["requirements.txt"], no_index=True)
    builder = make_builder("venv", vcs=git, environment=env, store=tmp_path / "store", jobs=3)
    assert builder._pool._max_workers == 3  # type: ignore[attr-defined]
    builder.close()
    local = make_builder("local", vcs=git, environment=env, store=tmp_path / "store", jobs=3)
    assert local.builds_done == 0
    git.close()


PYPROJECT = """\
[project]
name = "serving"
version = "0.1.0"
dependencies = ["fastpad==1.0.0"]

[project.optional-dependencies]
gpu = ["tokenkit==2.1.0"]
"""


def test_pyproject_dependencies_and_configured_extras_are_installed(tmp_path: Path) -> None:
    """pyproject.toml installs [project].dependencies, plus the groups in environment.extras."""
    from bisector.testing.wheels import make_wheel

    wheels = tmp_path / "wheels"
    make_wheel(wheels, "fastpad", "1.0.0", {"fastpad/__init__.py": "V = 1\n"}, [])
    make_wheel(wheels, "tokenkit", "2.1.0", {"tokenkit/__init__.py": "V = 2\n"}, [])
    root = gitutil.make_repo(tmp_path / "repo")
    git = GitRepo(root)
    (root / "pyproject.toml").write_text(PYPROJECT)
    gitutil.commit_all(root, "pyproject")
    commit = git.resolve("HEAD")
    built = {}
    for extras in ([], ["gpu"]):
        env = Environment(
            builder="venv",
            requirements=["pyproject.toml"],
            extras=extras,
            no_index=True,
            find_links=[str(wheels)],
        )
        builder = VenvBuilder(git, env, tmp_path / "store")
        with Checkouts(git, tmp_path / "store") as checkouts:
            built[bool(extras)] = builder.prepare(commit, checkouts.get(commit))
        builder.close()
    names = {b: {n for n, _ in env.packages} for b, env in built.items()}
    assert "fastpad" in names[False] and "tokenkit" not in names[False]
    assert {"fastpad", "tokenkit"} <= names[True]
    assert built[False].env_key != built[True].env_key
    git.close()


def test_cache_list_gives_each_environment_its_size(tmp_path: Path) -> None:
    """`cache list` said every venv's size was unknown (`-`, `size_bytes: null`)."""
    import json

    from tests.conftest import run_cli

    root = gitutil.make_repo(tmp_path / "repo")
    (root / "bisector.yaml").write_text(
        "benchmark: {command: [python, b.py]}\nmetrics: {t: {direction: lower}}\n"
        "environment: {builder: venv, no_index: true}\n"
    )
    gitutil.commit_all(root, "first")
    with GitRepo(root) as git, Checkouts(git, root / ".bisector") as checkouts:
        head = git.resolve("HEAD")
        builder = VenvBuilder(git, Environment(builder="venv", no_index=True), root / ".bisector")
        folder = builder.prepare(head, checkouts.get(head)).python.parent.parent
        builder.close()
    done = run_cli("cache", "list", "--json", "--repo", str(root))
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)
    assert entry["where"] == str(folder)
    assert isinstance(entry["size_bytes"], int) and entry["size_bytes"] > 1000
    done = run_cli("cache", "list", "--repo", str(root))
    assert f" kB  {folder}" in done.stderr or f" MB  {folder}" in done.stderr


def _command_lines_holding(secret: bytes) -> list[str]:
    """This machine's process command lines that hold `secret`: what any local user reads."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:  # the process ended meanwhile
            continue
        if secret in line:
            found.append(line.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_index_credentials_reach_the_index_but_no_command_line_or_log(tmp_path: Path) -> None:
    """A password in the index URLs went onto uv's command line, readable by every local
    user in `ps`; it must reach the index as basic auth and nothing else."""
    from bisector.testing.wheels import make_wheel, simple_index

    from .http_support import files_behind_basic_auth

    password = "pw-Zq81vX"
    for index, name in (("idx1", "fastpad"), ("idx2", "tokenkit")):
        make_wheel(tmp_path / name, name, "1.0.0", {f"{name}/__init__.py": "V = 1\n"})
        simple_index(tmp_path / "served" / index, tmp_path / name)
    make_wheel(tmp_path / "links", "servekit", "1.0.0", {"servekit/__init__.py": "V = 1\n"})
    root = gitutil.make_repo(tmp_path / "repo")
    (root / "requirements.txt").write_text("fastpad==1.0.0\ntokenkit==1.0.0\nservekit==1.0.0\n")
    gitutil.commit_all(root, "deps")
    leaked: list[str] = []
    with (
        files_behind_basic_auth(
            tmp_path / "served",
            "bob",
            password,
            on_request=lambda: leaked.extend(_command_lines_holding(password.encode())),
        ) as (base, seen),
        GitRepo(root) as git,
        Checkouts(git, tmp_path / "store") as checkouts,
    ):
        env = Environment(
            builder="venv",
            requirements=["requirements.txt"],
            index_url=f"{base}/idx1/simple/",
            extra_index_urls=[f"{base}/idx0/simple/", f"{base}/idx2/simple/"],
            find_links=[str(tmp_path / "links")],
        )
        builder = VenvBuilder(git, env, tmp_path / "store")
        head = git.resolve("HEAD")
        built = builder.prepare(head, checkouts.get(head))
        builder.close()
    assert {"fastpad", "tokenkit", "servekit"} <= {name for name, _ in built.packages}
    assert f"Basic {base64.b64encode(f'bob:{password}'.encode()).decode()}" in seen
    assert leaked == []
    log_text = built.build_log.read_text()
    assert password not in log_text and "UV_INDEX_URL=http://***@127.0.0.1:" in log_text


def test_a_requirement_file_the_commit_lacks_is_noted_in_its_build_log(tmp_path: Path) -> None:
    """A configured requirements file absent at a commit (added later in the history): the
    environment is built without it, and its build log says so (else a trial's "No module
    named ..." is all the user sees)."""
    root = gitutil.make_repo(tmp_path / "repo")
    git = GitRepo(root)
    (root / "README.md").write_text("no pins yet\n")
    gitutil.commit_all(root, "before the pins")
    commit = git.resolve("HEAD")
    env = Environment(builder="venv", requirements=["requirements.txt"], no_index=True)
    builder = VenvBuilder(git, env, tmp_path / "store")
    with Checkouts(git, tmp_path / "store") as checkouts:
        built = builder.prepare(commit, checkouts.get(commit))
    (log,) = (tmp_path / "store" / "logs" / "build").glob("venv-*.log")
    assert "note: requirements.txt is not in this commit: built without it" in log.read_text()
    assert built.packages is not None
    builder.close()
    git.close()
