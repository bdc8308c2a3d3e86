"""Helpers of the daemon tests: a webhook receiver on 127.0.0.1 and a released sample repo."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from bisector.testing import gitutil
from bisector.testing.sample import SampleRepo, SampleSpec, build_sample_repo

RELEASES = ("v2.3.0", "v2.3.1", "v2.4.0")


class Webhook:
    """A real HTTP server that records the JSON bodies POSTed to it, and their headers.

    While `refuse` is set it answers 500 instead (a receiver that is up but failing) and
    records the bodies it refused in `refused`, not in `bodies`; so it does for the next
    `refuse_next` bodies (then it takes them: a receiver back in the middle of a cycle)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refused: list[dict[str, Any]] = []
        self.refuse = False
        self.refuse_next = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                refuse, outer.refuse_next = (
                    outer.refuse or outer.refuse_next > 0,
                    max(0, outer.refuse_next - 1),
                )
                if refuse:
                    outer.refused.append(body)
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.headers.append(dict(self.headers))
                outer.bodies.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: object) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/SECRET"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def released_repo(
    path: Path,
    *,
    webhook_url: str | None,
    policy: str = "report",
    schedule: str = "0 2 * * *",
    second_step: int = 0,
) -> SampleRepo:
    """v2.3.0 and v2.3.1 fine; v2.4.0 (the branch head) carries the planted code culprit
    (commit 8 of 10; with `second_step`, a second regression step at that commit).

    The benchmark's noise is seeded (a counter file beside the repository): unseeded, about
    1 cycle in 100 over the fine range v2.3.0..v2.3.1 ends inconclusive (a difference that
    looked promising at 3 + 3 processes and was never ruled out; `null:process-offsets` in
    bench/RESULTS.md), which these tests do not exercise."""
    daemon = f"daemon:\n  schedule: {schedule!r}\n  metrics_port: 0\n  policy: {policy}\n"
    if webhook_url:
        daemon += f"  alerts: [{{webhook: {webhook_url!r}, retries: 0}}]\n"
    spec = SampleSpec(
        n_commits=10,
        culprit=8,
        repeats=(4, 8),
        releases=RELEASES,
        extra_yaml=daemon,
        seed_file=str(path.parent / f"{path.name}.seed"),
        second_step=second_step,
    )
    return build_sample_repo(path, spec)


def hide_release(repo: SampleRepo, tag: str = "v2.4.0") -> str:
    """Move main back to the release before `tag` and delete the tag; returns its commit."""
    sha = repo.tags[tag]
    gitutil.git(repo.path, "tag", "-d", tag)
    gitutil.git(repo.path, "reset", "-q", "--hard", repo.tags[RELEASES[RELEASES.index(tag) - 1]])
    return sha


def publish_release(repo: SampleRepo, sha: str, tag: str = "v2.4.0") -> None:
    """Fast-forward main to `sha` and tag it: a new release lands."""
    gitutil.git(repo.path, "reset", "-q", "--hard", sha)
    gitutil.tag(repo.path, tag, sha, message=f"release {tag}")
