"""Docker for tests: a reachable daemon and the local base image, else a clean skip.

The base image is made by `tests/docker/make_base_image.sh` (`.ci/run` calls it); its
name can be overridden with BISECTOR_TEST_BASE_IMAGE.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from bisector.errors import DockerError

BASE_IMAGE = os.environ.get("BISECTOR_TEST_BASE_IMAGE", "bisector-test-base:bookworm")
_state: dict[str, Any] = {}


def docker_or_skip() -> Any:
    """A docker client, or skip the test (no SDK, no daemon, or no base image)."""
    if "client" not in _state:
        _state["client"], _state["why"] = None, ""
        try:
            from docker.errors import ImageNotFound

            from bisector.builders.docker_run import connect
        except ImportError:
            _state["why"] = "the docker SDK is not installed"
        else:
            try:
                client = connect()
            except DockerError as exc:
                _state["why"] = f"no Docker daemon: {exc}"
            else:
                try:
                    client.images.get(BASE_IMAGE)
                except ImageNotFound:
                    _state["why"] = (
                        f"base image {BASE_IMAGE} missing (run tests/docker/make_base_image.sh)"
                    )
                else:
                    _state["client"] = client
    if _state["client"] is None:
        pytest.skip(_state["why"])
    return _state["client"]


def bisector_containers() -> list[str]:
    """Ids of every container labelled `bisector` (running or not)."""
    client = docker_or_skip()
    return [c.id for c in client.containers.list(all=True, filters={"label": "bisector"})]


def remove_images_since(started: float) -> None:
    """Remove `bisector`-labelled images created after `started` (if docker was used at all)."""
    client = _state.get("client")
    if client is None:
        return
    from datetime import datetime

    for image in client.images.list(all=True, filters={"label": "bisector"}):
        created = datetime.fromisoformat(
            str(image.attrs["Created"]).split(".")[0].rstrip("Z") + "+00:00"
        )
        if created.timestamp() >= started - 1:
            try:
                client.images.remove(image.id, force=True)
            except Exception:
                pass
