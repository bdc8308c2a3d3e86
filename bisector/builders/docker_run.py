"""Talking to the Docker daemon, and running one benchmark trial in a container.

`connect` turns the SDK's connection failures into a `DockerError` with a hint (no daemon,
permission denied on the socket); `LazyClient` connects so only on its first call to the
daemon (the docker builder's: computing keys needs none). `ContainerTrial` is the docker builder's `TrialLauncher`:
the checkout is mounted read-only at `/bisector/checkout` (the working directory), unless
the image holds it already (the code layer), `/tmp`
is a tmpfs (and `HOME`), the network is `none` unless configured, GPUs are passed as device
requests, CPU and memory are limited when configured. Locked down always: the benchmark
runs as `nobody` (`TRIAL_USER`, uid 65534), with every capability dropped, no way to gain
privileges (`no-new-privileges`), at most `PIDS_LIMIT` processes and threads, and a
container log of at most `LOG_MAX` per file (two files: its newest output, where the
JSON line is). The per-trial timeout is enforced by
stopping the container (SIGTERM, then SIGKILL after the grace). Every container carries
the label `bisector=1` (and the builder's session), and is removed in a `finally`, so it
is gone after success, failure, timeout, an API error and Ctrl-C; `sweep` removes what an
interruption between create and the `try` could still leave.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from bisector.engine.runner import DEFAULT_GRACE_S, classify
from bisector.errors import DockerError
from bisector.log import get_logger
from bisector.ports import TrialResult

log = get_logger(__name__)

CONTAINER_CHECKOUT = "/bisector/checkout"
LABEL = "bisector"
SESSION_LABEL = "bisector.session"
TRIAL_USER = "65534:65534"  # nobody:nogroup; never root, whatever the image says
PIDS_LIMIT = 4096  # a fork bomb stops here; a PyTorch data loader's threads fit well under it
LOG_MAX = "32m"
_START_HINT = "start the daemon (`dockerd &` or `sudo systemctl start docker`) or set DOCKER_HOST"


def connect() -> docker.DockerClient:
    """A client of the daemon named by the environment (DOCKER_HOST, else the local socket).

    :raises DockerError: no daemon reachable, or permission denied on its socket.
    """
    try:
        client = docker.from_env()
        client.ping()
    except (DockerException, requests.RequestException) as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise DockerError(
                "permission denied on the Docker socket",
                hint="add your user to the `docker` group (then log in again), or point "
                "DOCKER_HOST at a daemon you may use (e.g. rootless docker)",
            ) from exc
        raise DockerError(
            f"no Docker daemon reachable ({_first_line(text)})", hint=_START_HINT
        ) from exc
    return client


class LazyClient(docker.DockerClient):  # type: ignore[misc]  # the SDK is untyped
    """A `DockerClient` that connects (`connect`) on its first call to the daemon, not when made.

    Why: the docker builder computes environment keys from git objects alone, and the ray
    executor's driver makes one only for that (the workers build and run); that machine
    (a laptop, a CI box) often has no daemon. Every call of the SDK's high-level client,
    its collections (`images`, `containers`) included, goes through `api`, so connecting
    there covers them all. `DockerClient.__init__` is not called: it would connect.

    `client`: an already connected client to wrap (tests).
    """

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._connecting = threading.Lock()
        self._api: Any = client.api if client is not None else None

    @property
    def api(self) -> Any:
        """The low-level client. :raises DockerError: no daemon reachable (first call)."""
        with self._connecting:
            if self._api is None:
                self._api = connect().api
            return self._api

    @property
    def connected(self) -> bool:
        with self._connecting:
            return self._api is not None

    def close(self) -> None:
        with self._connecting:
            api, self._api = self._api, None
        if api is not None:
            api.close()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "no detail"


def device_requests(gpus: Literal["all", "none"] | int) -> list[docker.types.DeviceRequest]:
    """`gpus: all | N | none` as the device requests of `docker run --gpus`."""
    if gpus == "none" or gpus == 0:
        return []
    count = -1 if gpus == "all" else int(gpus)
    return [docker.types.DeviceRequest(count=count, capabilities=[["gpu"]])]


@dataclass(frozen=True)
class ContainerOptions:
    """How trial containers run (from `environment.docker`)."""

    network: str = "none"
    gpus: Literal["all", "none"] | int = "none"
    cpus: float | None = None
    memory: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def create_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "network_mode": self.network,
            "device_requests": device_requests(self.gpus),
            "labels": {LABEL: "1", **self.labels},
            "tmpfs": {"/tmp": "rw,exec,size=1g,mode=1777"},
            "user": TRIAL_USER,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": PIDS_LIMIT,
            "log_config": docker.types.LogConfig(
                type="json-file", config={"max-size": LOG_MAX, "max-file": "2"}
            ),
        }
        if self.cpus is not None:
            kwargs["nano_cpus"] = int(self.cpus * 1e9)
        if self.memory is not None:
            kwargs["mem_limit"] = self.memory
        return kwargs


def _remove(container: Container) -> None:
    try:
        container.remove(force=True)
    except NotFound:
        pass
    except (APIError, requests.RequestException) as exc:
        log.warning("could not remove container", id=container.short_id, error=str(exc))


def start_container(container: Container, options: ContainerOptions) -> None:
    """Start `container`. :raises DockerError: it asks for GPUs the daemon cannot give (the
    machine's problem, not the commit's: no trial of any commit would run)."""
    try:
        container.start()
    except APIError as exc:
        if options.gpus in ("none", 0) or "could not select device driver" not in str(exc):
            raise
        raise DockerError(
            f"environment.docker.gpus is {options.gpus}, but the Docker daemon cannot give a "
            f"container GPUs ({_first_line(str(exc.explanation or exc))})",
            hint="install the NVIDIA Container Toolkit and restart the daemon (`docker info` "
            "then lists the nvidia runtime), or set environment.docker.gpus: none",
        ) from None


def sweep(client: docker.DockerClient, labels: Mapping[str, str]) -> int:
    """Remove every container (running or not) with all of `labels`; how many."""
    filters = {"label": [f"{k}={v}" for k, v in {LABEL: "1", **labels}.items()]}
    found = client.containers.list(all=True, filters=filters)
    for container in found:
        _remove(container)
    return len(found)


def run_captured(
    client: docker.DockerClient,
    image: str,
    argv: Sequence[str],
    *,
    options: ContainerOptions,
    timeout_s: float = 300.0,
) -> tuple[int, str, str]:
    """Run `argv` in `image` to completion: (exit code, stdout, stderr). Always removed."""
    container = client.containers.create(image, list(argv), **options.create_kwargs())
    try:
        start_container(container, options)
        code = int(container.wait(timeout=timeout_s)["StatusCode"])
        out = container.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
        err = container.logs(stdout=False, stderr=True).decode("utf-8", errors="replace")
        return code, out, err
    finally:
        _remove(container)


@dataclass(frozen=True)
class ContainerTrial:
    """A `TrialLauncher`: one trial in a fresh container of `image`, removed afterwards.

    `mount`: the host checkout (`cwd`) is mounted read-only at `/bisector/checkout`; False
    when the image holds the checkout already (the docker builder's code layer).
    `name`: the container's name, so another process can remove it (`docker rm -f NAME`)
    when this one dies mid-trial (the ray executor's watchdog); None: docker picks one.
    """

    client: docker.DockerClient = field(compare=False, repr=False)
    image: str
    options: ContainerOptions
    mount: bool = True
    name: str | None = None

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout_s: float,
        stdout_path: Path,
        stderr_path: Path,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> TrialResult:
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        log.debug("container trial start", image=self.image, argv=list(argv), env_keys=sorted(env))
        start = time.monotonic()
        timed_out = False
        try:
            volumes = {str(cwd): {"bind": CONTAINER_CHECKOUT, "mode": "ro"}} if self.mount else {}
            container = self.client.containers.create(
                self.image,
                list(argv),
                working_dir=CONTAINER_CHECKOUT,
                environment=dict(env),
                volumes=volumes,
                name=self.name,
                **self.options.create_kwargs(),
            )
        except (APIError, requests.RequestException) as exc:
            stderr_path.write_text(
                f"bisector: cannot create the container: {exc}\n", encoding="utf-8"
            )
            stdout_path.write_bytes(b"")
            return TrialResult.failed_to_launch(
                time.monotonic() - start,
                stdout_path,
                stderr_path,
                f"cannot create the container: {exc}",
            )
        try:
            start_container(container, self.options)
            try:
                code: int | None = int(container.wait(timeout=timeout_s)["StatusCode"])
            except requests.RequestException:  # the wait's read timed out
                timed_out, code = True, None
                container.stop(timeout=max(1, math.ceil(grace_s)))
            stdout_path.write_bytes(container.logs(stdout=True, stderr=False))
            stderr_path.write_bytes(container.logs(stdout=False, stderr=True))
        except (APIError, requests.RequestException) as exc:
            with stderr_path.open("a", encoding="utf-8") as err:
                err.write(f"\nbisector: docker error during the trial: {exc}\n")
            if not stdout_path.exists():
                stdout_path.write_bytes(b"")
            return TrialResult.failed_to_launch(
                time.monotonic() - start,
                stdout_path,
                stderr_path,
                f"docker error: {_first_line(str(exc))}",
            )
        finally:
            _remove(container)  # always: success, failure, timeout, Ctrl-C
        return classify(
            code,
            timed_out=timed_out,
            timeout_s=timeout_s,
            duration_s=time.monotonic() - start,
            stdout_path=stdout_path,
            stderr_path=stderr_path,
        )
