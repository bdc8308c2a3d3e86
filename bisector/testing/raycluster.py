"""A real Ray head on 127.0.0.1 for tests and the bench, and a repository whose benchmark sleeps.

`RayHead.start` runs `ray start --head` in a session of its own with a private temp
folder and free ports, so it never meets another cluster on the machine; `stop` ends
exactly that session's processes (the raylet's workers included) — not `ray stop`,
which would stop every cluster of the user.

`sleep_repo` builds n commits whose benchmark sleeps a fixed time (its duration does
not depend on free CPU, so parallel workers show on a 2-core machine) and prints a
latency that steps up by `factor` from commit `culprit` on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bisector.testing import gitutil
from bisector.testing.wheels import make_wheel

_RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RayHead:
    address: str
    temp_dir: Path
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls, temp_dir: Path, *, num_cpus: int, num_gpus: int, resources: dict[str, float]
    ) -> RayHead:
        temp_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [
            str(_RAY), "start", "--head", "--block",
            "--node-ip-address", "127.0.0.1",
            "--port", str(port),
            "--num-cpus", str(num_cpus),
            "--num-gpus", str(num_gpus),
            "--resources", json.dumps(resources),
            "--temp-dir", str(temp_dir),
            "--include-dashboard", "false",
            "--dashboard-port", str(free_port()),
            "--dashboard-agent-listen-port", str(free_port()),
            "--min-worker-port", "0", "--max-worker-port", "0",
            "--disable-usage-stats",
        ]  # fmt: skip
        log = (temp_dir / "head.log").open("wb")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its group is ours to stop, and only it
            # Hermetic: no token auth picked up from a ~/.ray/auth_token another cluster
            # of the user left (Ray >= 2.5x enables it when that file exists).
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"},
        )
        head = cls(f"127.0.0.1:{port}", temp_dir, proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {(temp_dir / 'head.log').read_text()}")
            if b"Ray runtime started" in (temp_dir / "head.log").read_bytes():
                return head
            time.sleep(0.3)
        head.stop()
        raise RuntimeError("ray start did not come up in 120 s")

    def pids(self) -> list[int]:
        """Every live process of this cluster: its session, and anything under its temp dir."""
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if os.getsid(int(name)) == self.proc.pid:
                    found.append(int(name))
                    continue
                cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.temp_dir).encode() in cmd:
                found.append(int(name))
        return [pid for pid in found if not _zombie(pid)]

    def stop(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


BENCH = """\
import json, os, pathlib, random, sys, time
level = float(pathlib.Path("level.txt").read_text())
log = os.environ.get("TRIAL_LOG")
if log:
    with open(log, "a") as f:
        f.write(pathlib.Path("commit.txt").read_text().strip() + " " + str(os.getpid()) + "\\n")
hook = pathlib.Path("hook.py")
if hook.exists():
    exec(hook.read_text())
time.sleep(float(os.environ.get("SLEEP_S", "0.3")))
rng = random.Random()
print(json.dumps({"latency_ms": [level * (1 + rng.gauss(0, 0.003)) for _ in range(5)]}))
"""


def sleep_repo(
    path: Path, n: int, culprit: int, *, factor: float = 1.3, extra: dict[str, str] | None = None
) -> Path:
    """Commits 0..n-1 (tagged good at 0, bad at n-1); latency x`factor` from `culprit` on."""
    first = {"bench.py": BENCH, **(extra or {})}
    return _tagged_repo(
        path, n, first, lambda i: {"level.txt": f"{20.0 * (factor if i >= culprit else 1.0)}\n"}
    )


def _tagged_repo(
    path: Path, n: int, first: dict[str, str], files_of: Callable[[int], dict[str, str]]
) -> Path:
    """Commits 0..n-1 of `files_of(i)` and `commit.txt` (`first` added to commit 0), tagged
    good at 0 and bad at n-1."""
    repo = gitutil.make_repo(path)
    for i in range(n):
        files = {**files_of(i), "commit.txt": f"{i}\n", **(first if i == 0 else {})}
        gitutil.commit(
            repo, files, f"change {i}", tag="good" if i == 0 else "bad" if i == n - 1 else None
        )
    return repo


WHEEL_BENCH = """\
import json, os, random, time
import speedpkg
time.sleep(float(os.environ.get("SLEEP_S", "0.2")))
rng = random.Random()
print(json.dumps({"latency_ms": [speedpkg.LEVEL * (1 + rng.gauss(0, 0.003)) for _ in range(5)]}))
"""


def wheel_repo(
    path: Path, wheelhouse: Path, n: int, culprit: int, bench: str = WHEEL_BENCH
) -> Path:
    """Commits 0..n-1 whose requirements.txt pins `speedpkg` (a local wheel in `wheelhouse`):
    1.0.0 before `culprit`, 1.1.0 (30% slower) from it on; the benchmark (`bench`, printing
    `latency_ms` from the package's level) reads its level."""
    for version, level in (("1.0.0", 20.0), ("1.1.0", 26.0)):
        make_wheel(wheelhouse, "speedpkg", version, {"speedpkg/__init__.py": f"LEVEL = {level}\n"})
    return _tagged_repo(
        path,
        n,
        {"bench.py": bench},
        lambda i: {"requirements.txt": f"speedpkg=={'1.1.0' if i >= culprit else '1.0.0'}\n"},
    )
