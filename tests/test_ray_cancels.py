"""`cancels.Cancelling` never hands Ray a task that has already ended: `ray.cancel`
racing a task's end can kill the driver (ray-project/ray#54846). Real tasks on the
session's real Ray head; `ray.cancel` is only watched (the real one runs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bisector.testing.raycluster import RayHead

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray]


@pytest.fixture
def cancels(ray_head: RayHead, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The (ref, force) of every `ray.cancel` while connected to the shared head."""
    from bisector.executors.ray_setup import connect

    owns = connect(ray_head.address)
    seen: list[Any] = []
    real = ray.cancel

    def watched(ref: Any, *, force: bool = False, **kwargs: Any) -> Any:
        seen.append((ref, force))
        return real(ref, force=force, **kwargs)

    monkeypatch.setattr(ray, "cancel", watched)
    try:
        yield seen
    finally:
        if owns:
            ray.shutdown()


def test_ended_trials_are_returned_not_cancelled(cancels: list[Any]) -> None:
    from bisector.executors.cancels import Cancelling

    # Nested: pickled by value (the workers cannot import the tests package).
    def quick() -> int:
        return 1

    def slow() -> None:
        time.sleep(60)

    done = ray.remote(quick).options(num_cpus=1).remote()
    running = ray.remote(slow).options(num_cpus=1).remote()
    assert ray.get(done, timeout=60) == 1
    cancelling = Cancelling(grace_s=60)

    assert cancelling.cancel([done, running]) == [done]
    assert cancels == [(running, False)]
    assert cancelling.refs() == [running]

    # Interrupted, it ends; the run's end then forces nothing that has ended.
    ended, _ = ray.wait([running], timeout=60)
    assert ended == [running]
    cancelling.force_all()
    assert cancels == [(running, False)]
