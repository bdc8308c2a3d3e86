"""uv invocation for the venv builder: finding uv, index options, logged commands.

Every command is an argv (no shell). Its output goes to the build log; the command line is
logged with credentials in URLs hidden (`https://user:token@host` -> `https://***@host`).
uv runs with `--no-config`: the index options of bisector.yaml are the whole truth (they
are part of the environment key), so a `uv.toml` lying around cannot change what a key
means. Credentials can still come from the URL, netrc or keyring.
"""

from __future__ import annotations

import re
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
        args: list[str] = []
        for folder in self.find_links:
            args += ["--find-links", folder]
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        if self.no_index:
            args.append("--no-index")
        return args


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
    argv: Sequence[str], *, uv: str, python: Path, extra: Sequence[str]
) -> list[str]:
    """The configured `install` argv, bound to the environment's interpreter.

    `pip ...` and `python -m pip ...` become `uv pip ... --python <env>` (with the index
    options, so build dependencies resolve like the environment did); a leading `python`
    becomes the env's interpreter; anything else runs as written (with the env's PATH).
    """
    kind, rest = split_install(argv)
    if kind == "python":
        return [str(python), *rest]
    if kind == "other":
        return rest
    translated = [uv, "pip", *rest, "--python", str(python)]
    if rest[:1] == ["install"]:
        translated += list(extra)
    return translated


def run_logged(
    argv: Sequence[str],
    *,
    log: IO[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout_s: float,
    log_path: Path,
    what: str,
) -> str:
    """Run `argv`, append its output to `log`; stdout returned. Failure -> BuildError."""
    log.write(f"$ {scrub(' '.join(argv))}\n")
    log.flush()
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env),
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
