"""uv invocation for the venv builder: finding uv, index options, logged commands.

Every command is an argv (no shell). Its output goes to the build log; the command line is
logged with credentials in URLs hidden (`https://user:token@host` -> `https://***@host`).
uv runs with `--no-config`: the index options of bisector.yaml are the whole truth (they
are part of the environment key), so a `uv.toml` lying around cannot change what a key
means. Credentials can still come from the URL, netrc or keyring. The index URLs reach uv
through its environment, never its command line (see `IndexOptions.env`).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Literal

from bisector.config import Environment
from bisector.errors import BuildError

_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def find_uv() -> str:
    """The uv binary of the `uv` package (a dependency), else the one on PATH."""
    try:
        from uv import find_uv_bin  # noqa: PLC0415 (optional: PATH is the fallback)

        found: str = find_uv_bin()
        return found
    except (ImportError, FileNotFoundError):
        pass
    on_path = shutil.which("uv")
    if on_path is None:
        raise BuildError("uv is not installed", hint="pip install uv (the venv builder needs it)")
    return on_path


def scrub(text: str) -> str:
    return _CREDENTIALS.sub(r"\1***@", text)


@dataclass(frozen=True)
class IndexOptions:
    """Where packages come from; part of the environment key."""

    find_links: tuple[str, ...] = ()  # absolute folders (or URLs)
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    no_index: bool = False

    @classmethod
    def from_config(cls, environment: Environment, repo_root: Path) -> IndexOptions:
        """find_links folders are resolved against the repository root."""
        links = tuple(
            f if "://" in f else str((repo_root / f).resolve()) for f in environment.find_links
        )
        return cls(
            links, environment.index_url, tuple(environment.extra_index_urls), environment.no_index
        )

    def key_material(self) -> dict[str, object]:
        return asdict(self)

    def args(self) -> list[str]:
        """The index options for uv's command line: `--no-index` only (the URLs: `env()`)."""
        return ["--no-index"] if self.no_index else []

    def env(self) -> dict[str, str]:
        """The find-links and index URLs as uv's environment variables.

        Not on uv's command line: a URL may hold credentials, and every local user can read
        a process's command line (`ps`, `/proc/<pid>/cmdline`), only its owner its
        environment. uv splits `UV_FIND_LINKS` at `,` and `UV_EXTRA_INDEX_URL` at spaces,
        as it splits the values of `--find-links` and `--extra-index-url`, so it reads the
        same options as from the command line; and, as a command-line option did, each
        variable set here replaces the user's own of that name.
        """
        env: dict[str, str] = {}
        if self.find_links:
            env["UV_FIND_LINKS"] = ",".join(self.find_links)
        if self.index_url:
            env["UV_INDEX_URL"] = self.index_url
        if self.extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(self.extra_index_urls)
        return env


def split_install(argv: Sequence[str]) -> tuple[Literal["pip", "python", "other"], list[str]]:
    """What an `install` argv runs: pip (its arguments), python (its arguments), or other.

    Both the venv and the docker builder bind `pip` and `python` to the environment's own.
    """
    args = list(argv)
    if args[:1] in (["pip"], ["pip3"]):
        return "pip", args[1:]
    if args[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]):
        return "pip", args[3:]
    if args[:1] in (["python"], ["python3"]):
        return "python", args[1:]
    return "other", args


def translate_install(
    argv: Sequence[str], *, uv: str, python: Path, index: IndexOptions
) -> tuple[list[str], dict[str, str]]:
    """The configured `install` argv, bound to the environment's interpreter, and the
    variables it needs on top of the environment's.

    `pip ...` and `python -m pip ...` become `uv pip ... --python <env>`; `pip install`
    with the index options, so build dependencies resolve like the environment did. A
    leading `python` becomes the env's interpreter; anything else runs as written (with the
    env's PATH, without the index variables: they are uv's, for no other program).
    """
    kind, rest = split_install(argv)
    if kind == "python":
        return [str(python), *rest], {}
    if kind == "other":
        return rest, {}
    translated = [uv, "pip", *rest, "--python", str(python)]
    if rest[:1] == ["install"]:
        return translated + index.args(), index.env()
    return translated, {}


def run_logged(
    argv: Sequence[str],
    *,
    log: IO[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout_s: float,
    log_path: Path,
    what: str,
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Run `argv`, append its output to `log`; stdout returned. Failure -> BuildError.

    `extra_env` (the index variables) is set on top of `env` and logged, scrubbed, before
    the command, as a shell would show it.
    """
    extra = dict(extra_env or {})
    shown = [f"{name}={shlex.quote(value)}" for name, value in sorted(extra.items())]
    log.write(f"$ {scrub(' '.join([*shown, *argv]))}\n")
    log.flush()
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        log.write(f"timed out after {timeout_s:g}s\n")
        raise BuildError(f"{what} timed out after {timeout_s:g}s", log_path=log_path) from exc
    except OSError as exc:
        log.write(f"cannot start: {exc}\n")
        raise BuildError(
            f"{what}: cannot start {argv[0]}: {exc.strerror}", log_path=log_path
        ) from exc
    log.write(scrub(proc.stdout))
    log.write(scrub(proc.stderr))
    log.write(f"[exit {proc.returncode}]\n")
    log.flush()
    if proc.returncode != 0:
        lines = [li for li in proc.stderr.strip().splitlines() if li.strip()]
        detail = scrub(lines[-1].strip()) if lines else f"exit {proc.returncode}"
        raise BuildError(
            f"{what} failed: {detail}", hint=f"see the build log {log_path}", log_path=log_path
        )
    return proc.stdout
