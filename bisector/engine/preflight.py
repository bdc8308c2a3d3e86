"""Checks of a run's setup made before anything is measured or written.

The `local` builder runs every commit with the current interpreter's packages. When the
endpoints pin different versions, or this interpreter has other versions than the pins,
a dependency regression cannot show with it: the run would end "not reproduced" (or name
a code commit) without saying why. So the run says so first, with the builder that would
measure the pins (`venv`). Pins are read from git objects at each endpoint, the way
snapshots read them (`environment.requirements` and the dependency files at the root).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bisector.builders.local import current_packages
from bisector.builders.registry import check_builder_settings
from bisector.config import Config
from bisector.core.types import Commit
from bisector.engine.benchfiles import check_benchmark_files, endpoint_label
from bisector.engine.reference import check_reference
from bisector.errors import ConfigError, RollbackError
from bisector.gitrepo import GitRepo
from rollback.entry import resolve_target
from snapshots.deps import auto_detect, read_declared
from snapshots.manifest import DeclaredDependency

__all__ = ["check_run_rollback", "local_pin_warnings", "pins_at", "preflight"]

SHOWN = 4  # packages named in a warning; the rest are counted


def preflight(
    git: GitRepo,
    cfg: Config,
    builder_name: str,
    good: Commit,
    bad: Commit,
    *,
    rollback_in: Path | None = None,
    refs: tuple[str, str] | None = None,
) -> list[str]:
    """Warnings to say before measuring (`warning:` lines).

    `rollback_in`: the repository whose `rollback.target` `run --rollback` writes once
    the run is `found`; the target is checked now, not after the whole bisection.
    `refs`: the endpoints as the user named them, for messages.

    :raises BisectorError: a file of the working tree the benchmark names is missing at
        an endpoint, where every builder runs it in the commit's checkout
        (`check_benchmark_files`); a setting this builder cannot honour
        (`check_reference`, `check_builder_settings`); `run --rollback` without a target it may write
        (`check_run_rollback`).
    """
    good_ref, bad_ref = refs if refs is not None else (good.short, bad.short)
    endpoints = [
        (endpoint_label("good", good_ref, good), good),
        (endpoint_label("bad", bad_ref, bad), bad),
    ]
    check_benchmark_files(git, cfg.benchmark.command, endpoints)
    check_reference(cfg.benchmark.reference, builder_name)
    check_builder_settings(builder_name, cfg.environment)
    if rollback_in is not None:
        check_run_rollback(rollback_in, cfg)
    if builder_name != "local":
        return []
    installed = {str(canonicalize_name(name)): version for name, version in current_packages()}
    return local_pin_warnings(pins_at(git, cfg, good), pins_at(git, cfg, bad), installed)


def check_run_rollback(repo: Path, cfg: Config) -> None:
    """`run --rollback` rolls `rollback.target` back, and `run` has no `--target`.

    :raises ConfigError: `rollback.target` is not set.
    :raises RollbackError: it names a folder no rollback may write (`resolve_target`).
    """
    try:
        target = resolve_target(repo, cfg, None)
    except RollbackError as exc:  # its hint names `bisector rollback`'s --target too
        raise RollbackError(
            exc.message,
            hint="point rollback.target in bisector.yaml at the live config folder the "
            "service reads, outside the repository and the bisector store",
        ) from None
    if target is None:
        raise ConfigError(
            "run --rollback needs rollback.target, which the config does not set",
            hint="set rollback.target in bisector.yaml to the folder whose configs are rolled "
            "back, or run without --rollback and roll back afterwards with "
            "`bisector rollback --to REF --target DIR`",
        )


def _applies(dep: DeclaredDependency) -> bool:
    if dep.marker is None:
        return True
    try:
        return Marker(dep.marker).evaluate()
    except InvalidMarker:
        return True


def pins_at(git: GitRepo, cfg: Config, commit: Commit) -> dict[str, str]:
    """Exact pins (`==`, lock entries) at `commit` that apply to this interpreter."""
    paths = list(cfg.environment.requirements) + auto_detect(git.list_files(commit.sha))
    declared = read_declared(lambda p: git.read_file(commit.sha, p), paths)
    pins: dict[str, str] = {}
    for dep in declared.dependencies:
        if dep.version is not None and _applies(dep):
            pins.setdefault(dep.name, dep.version)
    return pins


def _same(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _listed(items: Iterable[str]) -> str:
    items = list(items)
    more = f", and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def local_pin_warnings(
    good: Mapping[str, str], bad: Mapping[str, str], installed: Mapping[str, str]
) -> list[str]:
    """What the `local` builder cannot measure, given each endpoint's pins and the
    installed versions (names canonical)."""
    warnings: list[str] = []
    moved = [
        f"{name} {good.get(name, '(none)')} -> {bad.get(name, '(none)')}"
        for name in sorted(set(good) | set(bad))
        if not _same(good.get(name, ""), bad.get(name, ""))
    ]
    if moved:
        warnings.append(
            f"the endpoints pin different versions ({_listed(moved)}), but the local builder "
            "runs every commit with this interpreter's packages, so a dependency regression "
            "cannot show; use --builder venv to measure each commit's pins"
        )
    differ = []
    for name in sorted(set(good) & set(bad)):
        pin = bad[name]
        if not _same(good[name], pin):
            continue  # said above
        have = installed.get(name)
        if have is None or not _same(have, pin):
            differ.append(
                f"{name} pinned {pin}, " + (f"installed {have}" if have else "not installed")
            )
    if differ:
        warnings.append(
            f"the installed packages differ from the pins ({_listed(differ)}); the local "
            "builder measures the installed ones; use --builder venv to measure the pins"
        )
    return warnings
