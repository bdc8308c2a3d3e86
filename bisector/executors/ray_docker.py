"""The docker builder's trials on a Ray worker: a container named after the trial.

On a worker the docker builder is the local one (`ray_task._builder`: the node's own
daemon, `cache_dir/store` as its store), so images are built once per key per node (the
builder's per-key file lock keeps two worker processes of one node from building a key
twice) and trials run in containers exactly as with the local executor. What differs is
how a trial ends when its worker does not: a forced `ray.cancel`, or a driver that died,
kills the worker process, and the container would run on. So each trial's container is
named `bisector-trial-<token>` (the token of the trial's watchdog), and both the
watchdog (`watchdog.py`, when the worker is gone) and the worker itself (after the trial,
however it ended: an interrupting `ray.cancel` raises in the middle of it) remove it by
that name, as `docker rm -f NAME` would.
"""

from __future__ import annotations

import dataclasses

import requests
from docker.errors import APIError, DockerException, NotFound

from bisector.builders.docker_run import ContainerTrial, connect
from bisector.errors import DockerError
from bisector.ports import BuiltEnv, TrialLauncher

PREFIX = "bisector-trial-"


def container_name(token: str) -> str:
    return PREFIX + token


def named_launcher(built: BuiltEnv, token: str) -> TrialLauncher | None:
    """`built`'s launcher, its container named after the trial's `token`."""
    if isinstance(built.launcher, ContainerTrial):
        return dataclasses.replace(built.launcher, name=container_name(token))
    return built.launcher


def remove_container(name: str) -> bool:
    """Remove the container `name`, running or not (`docker rm -f`); True when it existed."""
    try:
        client = connect()
    except DockerError:
        return False
    try:
        client.api.remove_container(name, force=True)
    except NotFound:
        return False
    except (APIError, DockerException, requests.RequestException):
        return False  # being removed already (409), or the daemon is gone
    finally:
        client.close()
    return True
