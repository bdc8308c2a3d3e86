"""A real image registry on 127.0.0.1 for tests: Debian's `docker-registry` (distribution).

`LocalRegistry.start` runs `docker-registry serve` with a minimal config (filesystem
storage under the test's folder, a free port on 127.0.0.1, no auth) and waits for its
`/v2/` endpoint; `stop` ends exactly that process. dockerd treats 127.0.0.0/8 as an
insecure registry by default, so plain HTTP works with no daemon setting.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY_BINARY = "docker-registry"


def _binary() -> str | None:
    """The registry's binary: on PATH, or where Debian's package puts it."""
    found = shutil.which(REGISTRY_BINARY)
    return found or (
        f"/usr/bin/{REGISTRY_BINARY}" if Path("/usr/bin", REGISTRY_BINARY).exists() else None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LocalRegistry:
    address: str  # 127.0.0.1:PORT
    proc: subprocess.Popen[bytes]
    log: Path

    @staticmethod
    def available() -> bool:
        return _binary() is not None

    @classmethod
    def start(cls, folder: Path) -> LocalRegistry:
        binary = _binary()
        assert binary is not None, "check LocalRegistry.available() first"
        folder.mkdir(parents=True, exist_ok=True)
        address = f"127.0.0.1:{_free_port()}"
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}}}\n"
            f"http: {{addr: '{address}'}}\n"
        )
        log = folder / "registry.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        registry = cls(address, proc, log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as reply:
                    if reply.status == 200:
                        return registry
            time.sleep(0.2)
        registry.stop()
        raise RuntimeError("docker-registry did not answer on /v2/ within 30 s")

    def tags(self, repository: str) -> list[str]:
        """The tags the registry holds for `repository` (empty when it has none)."""
        try:
            url = f"http://{self.address}/v2/{repository}/tags/list"
            with urllib.request.urlopen(url, timeout=5) as reply:
                return list(json.loads(reply.read()).get("tags") or [])
        except urllib.error.HTTPError:
            return []

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
