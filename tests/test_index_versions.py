"""Versions for version bisection from PEP 503 simple indexes: file:// and a real local http.server."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bisector.config import Config
from bisector.isolate.index_versions import index_versions, versions_in_page
from bisector.isolate.run import available_versions, isolate_files
from bisector.testing.sample import SampleRepo
from bisector.testing.wheels import make_wheel, simple_index

from .http_support import QuietHandler, dribble, files_behind_basic_auth, serving


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """Serve a folder over http on 127.0.0.1 from a real http.server thread."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _fastpad(folder: Path) -> Path:
    folder.mkdir()
    for v in ("1.0.0", "1.1.0", "1.2.0rc1", "1.2.0", "1.3.0"):
        make_wheel(folder, "fastpad", v, {"fastpad/__init__.py": f"V = {v!r}\n"}, [])
    return folder


def test_project_page_links_give_versions_without_yanked_files() -> None:
    """Anchors to wheels and sdists of the package count; yanked and other packages do not."""
    page = (
        '<a href="f/fastpad-1.0.0-py3-none-any.whl#sha256=00">x</a>'
        '<a href="f/fastpad-1.1.0.tar.gz" data-yanked="broken">y</a>'
        '<a href="f/other-9.0-py3-none-any.whl">z</a><a href="f/fastpad-1.2.0.zip">w</a>'
    )
    assert versions_in_page(page, "fastpad") == ["1.0.0", "1.2.0"]


def test_file_and_http_indexes_list_the_same_versions(
    tmp_path: Path, serve: Callable[[Path], str]
) -> None:
    """A file:// index and the same folder over http list all but the yanked version."""
    simple = simple_index(
        tmp_path / "idx", _fastpad(tmp_path / "wheels"), yanked=frozenset({"1.1.0"})
    )
    over_http = serve(tmp_path / "idx") + "/simple/"
    want = ["1.0.0", "1.2.0", "1.2.0rc1", "1.3.0"]
    assert index_versions([simple.as_uri()], "FastPad") == want
    assert index_versions([over_http], "fastpad") == want
    assert (
        index_versions(["http://127.0.0.1:9/simple/", simple.as_uri()], "fastpad", timeout_s=2)
        == want
    )


def test_available_versions_respects_no_index(tmp_path: Path) -> None:
    """Configured indexes are read unless no_index; find-links folders always are."""
    simple = simple_index(tmp_path / "idx", _fastpad(tmp_path / "wheels"))
    base = {"benchmark": {"command": ["true"]}, "metrics": {"m": {"direction": "lower"}}}
    on = Config.model_validate({**base, "environment": {"extra_index_urls": [simple.as_uri()]}})
    off = Config.model_validate(
        {**base, "environment": {"index_url": simple.as_uri(), "no_index": True}}
    )
    assert available_versions(on, tmp_path)("fastpad") == [
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "1.2.0rc1",
        "1.3.0",
    ]
    assert available_versions(off, tmp_path)("fastpad") == []


@pytest.mark.slow
def test_standalone_deps_bisects_versions_served_by_an_http_index(
    make_sample: Callable[..., SampleRepo],
    tmp_path: Path,
    serve: Callable[[Path], str],
) -> None:
    """Installing from an http simple index, fastpad 1.0.0 -> 1.3.0 narrows to 1.2.0, skipping yanked 1.1.0."""
    repo = make_sample(
        kind="code", n_commits=8, culprit=5, builder="venv", repeats=(3, 8), noise=0.03
    )
    assert repo.wheelhouse is not None
    url = serve(tmp_path) + "/idx/simple/"
    simple_index(tmp_path / "idx", repo.wheelhouse, yanked=frozenset({"1.1.0"}))
    cfg = repo.path / "bisector.yaml"
    text = cfg.read_text()
    start = text.index("  find_links:")
    cfg.write_text(text[:start] + f"  index_url: {url!r}\n" + text[text.index("snapshots:") :])
    good = {"requirements.txt": b"fastpad==1.0.0\nservekit==1.0.0\ntokenkit==2.2.0\n"}
    bad = {"requirements.txt": b"fastpad==1.3.0\nservekit==1.0.0\ntokenkit==2.2.0\n"}
    doc = isolate_files(repo=repo.path, config=None, metric=None, good=good, bad=bad, what="deps")
    assert doc["status"] == "found"
    (dep,) = doc["culprit"]["dependencies"]
    assert (dep["name"], dep["from"], dep["to"], dep["first_bad_version"]) == (
        "fastpad",
        "1.0.0",
        "1.3.0",
        "1.2.0",
    )
    assert doc["isolation"]["versions_tried"] == {"fastpad": ["1.0.0", "1.2.0", "1.3.0"]}


def test_an_index_behind_basic_auth_is_read_with_the_url_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`user:password@` in an index URL is sent as basic auth (urllib could not open such a
    URL: no versions); a wrong password gives no versions and a warning that hides it."""
    simple_index(tmp_path / "idx", _fastpad(tmp_path / "wheels"), yanked=frozenset({"1.1.0"}))
    with files_behind_basic_auth(tmp_path / "idx", "bob", "pw-Zq81vX") as (base, seen):
        assert index_versions([base + "/simple/"], "fastpad") == [
            "1.0.0",
            "1.2.0",
            "1.2.0rc1",
            "1.3.0",
        ]
        assert seen == ["Basic Ym9iOnB3LVpxODF2WA=="]  # bob:pw-Zq81vX, sent at once
        wrong = base.replace("pw-Zq81vX", "wrong-Pw7")
        capsys.readouterr()
        assert index_versions([wrong + "/simple/"], "fastpad") == []
    err = capsys.readouterr().err
    assert "cannot list versions on the index" in err and "HTTP Error 401" in err
    assert "index=http://***@127.0.0.1:" in err and "wrong-Pw7" not in err


def test_an_index_that_answers_a_byte_at_a_time_is_given_up_within_the_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The timeout bounds the whole lookup, not each read: an index that redirects to a
    page whose head comes one byte every 0.2 s (about 8 s in all) is given up after 1 s,
    with no versions and a warning that hides the password; the credentials went to the
    index, not to where it redirected."""
    page = simple_index(tmp_path / "idx", _fastpad(tmp_path / "wheels")) / "fastpad/index.html"
    body = page.read_bytes()
    stop, seen = threading.Event(), []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path.startswith("/simple/"):
                self.send_response(302)
                self.send_header("Location", "/moved/fastpad/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            dribble(self.wfile, head, stop, 0.2)
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with serving(server, stop):
        url = f"http://bob:pw-Zq81vX@127.0.0.1:{server.server_address[1]}/simple/"
        start = time.monotonic()
        assert index_versions([url], "fastpad", timeout_s=1.0) == []
        took = time.monotonic() - start
    assert took < 3.0, took
    assert seen == [("/simple/fastpad/", "Basic Ym9iOnB3LVpxODF2WA=="), ("/moved/fastpad/", None)]
    err = capsys.readouterr().err
    assert "cannot list versions on the index" in err and "no whole answer within 1s" in err
    assert "index=http://***@127.0.0.1:" in err and "pw-Zq81vX" not in err
