"""`benchmark.preload`: trials forked from a server per environment (bisector.preload).

The servers here preload standard-library modules (fast); the harness with torch
preloaded is measured in bench/preload_bench.py and checked on a GPU by bench/gpu_check.sh.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bisector.config import parse_config
from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.errors import ConfigError
from bisector.ports import BuiltEnv, TrialResult, TrialStatus
from bisector.preload import PreloadError, PreloadPool
from bisector.testing.sample import SampleRepo

ROOT = Path(__file__).resolve().parent.parent

PROBE = """\
import json, os, sys
print("to stderr", file=sys.stderr)
print(json.dumps({"t_ms": [1.5, 2.5], "argv": sys.argv, "cwd": os.getcwd(),
                  "flavour": os.environ.get("FLAVOUR"), "pid": os.getpid(),
                  "pgid": os.getpgid(0), "ppid": os.getppid()}))
sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "probe.py").write_text(PROBE)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "__main__.py").write_text(PROBE)
    return root


@pytest.fixture
def pool(tmp_path: Path, repo: Path) -> Iterator[PreloadPool]:
    with PreloadPool(["json", "statistics"], repo_root=repo, log_dir=tmp_path / "logs") as p:
        yield p


def trial(
    pool: PreloadPool,
    repo: Path,
    *args: str,
    key: str = "k1",
    timeout_s: float = 30.0,
    **env: str,
) -> TrialResult:
    built = BuiltEnv(key, Path(sys.executable), repo)
    out = repo.parent / "logs" / f"trial-{time.monotonic_ns()}.out"
    return pool.launcher(built)(
        [sys.executable, *args],
        cwd=repo,
        env={**os.environ, **env},
        timeout_s=timeout_s,
        stdout_path=out,
        stderr_path=out.with_suffix(".err"),
        grace_s=0.5,
    )


def server_pids(pool: PreloadPool) -> list[int]:
    return [s.proc.pid for s in pool._servers.values()]


def test_trial_runs_like_python_with_its_own_group_and_captured_output(
    pool: PreloadPool, repo: Path
) -> None:
    """A forked trial sees its argv, cwd and environment, leads its own group, and its
    stdout/stderr land in the trial's files; `-m` runs a package's __main__."""
    result = trial(pool, repo, "probe.py", "--flag", FLAVOUR="mint")
    assert result.status is TrialStatus.OK, result.reason
    assert result.metrics["t_ms"] == (1.5, 2.5)
    printed = json.loads(result.stdout_path.read_text().splitlines()[-1])
    assert printed["argv"] == ["probe.py", "--flag"]
    assert printed["cwd"] == str(repo) and printed["flavour"] == "mint"
    assert printed["pgid"] == printed["pid"]  # its own group, so a timeout kills all of it
    assert printed["ppid"] == server_pids(pool)[0]  # forked, not a fresh interpreter
    assert result.stderr_path.read_text() == "to stderr\n"
    as_module = trial(pool, repo, "-m", "pkg", "x")
    assert as_module.status is TrialStatus.OK, as_module.reason
    assert json.loads(as_module.stdout_path.read_text())["argv"][1:] == ["x"]


def test_exit_codes_are_classified_as_for_a_process(pool: PreloadPool, repo: Path) -> None:
    """Exit 125 is a skip, another non-zero exit a failure with its code, 0 a measurement;
    an uncaught exception exits 1 with its traceback on stderr, a signal is a negative code."""
    assert trial(pool, repo, "probe.py", "125").status is TrialStatus.SKIP
    failed = trial(pool, repo, "probe.py", "3")
    assert (failed.status, failed.exit_code, failed.reason) == (
        TrialStatus.FAILED,
        3,
        "exited 3: to stderr",
    )
    (repo / "boom.py").write_text("raise RuntimeError('boom')\n")
    boom = trial(pool, repo, "boom.py")
    assert boom.exit_code == 1 and "RuntimeError: boom" in boom.stderr_path.read_text()
    assert boom.reason == "exited 1: RuntimeError: boom"  # the traceback's last line
    (repo / "killed.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    killed = trial(pool, repo, "killed.py")
    assert (killed.exit_code, killed.reason) == (-signal.SIGKILL, "was killed by SIGKILL")
    assert trial(pool, repo, "probe.py").status is TrialStatus.OK
    assert pool.started == 1  # every trial above went through the one server


def test_timeout_kills_the_forked_trials_whole_group(pool: PreloadPool, repo: Path) -> None:
    """On timeout the trial and the process it started are killed; the server lives on."""
    pidfile = repo.parent / "grandchild.pid"
    (repo / "hang.py").write_text(
        "import subprocess, sys, time\n"
        "p = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(300)\n"
    )
    start = time.monotonic()
    result = trial(pool, repo, "hang.py", timeout_s=1.5)
    assert result.timed_out and result.status is TrialStatus.FAILED
    assert result.exit_code is None and "timed out" in result.reason
    assert time.monotonic() - start < 20
    grandchild = int(pidfile.read_text())
    assert not _alive(grandchild)
    assert trial(pool, repo, "probe.py").ok and pool.started == 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def test_server_lifecycle_restart_and_env_key_change(pool: PreloadPool, repo: Path) -> None:
    """One server per environment key: reused, started again after it dies, another for a
    new key; close() stops them all."""
    assert trial(pool, repo, "probe.py").ok
    first = server_pids(pool)
    assert trial(pool, repo, "probe.py").ok and server_pids(pool) == first
    os.kill(first[0], signal.SIGKILL)
    time.sleep(0.2)
    assert trial(pool, repo, "probe.py").ok
    restarted = server_pids(pool)
    assert restarted != first and pool.started == 2
    assert trial(pool, repo, "probe.py", key="k2").ok
    both = server_pids(pool)
    assert len(both) == 2 and restarted[0] in both and pool.started == 3
    pool.close()
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in both)


def test_server_dies_with_a_killed_driver(tmp_path: Path, repo: Path) -> None:
    """When bisector is killed outright, its servers see their input close and exit."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from bisector.preload import PreloadPool
        from bisector.ports import BuiltEnv
        pool = PreloadPool(["json"], repo_root=Path({str(repo)!r}), log_dir=Path({str(tmp_path)!r}))
        launch = pool.launcher(BuiltEnv("k", Path(sys.executable), Path({str(repo)!r})))
        launch([sys.executable, "probe.py"], cwd=Path({str(repo)!r}), env=dict(os.environ),
               timeout_s=30, stdout_path=Path({str(tmp_path / "o")!r}),
               stderr_path=Path({str(tmp_path / "e")!r}), grace_s=1)
        print(next(iter(pool._servers.values())).proc.pid, flush=True)
        time.sleep(300)
        """
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert driver.stdout is not None
    server = int(driver.stdout.readline())
    assert _alive(server)
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)


def test_repository_modules_are_never_preloaded(tmp_path: Path, repo: Path) -> None:
    """A preload entry that pulls in a module of the repository under test is refused with
    an error naming it, and so is a trial whose checkout holds a loaded module."""
    (repo / "repo_mod.py").write_text("VALUE = 1\n")
    outside = tmp_path / "site"
    outside.mkdir()
    (outside / "sneaky.py").write_text(
        f"import sys\nsys.path.insert(0, {str(repo)!r})\nimport repo_mod\n"
    )
    env = {"PYTHONPATH": str(outside)}
    with PreloadPool(["sneaky"], repo_root=repo, log_dir=tmp_path / "logs") as sneaky:
        with pytest.raises(PreloadError, match="repo_mod"):
            trial(sneaky, repo, "probe.py", **env)
    with pytest.raises(PreloadError, match="pkg.sub is a module of the repository"):
        PreloadPool(["pkg.sub"], repo_root=repo, log_dir=tmp_path / "logs")
    # A checkout outside the repository (another store) holding a preloaded module.
    store = tmp_path / "store"
    store.mkdir()
    (store / "probe.py").write_text(PROBE)
    (store / "stored.py").write_text("X = 1\n")
    (outside / "sneaky_store.py").write_text(
        f"import sys\nsys.path.insert(0, {str(store)!r})\nimport stored\n"
    )
    with PreloadPool(["sneaky_store"], repo_root=repo, log_dir=tmp_path / "logs") as pool:
        with pytest.raises(PreloadError, match="stored"):
            trial(pool, store, "probe.py", **env)


def test_the_server_runs_in_the_environments_interpreter(tmp_path: Path, repo: Path) -> None:
    """A venv's trials are forked from a server run by the venv's own interpreter."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (repo / "where.py").write_text(
        "import json, sys\nprint(json.dumps({'x': 1, 'prefix': sys.prefix}))\n"
    )
    with PreloadPool(["json"], repo_root=repo, log_dir=tmp_path / "logs") as pool:
        built = BuiltEnv("venv-key", venv / "bin" / "python", repo)
        result = pool.launcher(built)(
            [str(built.python), "where.py"],
            cwd=repo,
            env=dict(os.environ),
            timeout_s=30,
            stdout_path=tmp_path / "o",
            stderr_path=tmp_path / "e",
            grace_s=0.5,
        )
        assert result.ok, result.stderr_path.read_text()
        assert Path(json.loads(result.stdout_path.read_text())["prefix"]) == venv
        assert pool.started == 1


def test_an_environment_without_the_modules_runs_cold(tmp_path: Path, repo: Path) -> None:
    """An environment that cannot import a preload entry runs its trials as fresh processes."""
    with PreloadPool(["no_such_module_xyz"], repo_root=repo, log_dir=tmp_path / "l") as pool:
        result = trial(pool, repo, "probe.py")
        assert result.ok and pool.started == 0
        assert json.loads(result.stdout_path.read_text())["ppid"] == os.getpid()


def test_config_accepts_preload_only_for_python_benchmarks() -> None:
    """benchmark.preload takes module names, and only with a `python SCRIPT|-m MOD` command."""
    base = "metrics: {t: {direction: lower}}\nbenchmark:\n  command: %s\n  preload: %s\n"
    cfg = parse_config(base % ("[python, -m, bisector.bench]", "[torch, transformers.models]"))
    assert cfg.benchmark.preload == ["torch", "transformers.models"]
    with pytest.raises(ConfigError, match="benchmark: preload needs a Python benchmark"):
        parse_config(base % ("[./bench.sh]", "[torch]"))
    with pytest.raises(ConfigError, match=r"benchmark\.preload\[0\].*module name"):
        parse_config(base % ("[python, bench.py]", "['../x']"))


TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.skipif(not TORCH, reason="torch is not installed here")
def test_torch_is_preloaded_without_initialising_cuda(tmp_path: Path, repo: Path) -> None:
    """The server imports torch without initialising CUDA (checked before forking), so a
    forked trial can use torch, and the GPU when there is one."""
    (repo / "gpu.py").write_text(
        "import json, sys, torch\n"
        "x = torch.ones(4, device='cuda' if torch.cuda.is_available() else 'cpu')\n"
        "print(json.dumps({'sum': float(x.sum()), 'preloaded': 'torch' in sys.modules}))\n"
    )
    with PreloadPool(["torch"], repo_root=repo, log_dir=tmp_path / "logs") as pool:
        result = trial(pool, repo, "gpu.py")
        assert result.ok, result.stderr_path.read_text()
        assert result.metrics["sum"] == (4.0,)
        assert next(iter(pool._servers.values())).ready["cuda_initialized"] is False
    import torch

    if not torch.cuda.is_available():
        pytest.skip("CPU-only torch: CUDA cannot be initialised at import here (gpu_check.sh)")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "cuda_at_import.py").write_text("import torch\ntorch.zeros(1).cuda()\n")
    env = {"PYTHONPATH": str(tmp_path / "site")}
    with PreloadPool(["cuda_at_import"], repo_root=repo, log_dir=tmp_path / "l2") as pool:
        with pytest.raises(PreloadError, match="CUDA"):
            trial(pool, repo, "gpu.py", **env)


@pytest.mark.slow
def test_bisection_with_preload_names_the_planted_culprit(make_sample: object) -> None:
    """A whole run with benchmark.preload forks its trials and still names the culprit."""
    sample: SampleRepo = make_sample(n_commits=12, culprit=7, slowdown=0.3)  # type: ignore[operator]
    config = sample.path / "bisector.yaml"
    config.write_text(
        config.read_text().replace("benchmark:\n", "benchmark:\n  preload: [json, statistics]\n")
    )
    outcome = run_bisection(RunRequest(good="v2.3.0", bad="v2.4.0", repo=sample.path))
    doc = outcome.document.to_json()
    assert doc["status"] == "found", doc
    assert doc["culprit"]["commit"] == sample.culprit
    logs = list(sample.path.glob(".bisector/**/preload/preload-*.log"))
    assert logs, "no preload server was started"
