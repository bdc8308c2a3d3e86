"""Sharing the docker builder's images between machines: `environment.docker.registry`.

A machine that lacks `bisector-env:<key>` pulls `<registry>/bisector-env:<key>` first; one
that had to build it pushes it there, so the next node of a Ray cluster pulls instead of
building. Both are best effort: a failed pull means building here, a failed push is a
warning (the trial runs on the image built here). The registry's tag is dropped from the
daemon after each pull or push: the image stays as `bisector-env:<key>`, which the LRU
evicts like any other. Only these images travel: the base image is never pulled.

Credentials are docker's own (`docker login` on each node; the daemon's client reads
them): the config holds none (`config_values.check_registry` refuses a user or password),
and registry errors are scrubbed before they reach a log.

Every image the docker builder obtains is recorded, built or pulled, in
`<store>/logs/build/images.jsonl` (`record`): which machine built what, and when.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO

import docker
import requests
from docker.errors import APIError, DockerException, NotFound

from bisector.builders.uvtool import scrub
from bisector.log import get_logger

log = get_logger(__name__)

RECORD = "images.jsonl"


def _split(reference: str) -> tuple[str, str]:
    """`repo[:port]/path:tag` as (repository, tag)."""
    repository, _, tag = reference.rpartition(":")
    return repository, tag


def _short(exc: BaseException) -> str:
    # The daemon's own words ("manifest unknown"), not the SDK's request URL around them.
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return scrub(text.splitlines()[0] if text else repr(exc))[:300]


class Registry:
    """Pull and push `bisector-env:<key>` images under one registry prefix."""

    def __init__(self, client: docker.DockerClient, prefix: str) -> None:
        self._client = client
        self.prefix = prefix

    def remote(self, tag: str) -> str:
        return f"{self.prefix}/{tag}"

    def _untag(self, remote: str) -> None:
        # Another tag (`bisector-env:<key>`) holds the image: this removes the name only.
        try:
            self._client.images.remove(remote, noprune=True)
        except (NotFound, APIError, requests.RequestException) as exc:
            log.debug("could not untag", image=remote, error=_short(exc))

    def pull(self, tag: str, out: IO[str]) -> bool:
        """`tag` from the registry, tagged locally; False when it is not there (or unreachable)."""
        remote = self.remote(tag)
        repository, name = _split(remote)
        started = time.monotonic()
        try:
            image = self._client.images.pull(repository, tag=name)
            image.tag(*_split(tag))
        except (APIError, DockerException, requests.RequestException) as exc:
            out.write(f"# pull {remote}: not pulled ({_short(exc)}); building it here\n")
            out.flush()
            log.info("image not in the registry; building it", image=remote)
            return False
        self._untag(remote)
        out.write(f"# pulled {remote}\n")
        out.flush()
        log.info("image pulled", image=remote, seconds=round(time.monotonic() - started, 2))
        return True

    def push(self, tag: str, out: IO[str]) -> bool:
        """Push the local `tag`; a failure is a warning (the image is still used here)."""
        remote = self.remote(tag)
        repository, name = _split(remote)
        error: str | None = None
        try:
            self._client.images.get(tag).tag(repository, tag=name)
            for chunk in self._client.api.push(repository, tag=name, stream=True, decode=True):
                if isinstance(chunk, dict) and "error" in chunk:
                    error = scrub(str(chunk["error"]).strip())[:300]
        except (APIError, DockerException, requests.RequestException) as exc:
            error = _short(exc)
        self._untag(remote)
        if error is not None:
            out.write(f"# push {remote} failed: {error}\n")
            log.warning("could not push image to the registry", image=remote, error=error)
            return False
        out.write(f"# pushed {remote}\n")
        log.info("image pushed", image=remote)
        return True


def record(logs: Path, *, image: str, key: str, how: str, pushed: bool) -> None:
    """Append one line to `<logs>/images.jsonl` (one `write` of a short line: whole even
    when several processes of one machine append at once)."""
    line = json.dumps(
        {"image": image, "key": key, "how": how, "pushed": pushed, "at": time.time()},
        sort_keys=True,
    )
    logs.mkdir(parents=True, exist_ok=True)
    fd = os.open(logs / RECORD, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)
