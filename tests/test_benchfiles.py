"""The benchmark's own files must be committed at both endpoints: refused before anything
is measured or written, with the file and the endpoint named."""

from __future__ import annotations

import json
from pathlib import Path

from bisector.engine.benchfiles import BenchFile, benchmark_files
from bisector.testing import gitutil

from .conftest import run_cli, tree_digest

BENCH = 'import json\nprint(json.dumps({"t": 1.0}))\n'


def _config(command: list[str]) -> str:
    return (
        f"benchmark:\n  command: {json.dumps(command)}\n  repeats: {{min: 3, max: 5}}\n"
        "metrics:\n  t: {direction: lower}\n"
    )


def _repo(tmp_path: Path, command: list[str], at_good: dict[str, str | bytes | None]) -> Path:
    """v1.0 with `at_good` (and an untracked bisector.yaml), v1.1 one commit later."""
    repo = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(repo, {"a.txt": "1\n", **at_good}, "first", tag="v1.0")
    gitutil.commit(repo, {"a.txt": "2\n"}, "second", tag="v1.1")
    (repo / "bisector.yaml").write_text(_config(command))
    return repo


def _refused(repo: Path) -> tuple[str, str]:
    """`run` exits 2 with one error line and one hint, leaving every file as it was."""
    before = tree_digest(repo)
    done = run_cli("run", "--good", "v1.0", "--bad", "v1.1", "--repo", str(repo), timeout=300)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    lines = done.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], done.stderr
    assert tree_digest(repo) == before  # no snapshot, no journal, no run folder
    assert not (repo / ".bisector").exists()
    return lines[0], lines[1]


def _short(repo: Path, ref: str) -> str:
    return gitutil.git(repo, "rev-parse", ref)[:10]


def test_files_named_by_path_module_and_factory_are_found(tmp_path: Path) -> None:
    """Relative paths, `-m` modules and `--factory` modules that exist in the working tree,
    once each; absolute paths, outputs, options and missing files are left alone."""
    root = tmp_path
    for rel in ["bench.py", "cfg/b.yaml", "pkg/__main__.py", "pkg/__init__.py", "fac.py", "o.json"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "outdir").mkdir()
    command = [
        "python",
        "./bench.py",
        "--config",
        "cfg/b.yaml",
        "--factory=fac:build",
        "-o",
        "o.json",
        "--json-output=o.json",
        "bench.py",
        str(root / "bench.py"),
        "../bench.py",
        "missing.py",
        "outdir",
        "--batch-sizes",
        "1,8",
    ]
    assert benchmark_files(root, command) == [
        BenchFile("bench.py"),
        BenchFile("cfg/b.yaml"),
        BenchFile("fac.py", module=True),
    ]
    assert benchmark_files(root, ["python", "-m", "pkg", "x"]) == [
        BenchFile("pkg/__main__.py", module=True)
    ]
    assert benchmark_files(root, ["python", "-m", "fac"]) == [BenchFile("fac.py", module=True)]
    assert benchmark_files(root, ["python", "-m", "bisector.bench", "--factory", "nope:b"]) == []
    assert benchmark_files(root, ["python", "-c", "bench.py"]) == []  # code, not a file
    assert benchmark_files(root, ["python", str(root / "bench.py")]) == []


def test_an_untracked_script_is_refused_naming_it_and_the_good_endpoint(tmp_path: Path) -> None:
    """The script `init --bench python` writes, never committed: exit 2 before anything."""
    repo = _repo(tmp_path, ["python", "bench.py"], {})
    (repo / "bench.py").write_text(BENCH)
    error, hint = _refused(repo)
    assert "bench.py" in error and f"the good endpoint v1.0 ({_short(repo, 'v1.0')})" in error
    assert "own checkout" in error
    assert "commit it" in hint and "absolute path" in hint


def test_a_script_committed_after_the_good_endpoint_names_it(tmp_path: Path) -> None:
    """Committed at the bad endpoint only: the good endpoint is the one named."""
    repo = _repo(tmp_path, ["python", "bench.py"], {})
    gitutil.commit(repo, {"bench.py": BENCH}, "add the benchmark", tag="v1.2")
    done = run_cli("run", "--good", "v1.0", "--bad", "v1.2", "--repo", str(repo), timeout=300)
    assert done.returncode == 2, done.stderr
    assert f"bench.py is not in the good endpoint v1.0 ({_short(repo, 'v1.0')})" in done.stderr
    assert not (repo / ".bisector").exists()
    sha = gitutil.git(repo, "rev-parse", "v1.0")  # a commit id is named once, short
    done = run_cli("run", "--good", sha, "--bad", "v1.2", "--repo", str(repo), timeout=300)
    assert f"not in the good endpoint {_short(repo, 'v1.0')}: " in done.stderr


def test_a_module_run_with_dash_m_is_checked_too(tmp_path: Path) -> None:
    """`python -m benchpkg`: the package's __main__.py, with a PYTHONPATH hint."""
    repo = _repo(tmp_path, ["python", "-m", "benchpkg"], {})
    (repo / "benchpkg").mkdir()
    (repo / "benchpkg" / "__main__.py").write_text(BENCH)
    error, hint = _refused(repo)
    assert "benchpkg/__main__.py" in error and "good endpoint v1.0" in error
    assert "PYTHONPATH" in hint


def test_a_script_in_both_endpoints_is_measured(tmp_path: Path) -> None:
    """Committed at both endpoints (an untracked output file named by -o is no input): the
    run measures and ends not reproduced."""
    repo = _repo(tmp_path, ["python", "bench.py", "-o", "out.json"], {"bench.py": BENCH})
    (repo / "out.json").write_text("{}\n")  # a result of an earlier local try
    done = run_cli("run", "--good", "v1.0", "--bad", "v1.1", "--repo", str(repo), timeout=300)
    assert done.returncode == 3, done.stderr  # the same time at both ends
    assert "error:" not in done.stderr


def test_isolation_on_head_refuses_an_untracked_script(tmp_path: Path) -> None:
    """`bisector deps` measures HEAD's checkouts: the script must be in HEAD."""
    repo = _repo(tmp_path, ["python", "bench.py"], {"requirements.txt": "x==1\n"})
    (repo / "bisector.yaml").write_text(
        _config(["python", "bench.py"])
        + "environment: {builder: venv, requirements: [requirements.txt]}\n"
    )
    (repo / "bench.py").write_text(BENCH)
    (tmp_path / "good.txt").write_text("x==1\n")
    (tmp_path / "bad.txt").write_text("x==2\n")
    head = _short(repo, "HEAD")
    before = tree_digest(repo)
    done = run_cli(
        "deps",
        "--good-lock",
        str(tmp_path / "good.txt"),
        "--bad-lock",
        str(tmp_path / "bad.txt"),
        "--repo",
        str(repo),
    )
    assert done.returncode == 2, done.stderr
    assert f"bench.py is not in HEAD ({head})" in done.stderr
    assert tree_digest(repo) == before


def test_init_bench_notes_the_commit_and_ignores_the_store_once(tmp_path: Path) -> None:
    """init --bench python says to commit the template, adds `.bisector/` to an existing
    .gitignore once, and `config check` warns while the template is uncommitted."""
    repo = gitutil.make_repo(tmp_path / "r")
    gitutil.commit(repo, {".gitignore": "node_modules/", "a.txt": "1\n"}, "first")
    done = run_cli("init", "--bench", "python", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stderr.split())
    assert f"note: commit {repo / 'bisector_bench.py'} before bisecting" in text
    lines = done.stderr.splitlines()  # docs: init ends with the note; what it found is
    assert lines[-1].startswith("note: commit "), done.stderr  # under `wrote bisector.yaml`
    assert lines[-2].startswith("next: ") and lines[1] == f"wrote {repo / 'bisector.yaml'}"
    assert lines[2].startswith("  dependency files: "), done.stderr
    assert "own checkout" in text and f"added .bisector/ (the store) to {repo}/.gitignore" in text
    assert (repo / ".gitignore").read_text() == "node_modules/\n.bisector/\n"

    check = run_cli("config", "check", "--repo", str(repo))
    assert check.returncode == 0, check.stderr
    assert "warning: the benchmark's bisector_bench.py is not committed" in check.stderr

    again = run_cli("init", "--bench", "python", "--force", "--repo", str(repo))
    assert again.returncode == 0, again.stderr
    assert "added " not in again.stderr and "note: commit" in again.stderr
    assert (repo / ".gitignore").read_text() == "node_modules/\n.bisector/\n"

    gitutil.commit_all(repo, "add the benchmark")
    check = run_cli("config", "check", "--repo", str(repo))
    assert check.returncode == 0 and "warning" not in check.stderr, check.stderr


def test_init_creates_a_gitignore_when_there_is_none(tmp_path: Path) -> None:
    """No .gitignore: init --bench harness creates one holding the store."""
    repo = gitutil.make_repo(tmp_path / "r")
    gitutil.commit(repo, {"a.txt": "1\n"}, "first")
    done = run_cli("init", "--bench", "harness", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    assert "bisector_factory.py before bisecting" in " ".join(done.stderr.split())
    assert (repo / ".gitignore").read_text() == ".bisector/\n"


DAEMON = "daemon:\n  metrics_port: 0\n"


def test_the_daemon_refuses_to_start_on_an_uncommitted_script(tmp_path: Path) -> None:
    """The head the daemon measures lacks the script (never committed): `daemon --once`
    and `daemon` exit 2 before anything is written, as `run` refuses (not a cycle whose
    trials all fail and end `error`)."""
    repo = _repo(tmp_path, ["python", "bench.py"], {})
    gitutil.commit(repo, {"a.txt": "3\n"}, "third")
    (repo / "bisector.yaml").write_text(_config(["python", "bench.py"]) + DAEMON)
    (repo / "bench.py").write_text(BENCH)
    head = _short(repo, "main")  # before the digest: a git call here moves the test clock
    before = tree_digest(repo)
    for args in (["--once"], []):
        done = run_cli("daemon", *args, "--repo", str(repo), timeout=60)
        assert done.returncode == 2, done.stderr
        error, hint = done.stderr.strip().splitlines()
        assert error == (
            f"error: the benchmark's bench.py is not in the daemon's head main ({head}): "
            "each commit is measured in its own checkout, which lacks it"
        )
        assert hint.startswith("hint: commit it") and "absolute path" in hint
        assert tree_digest(repo) == before
        assert not (repo / ".bisector").exists()


def test_a_daemon_cycle_refuses_a_script_committed_after_the_last_good(tmp_path: Path) -> None:
    """The head has the script, the last known good release (v1.0) does not: the cycle
    ends `error` with `run`'s message naming the good endpoint, before the range is
    recorded or anything measured."""
    repo = _repo(tmp_path, ["python", "bench.py"], {})
    gitutil.commit(repo, {"bench.py": BENCH}, "add the benchmark", tag="v1.2")
    gitutil.commit(repo, {"a.txt": "3\n"}, "third")
    (repo / "bisector.yaml").write_text(_config(["python", "bench.py"]) + DAEMON)
    done = run_cli("daemon", "--once", "--repo", str(repo), timeout=300)
    assert done.returncode == 1, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    (failed,) = [e for e in events if e["event"] == "daemon.cycle.error"]
    good = f"the good endpoint v1.1 ({_short(repo, 'v1.1')})"
    assert failed["error"].startswith(f"the benchmark's bench.py is not in {good}: "), failed
    assert failed["hint"].startswith("commit it")
    assert not [e for e in events if e["event"] == "daemon.measure"]
    status = json.loads(run_cli("status", "--json", "--repo", str(repo)).stdout)
    assert status["daemon"]["ranges"] == [] and not (repo / ".bisector" / "runs").exists()
