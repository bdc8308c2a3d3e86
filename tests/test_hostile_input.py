"""Hostile and careless input is one `error:` line with exit 2, fast, never a traceback (issue 13, items 12-14)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from bisector.config import MAX_CONFIG_BYTES, MAX_CONFIG_NODES, load_config, parse_config
from bisector.engine.runner import parse_output
from bisector.errors import ConfigError
from bisector.plumbing import yamlload
from bisector.plumbing.yamlload import safe_load
from bisector.store.journal import Journal
from bisector.testing.sample import SampleRepo
from snapshots.configs import parse_config_bytes

from .conftest import run_cli, tree_digest

BASE = """\
benchmark:
  command: [python, bench.py]
  timeout: 60s
metrics:
  latency_ms: {direction: lower, threshold: 5%}
"""

# Nine anchors of ten aliases each: 10^9 nodes for anything that walks the document.
BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(9)
)
DEEP_FLOW = "a: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_BLOCK = "".join(" " * i + f"k{i}:\n" for i in range(5000))
HUGE = "9" * 401


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lower().startswith("error:")]


def _assert_refused(done: object) -> None:
    out = done.stdout + done.stderr  # type: ignore[attr-defined]
    assert done.returncode == 2, out  # type: ignore[attr-defined]
    assert "Traceback" not in out
    assert len(_errors(out)) == 1, out


# --- 12: YAML alias bombs and deep nesting ------------------------------------------


@pytest.mark.parametrize(
    "doc", [BOMB, DEEP_FLOW, DEEP_BLOCK, "a: &a [*a]\n"], ids=["bomb", "flow", "block", "recursive"]
)
def test_the_yaml_loader_refuses_bombs_and_deep_nesting_in_well_under_a_second(doc: str) -> None:
    """Alias bombs, recursive aliases and 5,000-deep nesting are YAML errors within a fraction of a second."""
    started = time.monotonic()
    with pytest.raises(yaml.YAMLError):
        safe_load(doc)
    assert time.monotonic() - started < 0.5


def test_the_yaml_loader_still_reads_anchors_and_merge_keys() -> None:
    """Ordinary anchors, aliases and merge keys load as before."""
    assert safe_load("a: &x {b: 1}\nc: *x\nd: {<<: *x, e: 2}\n") == {
        "a": {"b": 1},
        "c": {"b": 1},
        "d": {"b": 1, "e": 2},
    }


@pytest.mark.parametrize(
    "extra", [BOMB.replace("a:", "x_a:", 1), DEEP_FLOW.replace("a:", "deep:")], ids=["bomb", "deep"]
)
def test_bisector_yaml_with_a_bomb_is_a_config_error_fast(extra: str) -> None:
    """bisector.yaml holding an alias bomb or deep nesting is a ConfigError, not a hang or RecursionError."""
    started = time.monotonic()
    with pytest.raises(ConfigError, match="malformed YAML"):
        parse_config(BASE + extra)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("doc", [BOMB, DEEP_FLOW, DEEP_BLOCK])
def test_a_committed_config_with_a_bomb_is_a_parse_error_of_its_snapshot(doc: str) -> None:
    """A committed config file with a bomb is stored with a parse error, quickly (snapshots never expand it)."""
    started = time.monotonic()
    parsed, problem = parse_config_bytes("configs/evil.yaml", doc.encode())
    assert parsed is None and problem is not None and "malformed YAML" in problem
    assert time.monotonic() - started < 0.5


def test_config_check_refuses_a_bomb_with_one_error_line(tmp_path: Path) -> None:
    """`config check` on a bisector.yaml with an alias bomb exits 2 with one `error:` line."""
    (tmp_path / "bisector.yaml").write_text(BASE + BOMB.replace("a:", "x_a:", 1))
    done = run_cli("config", "check", "--repo", str(tmp_path), timeout=30)
    _assert_refused(done)
    assert "aliases are expanded" in done.stderr


def test_a_big_bisector_yaml_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    """A 48 MB bisector.yaml of 500,000 keys took 41 s and 1 GB before its node count was
    refused, as "more than 200000 nodes once aliases are expanded" (it had none)."""
    keys = "".join(f"key_{i}: value number {i}\n" for i in range(400_000))
    (tmp_path / "bisector.yaml").write_text(BASE + keys)
    size = (tmp_path / "bisector.yaml").stat().st_size
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert time.monotonic() - started < 0.5
    assert info.value.message == (
        f"{tmp_path / 'bisector.yaml'} is {size / (1 << 20):.1f} MiB: a config file is read "
        "only up to 1 MiB"
    )
    assert info.value.hint and "a few KiB" in info.value.hint
    before = tree_digest(tmp_path)
    done = run_cli("config", "check", "--repo", str(tmp_path), timeout=30)
    _assert_refused(done)
    assert "read only up to 1 MiB" in done.stderr and tree_digest(tmp_path) == before


def test_a_bisector_yaml_of_exactly_the_bound_is_read(tmp_path: Path) -> None:
    padding = "#" * (MAX_CONFIG_BYTES - len(BASE) - 1) + "\n"
    (tmp_path / "bisector.yaml").write_text(BASE + padding)
    assert (tmp_path / "bisector.yaml").stat().st_size == MAX_CONFIG_BYTES
    assert load_config(tmp_path).benchmark.command == ["python", "bench.py"]


def test_a_bisector_yaml_of_many_tiny_values_under_the_size_bound_is_refused_fast(
    tmp_path: Path,
) -> None:
    """A bisector.yaml under 1 MiB of 200,000 tiny values took 8 s to reach the 200,000-node
    limit; bisector.yaml has its own (a real one has a few hundred nodes)."""
    (tmp_path / "bisector.yaml").write_text(BASE + "x:\n" + "- 1\n" * 200_000)
    assert (tmp_path / "bisector.yaml").stat().st_size < MAX_CONFIG_BYTES
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert time.monotonic() - started < 1.0
    assert info.value.message.endswith(f": malformed YAML: more than {MAX_CONFIG_NODES} nodes")
    before = tree_digest(tmp_path)
    done = run_cli("config", "check", "--repo", str(tmp_path), timeout=30)
    _assert_refused(done)
    assert f"more than {MAX_CONFIG_NODES} nodes" in done.stderr and tree_digest(tmp_path) == before


def test_the_lower_node_limit_is_bisector_yaml_s_alone() -> None:
    """A committed config file keeps the general limit: the document bisector.yaml may not
    hold (nor reach through aliases) parses as a snapshot's config."""
    values = "x:\n" + "- 1\n" * (MAX_CONFIG_NODES + 10)
    parsed, problem = parse_config_bytes("configs/big.yaml", values.encode())
    assert problem is None and len(parsed["x"]) == MAX_CONFIG_NODES + 10
    assert MAX_CONFIG_NODES < yamlload.MAX_NODES
    with pytest.raises(ConfigError, match=f"more than {MAX_CONFIG_NODES} nodes$"):
        parse_config(BASE + values)
    aliases = "a: &a [" + ",".join("x" * 200) + "]\nb: [" + ",".join(["*a"] * 60) + "]\n"
    assert safe_load(aliases)["b"][0][0] == "x"
    with pytest.raises(ConfigError, match="nodes once aliases are expanded"):
        parse_config(BASE + aliases)


def test_too_many_nodes_without_aliases_is_said_so_and_refused_as_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nodes are counted as they are read: a document past the limit is refused there (the
    unclosed list after them is never reached), without a word about aliases it lacks."""
    monkeypatch.setattr(yamlload.LimitedLoader, "max_nodes", 1000)
    doc = "".join(f"k{i}: v\n" for i in range(600)) + "broken: [unclosed\n"
    with pytest.raises(yaml.YAMLError) as info:
        safe_load(doc)
    assert str(info.value).splitlines()[0] == "more than 1000 nodes"
    # with aliases, the expanded count says so
    with pytest.raises(yaml.YAMLError) as info:
        safe_load("a: &a [" + ",".join("x" * 40) + "]\nb: [" + ",".join(["*a"] * 40) + "]\n")
    assert str(info.value).splitlines()[0] == "more than 1000 nodes once aliases are expanded"


# --- 14: values that silently disable things ----------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("timeout: 60s", "timeout: .nan", "finite"),
        ("timeout: 60s", "timeout: .inf", "finite"),
        ("timeout: 60s", f"timeout: {HUGE}", "at most a year"),
        ("threshold: 5%", "threshold: .nan", "finite"),
        ("threshold: 5%", "threshold: .inf", "finite"),
        ("threshold: 5%", f"threshold: {HUGE}", "finite"),
        ("command: [python, bench.py]", "command: ['']", "first word"),
        ("command: [python, bench.py]", 'command: ["py\\0thon"]', "NUL"),
        ("timeout: 60s", 'timeout: 60s\n  env: {"A=B": x}', "'='"),
        ("timeout: 60s", 'timeout: 60s\n  env: {A: "x\\0y"}', "NUL"),
        (
            "timeout: 60s",
            "timeout: 60s\n  repeats: {min: 1, max: " + HUGE + "}",
            "less than or equal",
        ),
        ("timeout: 60s", "timeout: 60s\ndaemon: {schedule: every night}", "crontab"),
        ("timeout: 60s", "timeout: 60s\ndaemon: {schedule: '0 25 * * *'}", "crontab"),
        ("timeout: 60s", "timeout: 60s\nrollback: {health_check: ['']}", "first word"),
    ],
)
def test_values_that_would_disable_a_safeguard_are_refused(old: str, new: str, says: str) -> None:
    """NaN/infinite/huge timeouts and thresholds, empty or NUL commands, bad env keys and non-cron schedules are refused."""
    with pytest.raises(ConfigError, match=says):
        parse_config(BASE.replace(old, new))


@pytest.mark.slow
def test_config_check_and_daemon_once_refuse_a_schedule_that_is_not_cron(tmp_path: Path) -> None:
    """`config check` and `daemon --once` both refuse `daemon.schedule: every night` with exit 2."""
    (tmp_path / "bisector.yaml").write_text(BASE + "daemon: {schedule: every night}\n")
    for args in (("config", "check"), ("daemon", "--once")):
        done = run_cli(*args, "--repo", str(tmp_path), timeout=60)
        _assert_refused(done)
        assert "daemon.schedule" in done.stderr


def test_network_host_warns_in_config_check(tmp_path: Path) -> None:
    """`environment.docker.network: host` is accepted by `config check` with a warning."""
    (tmp_path / "bisector.yaml").write_text(BASE + "environment: {docker: {network: host}}\n")
    done = run_cli("config", "check", "--repo", str(tmp_path), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "network" in done.stderr


def test_demo_never_replaces_a_symlink(tmp_path: Path) -> None:
    """`demo --workdir X` where X/serving-demo links to another demo's folder: exit 2 naming it, both kept."""
    other = tmp_path / "other" / "serving-demo"
    (other / ".git").mkdir(parents=True)
    (other / ".git" / "bisector-demo").write_text("made by `bisector demo`")
    (tmp_path / "serving-demo").symlink_to(other)
    done = run_cli("demo", "--workdir", str(tmp_path), timeout=60)
    _assert_refused(done)
    assert "is a symlink; refusing to replace it" in done.stderr
    assert (tmp_path / "serving-demo").is_symlink() and (other / ".git" / "bisector-demo").is_file()


def test_demo_never_replaces_a_folder_it_did_not_make(tmp_path: Path) -> None:
    """`demo --workdir X` refuses when X/serving-demo exists and was not made by the demo; the folder is kept."""
    mine = tmp_path / "serving-demo"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep me")
    done = run_cli("demo", "--workdir", str(tmp_path), timeout=60)
    _assert_refused(done)
    assert (mine / "precious.txt").read_text() == "keep me"


# --- 13: paths, ports, numbers, nesting ---------------------------------------------


def test_parse_output_keeps_a_401_digit_number_and_deep_nesting_out_of_the_metrics() -> None:
    """A 401-digit metric value and 100,000-deep JSON do not raise; the rest of the line still counts."""
    assert parse_output('{"lat": ' + HUGE + "}") == ({}, {"lat": int(HUGE)})
    assert parse_output('{"lat": ' + "[" * 100_000 + "]" * 100_000 + "}") is None
    metrics, meta = parse_output('{"lat": 3, "junk": ' + "[" * 900 + "]" * 900 + "}") or ({}, {})
    assert metrics == {"lat": (3.0,)} and meta["junk"] == "(nested too deep; not kept)"


@pytest.fixture
def sample(make_sample: Callable[..., SampleRepo]) -> SampleRepo:
    """A small sim repository (8 commits)."""
    return make_sample(n_commits=8, culprit=5, noise=0.0, repeats=(2, 5))


@pytest.mark.slow
def test_an_unwritable_report_dir_is_refused_before_measuring(sample: SampleRepo) -> None:
    """`run --report-dir /proc/x` exits 2 before any trial runs."""
    done = run_cli(
        "run",
        "--good",
        "v2.3.0",
        "--bad",
        "v2.4.0",
        "--repo",
        str(sample.path),
        "--report-dir",
        "/proc/bisector-x",
        timeout=120,
    )
    _assert_refused(done)
    assert "--report-dir" in done.stderr and "trials" not in done.stderr
    assert not (sample.path / ".bisector" / "runs").exists()


@pytest.mark.slow
def test_demo_in_an_unwritable_workdir_is_refused() -> None:
    """`demo --workdir /proc/nope` exits 2 with one error line."""
    _assert_refused(run_cli("demo", "--workdir", "/proc/bisector-nope", timeout=60))


@pytest.mark.slow
def test_a_store_that_cannot_be_written_is_refused(sample: SampleRepo) -> None:
    """A store under /proc: `status` and `daemon --once` exit 2, never 1."""
    cfg = sample.path / "bisector.yaml"
    cfg.write_text(cfg.read_text().replace("store: .bisector", "store: /proc/bisector-store"))
    for args in (("status",), ("daemon", "--once")):
        _assert_refused(run_cli(*args, "--repo", str(sample.path), timeout=60))


def test_a_corrupted_journal_under_report_is_exit_2(sample: SampleRepo) -> None:
    """`report` over a journal whose pages are garbage exits 2 naming the database."""
    store = sample.path / ".bisector"
    store.mkdir(exist_ok=True)
    with Journal(store):
        pass  # the real schema: its tables' pages follow the first
    data = bytearray((store / "journal.sqlite").read_bytes())
    data[4096:] = b"Z" * (len(data) - 4096)
    (store / "journal.sqlite").write_bytes(bytes(data))
    done = run_cli("report", "some-run", "--repo", str(sample.path), timeout=60)
    _assert_refused(done)
    assert "database" in done.stderr


def test_report_without_a_journal_is_exit_2_and_creates_nothing(sample: SampleRepo) -> None:
    """`report` before any run exits 2 and leaves no store (not even an empty journal)."""
    store = sample.path / ".bisector"
    assert not store.exists()
    done = run_cli("report", "latest", "--repo", str(sample.path), timeout=60)
    _assert_refused(done)
    assert "no runs are recorded" in done.stderr
    assert not store.exists()


@pytest.mark.slow
def test_deps_without_requirements_and_config_with_a_non_yaml_side_are_exit_2(
    sample: SampleRepo,
) -> None:
    """`deps` with no environment.requirements, and `config --good /etc/passwd`, exit 2 before measuring."""
    cfg = sample.path / "bisector.yaml"
    good = cfg.read_text()
    cfg.write_text(good.replace("  requirements: [requirements.txt]\n", ""))
    req = str(sample.path / "requirements.txt")
    done = run_cli(
        "deps", "--good-lock", req, "--bad-lock", req, "--repo", str(sample.path), timeout=60
    )
    _assert_refused(done)
    assert "environment.requirements" in done.stderr
    cfg.write_text(good)
    done = run_cli(
        "config",
        "--good",
        "/etc/passwd",
        "--bad",
        str(sample.path / "configs" / "model.yaml"),
        "--repo",
        str(sample.path),
        timeout=60,
    )
    _assert_refused(done)
    assert "--good /etc/passwd" in done.stderr
    empty = sample.path.parent / "empty.yaml"
    empty.write_text("")
    model = str(sample.path / "configs" / "model.yaml")
    done = run_cli("config", "--good", str(empty), "--bad", model, "--repo", str(sample.path))
    _assert_refused(done)
    assert f"--good {empty}: not a YAML/JSON mapping (it is empty)" in done.stderr
    before = tree_digest(sample.path)
    for extra in (["--target", "configs/nothere.yaml"], []):
        stray = sample.path / "configs" / "stray.yaml"  # untracked: HEAD does not have it
        stray.write_text((sample.path / "configs" / "model.yaml").read_text())
        bad = str(stray) if not extra else model
        done = run_cli("config", "--good", model, "--bad", bad, *extra, "--repo", str(sample.path))
        stray.unlink()
        _assert_refused(done)
        path = "configs/nothere.yaml" if extra else "configs/stray.yaml"
        assert f"stands for {path}, which HEAD (" in done.stderr
        assert "hint: pass --target" in done.stderr
    assert tree_digest(sample.path) == before


def test_deps_sides_that_do_not_read_as_the_dependency_file_are_exit_2(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """Requirements files given for a pyproject.toml (or a lock for a requirements file)
    read as no packages: `deps` measured HEAD and said "not reproduced", exit 3."""
    sample = make_sample(n_commits=8, culprit=5, builder="venv", deps_file="pyproject")
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("fastpad==1.0.0\nservekit==1.0.0\ntokenkit==2.2.0\n")
    bad.write_text("fastpad==1.3.0\nservekit==1.0.0\ntokenkit==2.2.0\n")
    before = tree_digest(sample.path)
    args = ("deps", "--good-lock", str(good), "--bad-lock", str(bad), "--repo", str(sample.path))
    done = run_cli(*args, timeout=60)
    _assert_refused(done)
    assert f"error: --good-lock {good}: does not read as pyproject.toml" in done.stderr
    assert (
        "malformed TOML" in done.stderr
        and "hint: pass two versions of pyproject.toml" in done.stderr
    )
    assert tree_digest(sample.path) == before
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "fastpad"\nversion = "1.0.0"\n')
    cfg = sample.path / "bisector.yaml"
    cfg.write_text(cfg.read_text().replace("[pyproject.toml]", "[requirements.txt]"))
    before = tree_digest(sample.path)
    done = run_cli("deps", "--good-lock", str(lock), *args[3:], timeout=60)
    _assert_refused(done)
    assert "does not read as requirements.txt" in done.stderr
    assert "(line 1: cannot parse 'version = 1')" in done.stderr
    assert tree_digest(sample.path) == before


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.slow
def test_a_metrics_port_in_use_is_exit_2(sample: SampleRepo, busy_port: int) -> None:
    """`daemon --once` with `daemon.metrics_port` taken exits 2 naming the key."""
    cfg = sample.path / "bisector.yaml"
    cfg.write_text(cfg.read_text() + f"daemon: {{metrics_port: {busy_port}}}\n")
    done = run_cli("daemon", "--once", "--repo", str(sample.path), timeout=60)
    _assert_refused(done)
    assert "daemon.metrics_port" in done.stderr


@pytest.mark.parametrize("args", [("-h",), ("run", "-h"), ("snapshot", "show", "-h")])
def test_dash_h_is_help_everywhere(args: tuple[str, ...]) -> None:
    """`-h` prints the same help as `--help` (it was `No such option: -h`)."""
    short, long = run_cli(*args), run_cli(*args[:-1], "--help")
    assert short.returncode == 0 and short.stdout == long.stdout and "Usage:" in short.stdout


def test_a_store_that_is_a_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    """`.bisector` is a file: `snapshot take` exits 2 with one error and a hint naming snapshots.store."""
    from bisector.testing.gitutil import commit_all, make_repo

    repo = make_repo(tmp_path / "repo")
    (repo / "configs").mkdir()
    (repo / "configs" / "a.yaml").write_text("a: 1\n")
    (repo / "bisector.yaml").write_text(BASE + "snapshots: {configs: ['configs/*.yaml']}\n")
    commit_all(repo, "init")
    (repo / ".bisector").write_text("in the way\n")
    done = run_cli("snapshot", "take", "HEAD", "--repo", str(repo), timeout=60)
    _assert_refused(done)
    assert "hint:" in done.stderr and "snapshots.store" in done.stderr
    assert (repo / ".bisector").read_text() == "in the way\n"
