"""`bisector init`: a commented bisector.yaml (and a benchmark template) from what a repository holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bisector.config import load_config
from bisector.engine.runner import parse_output
from bisector.gitrepo import GitRepo
from bisector.initwizard.detect import detect, release_tags
from bisector.initwizard.templates import HARNESS_FACTORY_FILE, PYTHON_BENCH_FILE
from bisector.testing.gitutil import commit, git, make_repo

from .conftest import run_cli, tree_digest


def _service(tmp_path: Path) -> Path:
    """A small service: pins, a lock file, two config folders, release tags and noise tags."""
    repo = make_repo(tmp_path / "svc")
    files: dict[str, str | bytes | None] = {
        "requirements.txt": "numpy==1.26.4\n",
        "requirements-dev.txt": "pytest\n",
        "pyproject.toml": '[project]\nname = "svc"\nversion = "1"\ndependencies = ["numpy"]\n',
        "uv.lock": "version = 1\n",
        "configs/serving.yaml": "batching: {max: 8}\n",
        "configs/model/llm.json": '{"layers": 2}\n',
        "deploy/values.yaml": "replicas: 2\n",
        "src/svc/app.py": "print('hi')\n",
    }
    commit(repo, files, "Service", tag="v1.9.0")
    commit(repo, {"notes.txt": "a\n"}, "Fix", tag="v1.10.0")
    commit(repo, {"notes.txt": "b\n"}, "Nightly", tag="nightly-build")
    commit(repo, {"notes.txt": "c\n"}, "Release", tag="v2.0.0rc1")
    return repo


def test_detect_reads_dependency_files_config_folders_and_release_tags(tmp_path: Path) -> None:
    """Detection proposes the lock file, globs per config folder and version tags in version order."""
    repo = _service(tmp_path)
    with GitRepo(repo) as git:
        found = detect(git)
    assert found.requirements == ("uv.lock",)  # the most exact pins win
    assert set(found.dependency_files) == {
        "uv.lock",
        "pyproject.toml",
        "requirements.txt",
        "requirements-dev.txt",
    }
    assert found.config_globs == ("configs/**/*.json", "configs/**/*.yaml", "deploy/**/*.yaml")
    assert found.release_tags == ("v1.9.0", "v1.10.0", "v2.0.0rc1")  # not "nightly-build"
    assert found.branch == "main" and found.bench_script is None
    assert release_tags(["2.0", "v10.1", "v9.9"]) == ("2.0", "v9.9", "v10.1")


def test_init_writes_a_config_that_checks_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """init writes a config `config check` accepts; a second init changes nothing and exits 2."""
    repo = _service(tmp_path)
    first = run_cli("init", "--repo", str(repo))
    assert first.returncode == 0, first.stderr
    text = (repo / "bisector.yaml").read_text()
    assert "# Release tags found: v1.9.0, v1.10.0, v2.0.0rc1" in text
    assert "bisector run --good v1.10.0 --bad v2.0.0rc1" in text
    cfg = load_config(repo)
    assert cfg.environment.requirements == ["uv.lock"]
    assert cfg.snapshots.configs == ["configs/**/*.json", "configs/**/*.yaml", "deploy/**/*.yaml"]
    assert list(cfg.metrics) == ["latency_ms"] and cfg.benchmark.reference is None
    check = run_cli("config", "check", "--repo", str(repo))
    assert check.returncode == 0 and check.stderr.rstrip().endswith(": ok"), check.stderr

    (repo / "bisector.yaml").write_text(text + "# my edit\n")
    before = tree_digest(repo)
    again = run_cli("init", "--repo", str(repo), "--bench", "python")
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "bisector.yaml already exists" in lines[0]
    assert lines[1].startswith("hint: ") and "--force" in lines[1]
    assert tree_digest(repo) == before  # not even the template was written

    forced = run_cli("init", "--repo", str(repo), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (repo / "bisector.yaml").read_text() == text


def test_init_bench_python_writes_a_template_that_speaks_the_protocol(tmp_path: Path) -> None:
    """--bench python writes a benchmark whose last line is the protocol's JSON with latency_ms."""
    repo = _service(tmp_path)
    proc = run_cli("init", "--bench", "python", "--repo", str(repo))
    assert proc.returncode == 0, proc.stderr
    cfg = load_config(repo)
    assert cfg.benchmark.command == ["python", PYTHON_BENCH_FILE]
    bench = subprocess.run(  # the template as bisector runs it: cwd = the checkout
        [sys.executable, PYTHON_BENCH_FILE], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert bench.returncode == 0, bench.stderr
    parsed = parse_output(bench.stdout)
    assert parsed is not None
    metrics, _meta = parsed
    assert len(metrics["latency_ms"]) == 20 and min(metrics["latency_ms"]) > 0


def test_init_bench_harness_writes_a_factory_and_reference_auto(tmp_path: Path) -> None:
    """--bench harness writes a factory, the harness command, `reference: auto` and an agreement metric."""
    repo = _service(tmp_path)
    proc = run_cli("init", "--bench", "harness", "--repo", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert (repo / HARNESS_FACTORY_FILE).is_file()
    cfg = load_config(repo)
    assert cfg.benchmark.command[:5] == [
        "python",
        "-m",
        "bisector.bench",
        "--factory",
        "bisector_factory:build",
    ]
    assert cfg.benchmark.reference == "auto"
    assert cfg.metrics["agreement_cosine"].direction.value == "higher"


def test_init_detects_an_existing_benchmark_script(tmp_path: Path) -> None:
    """A repository with bench.py at its root gets it as the benchmark command."""
    repo = make_repo(tmp_path / "r")
    commit(repo, {"bench.py": "print('{}')\n"}, "Bench")
    assert run_cli("init", "--repo", str(repo)).returncode == 0
    assert load_config(repo).benchmark.command == ["python", "bench.py"]


def test_init_bad_input_is_one_error_line_and_changes_nothing(tmp_path: Path) -> None:
    """Not a git repository, an unknown --bench, an unwritable folder: exit 2, nothing written."""
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = run_cli("init", "--repo", str(plain))
    assert proc.returncode == 2 and proc.stderr.startswith("error: not a git repository")
    assert list(plain.iterdir()) == []

    repo = _service(tmp_path)
    before = tree_digest(repo)
    proc = run_cli("init", "--repo", str(repo), "--bench", "rust")
    assert proc.returncode == 2 and "unknown --bench 'rust'" in proc.stderr
    # /proc cannot be written, not even by root (the tests may run as root)
    proc = run_cli("init", "--repo", str(repo), "--config", "/proc/bisector.yaml")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: cannot write in /proc") and "hint: " in proc.stderr
    proc = run_cli("init", "--repo", str(repo), "--bench", "python", "--config", "/proc/x.yaml")
    assert proc.returncode == 2
    assert tree_digest(repo) == before  # the template was not written either


def _entries(repo: Path) -> dict[str, str]:
    """Every entry of the repository's top folder (not .git): file bytes, link text, or dir."""
    shown = {}
    for p in sorted(repo.iterdir()):
        if p.name == ".git":
            continue
        if p.is_symlink():
            shown[p.name] = f"-> {os.readlink(p)}"
        elif p.is_dir():
            shown[p.name] = "dir"
        else:
            shown[p.name] = p.read_text()
    return shown


@pytest.mark.parametrize(
    ("name", "args"),
    [("bisector.yaml", ()), (PYTHON_BENCH_FILE, ("--bench", "python"))],
)
@pytest.mark.parametrize("force", [(), ("--force",)], ids=["plain", "force"])
def test_init_refuses_a_folder_in_the_way_and_writes_nothing(
    tmp_path: Path, name: str, args: tuple[str, ...], force: tuple[str, ...]
) -> None:
    """A folder where a file goes is named (not a temporary file); no .gitignore either."""
    repo = _service(tmp_path)
    (repo / name).mkdir()
    before = _entries(repo)
    proc = run_cli("init", "--repo", str(repo), *args, *force)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], proc.stderr
    assert lines[0] == f"error: {repo / name} is a folder; not writing it (nothing was written)"
    assert ".tmp" not in proc.stderr
    assert _entries(repo) == before
    assert not (repo / ".gitignore").exists()


@pytest.mark.parametrize(
    ("name", "args"),
    [("bisector.yaml", ()), (PYTHON_BENCH_FILE, ("--bench", "python"))],
)
def test_init_counts_a_dangling_symlink_as_existing(
    tmp_path: Path, name: str, args: tuple[str, ...]
) -> None:
    """Refused without --force (the link is kept); --force replaces it with the file."""
    repo = _service(tmp_path)
    (repo / name).symlink_to(tmp_path / "nonexistent")
    before = _entries(repo)
    proc = run_cli("init", "--repo", str(repo), *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {repo / name} (a symlink to ")
    assert "already exists; not overwriting" in proc.stderr and "hint: " in proc.stderr
    assert _entries(repo) == before
    proc = run_cli("init", "--repo", str(repo), *args, "--force")
    assert proc.returncode == 0, proc.stderr
    assert (repo / name).is_file() and not (repo / name).is_symlink()


def _daemon_section(repo: Path) -> str:
    text = (repo / "bisector.yaml").read_text()
    return text[text.index("\ndaemon:") :]


def test_init_on_a_detached_head_names_a_branch_that_exists(tmp_path: Path) -> None:
    """A CI checkout (detached HEAD) of a repository with only `master`: init wrote
    `daemon.branch: "main"`, a branch the daemon could never resolve. It names a branch
    that holds HEAD; where none can be told, the file says the key must be set."""
    repo = make_repo(tmp_path / "ci", branch="master")
    commit(repo, {"a.txt": "1\n"}, "one", tag="v1")
    commit(repo, {"a.txt": "2\n"}, "two")
    git(repo, "checkout", "-q", "--detach", "v1")
    done = run_cli("init", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    assert '  branch: "master"\n' in _daemon_section(repo)
    assert load_config(repo).daemon.branch == "master"

    # two branches hold HEAD, neither main, master nor origin's default: no guess
    git(repo, "branch", "-q", "-m", "master", "dev")
    git(repo, "branch", "-q", "topic", "v1")
    done = run_cli("init", "--repo", str(repo), "--force")
    assert done.returncode == 0, done.stderr
    daemon = _daemon_section(repo)
    assert "\n  branch:" not in daemon and "# branch: SET THIS" in daemon, daemon
    assert run_cli("config", "check", "--repo", str(repo)).returncode == 0

    # a clone with no local branch at all: origin's default, fetched from origin
    clone = tmp_path / "clone"
    git(repo, "checkout", "-q", "dev")  # origin's HEAD
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    git(clone, "checkout", "-q", "--detach")
    git(clone, "branch", "-q", "-D", "dev")
    done = run_cli("init", "--repo", str(clone))
    assert done.returncode == 0, done.stderr
    cfg = load_config(clone)
    assert (cfg.daemon.branch, cfg.daemon.remote) == ("dev", "origin")


def test_a_bare_repository_is_refused_by_every_command_and_nothing_written(
    tmp_path: Path,
) -> None:
    """`init` in a bare repository wrote bisector.yaml and .gitignore among git's own files
    (and `run` put its store there): a bare repository has no working tree to measure."""
    bare = tmp_path / "svc.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(_service(tmp_path)), str(bare)],
        check=True,
        capture_output=True,
    )
    bare = bare.resolve()
    before = tree_digest(bare)
    said = [
        f"error: {bare} is a bare repository (no working tree)",
        f"hint: clone it (git clone {bare} DIR) and run bisector in the checkout, or pass "
        "--repo PATH of a checkout",
    ]
    for args in (
        ("init",),
        ("init", "--bench", "python"),
        ("config", "check"),
        ("run", "--good", "v1.9.0", "--bad", "v1.10.0"),
        ("runs",),
        ("status",),
        ("snapshot", "list"),
        ("rollback", "--to", "v1.9.0", "--dry-run"),
    ):
        done = run_cli(*args, cwd=bare)
        assert (done.returncode, done.stderr.splitlines()) == (2, said), args
    done = run_cli("init", "--repo", str(bare), cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (2, said)
    assert tree_digest(bare) == before
