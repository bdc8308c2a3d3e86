"""Released versions of a package on a PEP 503 simple index (file:// or http(s)://).

Version bisection needs the versions between a package's old and new pin. They come from
find-links folders (`isolate_states.local_versions`) and, unless `no_index`, from the
configured `index_url` and `extra_index_urls`: the project page `<index>/<name>/` is read
(a `file://` index from disk, `<name>/index.html`; http(s) within a timeout that bounds
the whole request, `plumbing.httpbound`, so an index that answers a byte at a time cannot
stall isolation; credentials in the URL sent as HTTP basic auth) and its links' file
names give the versions. Yanked files (`data-yanked`) are left out; pre-releases are left
out later by `changes.versions_between` (the endpoints are the pins themselves, so they
never need to be listed). An index that cannot be read in time gives no versions and a
warning naming it, its credentials as `***`: bisection then narrows over fewer versions,
it never guesses.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

from bisector.log import get_logger
from bisector.plumbing.httpbound import ExchangeTimeout, exchange, split_userinfo
from bisector.plumbing.redact import scrub_text

__all__ = ["index_versions", "versions_in_page"]

log = get_logger(__name__)
#: A project page larger than this is not read (PyPI's largest are a few MiB).
MAX_PAGE = 64 * 2**20
_SDIST = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)\.(?:tar\.gz|zip|tar\.bz2)$")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def file_version(filename: str, name: str) -> str | None:
    """The version in a wheel or sdist file name of `name`, else None."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) >= 5 and _normal(parts[0]) == _normal(name):
            return parts[1]
    elif (m := _SDIST.match(filename)) and _normal(m.group("name")) == _normal(name):
        return m.group("version")
    return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, bool]] = []  # (href, yanked)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            found = dict(attrs)
            if found.get("href"):
                self.links.append((str(found["href"]), "data-yanked" in found))


def versions_in_page(html: str, name: str) -> list[str]:
    """Versions of `name` linked from a simple index project page, yanked files left out."""
    parser = _Links()
    parser.feed(html)
    found: set[str] = set()
    for href, yanked in parser.links:
        filename = urllib.parse.unquote(urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1])
        version = file_version(filename, name)
        if version is not None and not yanked:
            found.add(version)
    return sorted(found)


def _page(index_url: str, name: str, timeout_s: float) -> str:
    base = index_url.rstrip("/") + "/" + _normal(name) + "/"
    parts = urllib.parse.urlsplit(base)
    if parts.scheme == "file":
        folder = Path(urllib.request.url2pathname(parts.path))
        return (folder / "index.html").read_text(encoding="utf-8")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported index URL scheme {parts.scheme!r}")
    # urllib cannot open a URL with `user:password@`: they go in an Authorization header,
    # one a redirect does not carry to another host.
    url, authorization = split_userinfo(base)
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    if authorization is not None:
        request.add_unredirected_header("Authorization", authorization)
    try:  # bounds the whole lookup, also against an answer sent byte by byte
        answer = exchange(request, timeout_s, follow_redirects=True, max_body=MAX_PAGE + 1)
    except ExchangeTimeout:
        raise TimeoutError(f"no whole answer within {timeout_s:g}s") from None
    if not 200 <= answer.status < 300:
        raise OSError(f"HTTP Error {answer.status}")
    if len(answer.body) > MAX_PAGE:
        raise ValueError(f"the project page is larger than {MAX_PAGE // 2**20} MiB")
    # The versions are read from file names in links, ASCII whatever the page's charset.
    return answer.body.decode("utf-8", errors="replace")


def index_versions(index_urls: Iterable[str], name: str, *, timeout_s: float = 10.0) -> list[str]:
    """Versions of `name` on the simple indexes (unreadable ones are skipped with a warning)."""
    found: set[str] = set()
    for url in index_urls:
        try:
            found.update(versions_in_page(_page(url, name, timeout_s), name))
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.warning(
                "cannot list versions on the index",
                index=scrub_text(url),
                package=name,
                error=scrub_text(str(exc)),
            )
    return sorted(found)
