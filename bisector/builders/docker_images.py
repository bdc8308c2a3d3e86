"""The docker builder's images: their layout, their LRU entries, and building one.

Shared by the dependency layer (`docker_env`) and the code layer (`docker_code`), so both
kinds of image are cached, evicted and built the same way. An image's LRU entry is a
folder under the store (as `EnvCache`'s environments are), complete only while its image
exists on the daemon (and carries the labels the entry was built with); evicting the
entry removes the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from bisector.builders.docker_run import LABEL
from bisector.builders.envcache import EnvCache
from bisector.builders.uvtool import scrub
from bisector.log import get_logger

log = get_logger(__name__)

ENV_REPO = "bisector-env"
CODE_REPO = "bisector-code"
KEY_LABEL = "bisector.key"
ENV_PATH = "/opt/bisector-env"
PYTHON = f"{ENV_PATH}/bin/python"
ENV_SEARCH_PATH = f"{ENV_PATH}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageCache(EnvCache):
    """The LRU of `EnvCache` whose entries are the images `<repo>:<key>`.

    `labels`: labels an image must carry to count as this entry (a code image built with
    another `install` under the same tag is stale, not a hit).
    """

    def __init__(
        self,
        root: Path,
        capacity: int,
        client: docker.DockerClient,
        *,
        repo: str = ENV_REPO,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(root, capacity)
        self._client = client
        self.repo = repo
        self._labels = dict(labels or {})

    def tag(self, key: str) -> str:
        return f"{self.repo}:{key}"

    def is_complete(self, key: str) -> bool:
        if not super().is_complete(key):
            return False
        try:
            image = self._client.images.get(self.tag(key))
        except ImageNotFound:  # pruned behind our back (`docker image prune -a`)
            return False
        have = image.labels or {}
        return all(have.get(k) == v for k, v in self._labels.items())

    def remove_folder(self, key: str) -> None:
        super().remove_folder(key)
        try:
            # By tag: an env image that code images were built FROM is only untagged (its
            # layers stay while those children exist), which is what we want.
            self._client.images.remove(self.tag(key), noprune=False)
        except (ImageNotFound, NotFound):
            pass
        except APIError as exc:  # e.g. a container of another process still uses it
            log.warning("could not remove image", image=self.tag(key), error=str(exc))


def stream_build(
    client: docker.DockerClient,
    out: IO[str],
    *,
    tag: str,
    network: str,
    timeout_s: float,
    labels: Mapping[str, str],
    path: Path | None = None,
    fileobj: IO[bytes] | None = None,
    buildargs: Mapping[str, str] | None = None,
) -> str | None:
    """Build `tag` from the folder `path` or the tar `fileobj` (with its Dockerfile),
    streaming the log to `out`; the error message, None on success.

    The base image is never pulled implicitly (`pull=False`): a missing one is reported by
    the caller with a hint, instead of a registry timeout in the middle of a build.
    """
    error: str | None = None
    last_lines: list[str] = []
    context: dict[str, Any] = (
        {"path": str(path)} if path is not None else {"fileobj": fileobj, "custom_context": True}
    )
    try:
        stream = client.api.build(
            **context,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            network_mode=network,
            timeout=int(timeout_s),
            labels=dict(labels),
            buildargs=dict(buildargs or {}),
        )
        for chunk in stream:
            text = scrub(str(chunk.get("stream") or chunk.get("status") or ""))
            if text:
                out.write(text)
                last_lines = (last_lines + [li for li in text.splitlines() if li.strip()])[-20:]
            if "error" in chunk:
                error = scrub(str(chunk["error"]).strip())
        out.flush()
    except (APIError, DockerException, requests.RequestException) as exc:
        error = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    if error is not None:
        detail = [li for li in last_lines if "ERROR" in li or "error" in li.lower()]
        return (detail[-1].strip() if detail else error)[:300]
    return None


@dataclass(frozen=True)
class CachedImage:
    """An image of bisector's, as `bisector cache list` shows it."""

    tag: str
    key: str
    size_bytes: int
    created: str


def list_images(client: docker.DockerClient) -> list[CachedImage]:
    """Every image labelled `bisector=1` on the daemon, newest first."""
    found: list[CachedImage] = []
    for image in client.images.list(filters={"label": f"{LABEL}=1"}):
        tags = [t for t in image.tags if t.startswith((f"{ENV_REPO}:", f"{CODE_REPO}:"))]
        attrs = image.attrs
        key = str((attrs.get("Config") or {}).get("Labels", {}).get(KEY_LABEL, ""))
        found.append(
            CachedImage(
                tags[0] if tags else image.short_id,
                key,
                int(attrs.get("Size", 0)),
                str(attrs.get("Created", "")),
            )
        )
    return sorted(found, key=lambda i: i.created, reverse=True)


def prune_images(
    client: docker.DockerClient, store: Path, keep: int, *, orphans: bool = False
) -> list[str]:
    """Keep the `keep` most recently used images of each kind (dependency, code) of this
    store and remove the rest of its images; with `orphans`, also every `bisector-env` and
    `bisector-code` image no entry of this store knows (left by an interrupted build, or by
    another store). The removed tags."""
    # Code images first: an env image whose children are gone is then really deleted.
    caches = [
        ImageCache(store / "code-images", keep, client, repo=CODE_REPO),
        ImageCache(store / "images", keep, client),
    ]
    removed = [cache.tag(k) for cache in caches for k in cache.evict(in_use=())]
    known = {f"{cache.repo}:{k}" for cache in caches for k in cache.keys()}
    for image in list_images(client) if orphans else []:
        if (
            image.key
            and image.tag not in known
            and image.tag.startswith((f"{ENV_REPO}:", f"{CODE_REPO}:"))
        ):
            try:
                client.images.remove(image.tag)
            except (APIError, NotFound) as exc:
                log.warning("could not remove image", image=image.tag, error=str(exc))
                continue
            removed.append(image.tag)
    return removed
