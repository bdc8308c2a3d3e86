"""The daemon's image: built from the repository's Dockerfile on the local base, then run.

The build runs the commands of README's daemon section (a wheelhouse made on the host,
`docker build --build-arg BASE=...`), so no package index is needed inside the build.
One image serves both tests (module fixture); each test has its own repository and store
volume. Timings go to stdout (`pytest -s`) for bench/RESULTS.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bisector.testing.sample import SampleRepo, SampleSpec, build_sample_repo
from tests.conftest import ROOT
from tests.daemon_support import RELEASES
from tests.docker_support import BASE_IMAGE, docker_or_skip

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TAG = "bisector-daemon:test"
UID = 10001  # the image's non-root user (Dockerfile)
# A cron line that fires within a minute: the long-running container must run a cycle.
DAEMON_YAML = "daemon:\n  schedule: '* * * * *'\n  metrics_port: 9464\n  policy: report\n"


def _run(
    *argv: str, timeout: float = 600, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def _skip_unless_buildable() -> None:
    docker_or_skip()
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    if _run(sys.executable, "-m", "pip", "--version", check=False).returncode != 0:
        pytest.skip(f"{sys.executable} has no pip to build the wheelhouse")
    # Binary wheels (numpy, pydantic-core, ...) are built for the host's Python: it must be
    # the image's minor version.
    image_py = _run(
        "docker",
        "run",
        "--rm",
        BASE_IMAGE,
        "python3",
        "-c",
        "import sys; print('%d.%d' % sys.version_info[:2])",
    ).stdout.strip()
    host_py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if image_py != host_py:
        pytest.skip(
            f"the host's Python is {host_py}, {BASE_IMAGE}'s is {image_py}: the wheelhouse would not fit"
        )


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The image, built by README's commands; the previous `TAG` image is removed after."""
    _skip_unless_buildable()
    old = _run("docker", "image", "inspect", "--format", "{{.Id}}", TAG, check=False).stdout.strip()
    started = time.monotonic()
    # A stale setuptools build/ would put modules deleted since into the wheel.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    shutil.rmtree(ROOT / "wheelhouse", ignore_errors=True)
    _run(sys.executable, "-m", "pip", "wheel", "-q", ".", "-w", "wheelhouse", cwd=ROOT)
    wheels = time.monotonic()
    _run("docker", "build", "-q", "--build-arg", f"BASE={BASE_IMAGE}", "-t", TAG, ".", cwd=ROOT)
    built = time.monotonic()
    size = int(_run("docker", "image", "inspect", "--format", "{{.Size}}", TAG).stdout)
    print(
        f"\ndaemon image: wheelhouse {wheels - started:.0f}s, docker build {built - wheels:.0f}s, "
        f"size {size / 1e6:.0f} MB"
    )
    new = _run("docker", "image", "inspect", "--format", "{{.Id}}", TAG).stdout.strip()
    if old and old != new:  # keep one image (and its cached layers), not one per test run
        _run("docker", "image", "rm", old, check=False)
    # The classic builder leaves the install stage (base + wheelhouse + venv) untagged.
    _run(
        "docker",
        "image",
        "prune",
        "-f",
        "--filter",
        "label=bisector.build-stage=install",
        check=False,
    )
    yield TAG


@pytest.fixture
def store() -> Iterator[str]:
    """A fresh named volume for the store; removed with every container that used it."""
    name = f"bisector-test-store-{uuid.uuid4().hex[:12]}"
    _run("docker", "volume", "create", name)
    yield name
    users = _run("docker", "ps", "-aq", "--filter", f"volume={name}", check=False).stdout.split()
    if users:
        _run("docker", "rm", "-f", *users, check=False)
    _run("docker", "volume", "rm", "-f", name, check=False)


def _repo(tmp_path: Path) -> SampleRepo:
    """v2.3.0, v2.3.1 fine; v2.4.0 (the head) carries the planted culprit; open to uid 10001."""
    spec = SampleSpec(
        n_commits=10, culprit=8, repeats=(4, 8), releases=RELEASES, extra_yaml=DAEMON_YAML
    )
    repo = build_sample_repo(tmp_path / "repo", spec)
    # The container's user is not the owner: it reads the history and adds worktrees
    # (.git/worktrees), so the checkout must be readable and .git writable by it.
    _run("chmod", "-R", "a+rwX", str(repo.path))
    return repo


def _mounts(repo: SampleRepo, store: str) -> list[str]:
    return ["-v", f"{repo.path}:/repo", "-v", f"{store}:/repo/.bisector"]


def _in_image(image: str, store: str, script: str, user: str = "bisector") -> str:
    """Run a shell script in a throwaway container of the image with the store mounted."""
    return _run(
        "docker",
        "run",
        "--rm",
        "--user",
        user,
        "-v",
        f"{store}:/repo/.bisector",
        "--entrypoint",
        "sh",
        image,
        "-c",
        script,
    ).stdout


def _events(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_once_names_the_culprit_as_non_root_and_writes_the_report_to_the_store(
    image: str, store: str, tmp_path: Path
) -> None:
    """`daemon --once` in the image bisects the mounted repo to the culprit, as uid 10001, report in the volume, exit 0."""
    repo = _repo(tmp_path)
    started = time.monotonic()
    proc = _run(
        "docker",
        "run",
        "--rm",
        *_mounts(repo, store),
        image,
        "daemon",
        "--repo",
        "/repo",
        "--once",
        check=False,
    )
    print(f"\ndaemon --once in the image: {time.monotonic() - started:.0f}s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    end = [e for e in _events(proc.stderr) if e.get("event") == "daemon.cycle.end"]
    assert len(end) == 1 and end[0]["outcome"] == "regression", proc.stderr[-3000:]
    assert end[0]["culprit"] == repo.culprit
    run_id = end[0]["run_id"]
    listing = _in_image(
        image, store, "stat -c '%u %n' /repo/.bisector/journal.sqlite /repo/.bisector/reports/*/*"
    )
    owners = {
        line.split(" ", 1)[1].rsplit("/", 1)[-1]: int(line.split(" ", 1)[0])
        for line in listing.splitlines()
    }
    assert {"journal.sqlite", "report.md", "report.html", "report.json"} <= set(owners), listing
    assert set(owners.values()) == {UID}, listing  # written by the non-root user
    report = json.loads(_in_image(image, store, "cat /repo/.bisector/reports/*/report.json"))
    assert repo.culprit in json.dumps(report)
    assert f"/repo/.bisector/reports/{run_id}/report.json" in listing

    # What the image holds besides: no test dependencies, no compiler, no pip cache, no wheelhouse.
    assert (
        _run("docker", "image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
        == "bisector"
    )
    _in_image(
        image,
        store,
        user="0",
        script=(
            "set -e; ! python -c 'import pytest' 2>/dev/null; ! command -v gcc; ! command -v cc; "
            "test ! -e /root/.cache/pip; test ! -e /home/bisector/.cache/pip; test ! -e /tmp/wheelhouse; "
            'test "$(id -u bisector)" = 10001'
        ),
    )


def _wait(what: str, predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_long_running_container_is_healthy_stops_on_sigterm_and_leaves_its_journal(
    image: str, store: str, tmp_path: Path
) -> None:
    """`docker run -d` gets healthy, runs a scheduled cycle, stops on SIGTERM in time; the next container sees its journal."""
    repo = _repo(tmp_path)
    name = f"bisector-test-daemon-{uuid.uuid4().hex[:12]}"
    _run(
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--health-interval",
        "1s",
        "--health-start-period",
        "60s",
        *_mounts(repo, store),
        image,
    )

    def state() -> dict[str, Any]:
        return json.loads(_run("docker", "inspect", "--format", "{{json .State}}", name).stdout)

    def logs() -> str:
        proc = _run("docker", "logs", name)
        return proc.stdout + proc.stderr

    _wait("healthy", lambda: (state().get("Health") or {}).get("Status") == "healthy", 60)
    # The schedule fires at the next minute; its cycle bisects the new release.
    _wait("a scheduled cycle", lambda: '"daemon.cycle.end"' in logs(), 180)
    assert state()["Running"], logs()[-3000:]

    started = time.monotonic()
    _run("docker", "stop", "--time", "30", name)
    took = time.monotonic() - started
    print(f"\ndocker stop: {took:.1f}s")
    final = state()
    assert took < 25 and final["ExitCode"] == 0, (took, final, logs()[-3000:])
    assert '"daemon.stopped"' in logs()

    proc = _run(
        "docker", "run", "--rm", *_mounts(repo, store), image, "status", "--json", "--repo", "/repo"
    )
    daemon = json.loads(proc.stdout)["daemon"]
    assert daemon["running"] is False
    assert daemon["last_good"]["commit"] == repo.tags["v2.3.1"]
    assert [c["outcome"] for c in daemon["cycles"]] == ["regression"]
    assert daemon["ranges"][0]["culprit"] == repo.culprit
