"""What the CLI commands call: config in, one result out (no printing here).

`rollback_from_config` backs `bisector rollback`; `control_status`, `pause` and `resume`
back the control commands. Each first recovers an interrupted rollback of the
configured target, as the design asks of every command that touches rollback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bisector.config import Config
from bisector.config_values import parse_duration
from bisector.errors import RollbackError
from bisector.log import get_logger
from bisector.store.control import ControlStore, PauseState, journal_path
from rollback.drift import detect_drift
from rollback.journal import RecoveryOutcome
from rollback.layout import Layout, live_state, read_live_record
from rollback.lock import try_lock
from rollback.request import RollbackRequest, RollbackResult
from rollback.service import PausedError, recover_interrupted, roll_back
from rollback.source import resolve_source
from rollback.target import check_target

log = get_logger("bisector.rollback")

ROLLBACK_LOCK_NAME = "bisector.lock"
STORE_LOCK_NAME = ROLLBACK_LOCK_NAME  # its older name


def rollback_lock_path(repo: Path, config: Config) -> Path:
    """The repository's rollback lock: held only while a rollback swaps and checks the
    live set, never for a bisection (that is `bisector.store.runlock`), so an emergency
    rollback never waits behind a daemon cycle."""
    return repo / config.snapshots.store / ROLLBACK_LOCK_NAME


store_lock_path = rollback_lock_path  # its older name


def _target_path(repo: Path, config: Config, target: Path | None) -> Path | None:
    if target is not None:
        return Path(os.path.abspath(target))
    if config.rollback.target is None:
        return None
    configured = Path(config.rollback.target).expanduser()
    return configured if configured.is_absolute() else (repo / configured).absolute()


def resolve_target(repo: Path, config: Config, target: Path | None) -> Path | None:
    """The live path a rollback writes (`--target`, else `rollback.target`), checked:

    :raises RollbackError: it is, or contains, the repository or the store, or it exists
        and is not a folder.
    """
    live = _target_path(repo, config, target)
    if live is not None:
        check_target(live, repo, repo / config.snapshots.store)
    return live


def automatic_rollback(
    repo: Path,
    config: Config,
    to_ref: str,
    control: ControlStore,
    *,
    setting: str,
    instead: str,
    store_lock: Path | None = None,
) -> RollbackResult:
    """A rollback nobody confirms (the daemon's policy, the guard): `rollback.target` to the
    configs of `to_ref`, with the health check, timeout and alert-and-pause of the config.

    `setting` names what asked for it (`daemon.policy`, `guard.on_breach`) and `instead`
    the setting that would not roll back, for the error when no target is configured;
    `store_lock` is taken unless the caller holds it.
    """
    target = resolve_target(repo, config, None)
    if target is None:
        raise RollbackError(
            f"{setting} is rollback but rollback.target is not set",
            hint=f"set rollback.target in bisector.yaml, or {instead}",
        )
    hc = config.rollback.health_check
    request = RollbackRequest(
        target=target,
        config_set=resolve_source(repo, config).config_set(to_ref),
        timeout_s=config.rollback.timeout,
        health_check=tuple(hc) if hc else None,
        health_cwd=repo,
        on_failure=config.rollback.on_failure,
        automatic=True,
    )
    return roll_back(request, control=control, alerts=config.daemon.alerts, store_lock=store_lock)


def rollback_from_config(
    repo: Path,
    config: Config,
    to: str,
    *,
    target: Path | None = None,
    timeout: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    confirm: Callable[[RollbackResult], bool] | None = None,
    automatic: bool = False,
) -> RollbackResult | None:
    """Roll `target` back to the configs at `to`; None when `confirm` declined.

    `automatic` (`run --rollback`): refused with `PausedError` while bisector is paused,
    like the daemon's policy; a manual `bisector rollback` is not.
    """
    live = resolve_target(repo, config, target)
    if live is None:
        raise RollbackError(
            "no rollback target", hint="set rollback.target in bisector.yaml or pass --target DIR"
        )
    try:
        timeout_s = parse_duration(timeout) if timeout is not None else config.rollback.timeout
    except ValueError as exc:
        raise RollbackError(f"--timeout: {exc}", hint="e.g. --timeout 30s") from exc
    config_set = resolve_source(repo, config, persist=not dry_run).config_set(to)
    hc = config.rollback.health_check
    request = RollbackRequest(
        target=live,
        config_set=config_set,
        timeout_s=timeout_s,
        health_check=tuple(hc) if hc else None,
        health_cwd=repo,
        on_failure=config.rollback.on_failure,
        force=force,
        dry_run=True,
        automatic=automatic,
    )
    if dry_run or confirm is not None:
        preview = roll_back(request)
        if dry_run:
            return preview
        assert confirm is not None
        if not confirm(preview):
            return None
    with ControlStore.for_repo(repo, config.snapshots.store) as control:
        return roll_back(
            replace(request, dry_run=False),
            control=control,
            alerts=config.daemon.alerts,
            store_lock=rollback_lock_path(repo, config),
        )


def rollback_after_run(repo: Path, config: Config, good_ref: str) -> dict[str, Any]:
    """`run --rollback`: put `good_ref`'s configs back unless bisector is paused.

    Paused, the run's findings stand and the rollback is reported as `refused` in the
    run's document (the run's exit code stays that of its status, see docs/cli.md).
    """
    try:
        result = rollback_from_config(repo, config, good_ref, automatic=True)
    except PausedError as exc:
        live = _target_path(repo, config, None)
        log.warning("rollback.refused", to=good_ref, reason=exc.message, hint=exc.hint)
        return {
            "status": "refused",
            "target": None if live is None else str(live),
            "to": good_ref,
            "reason": exc.message,
            "paused": True,
        }
    assert result is not None  # no confirmation callback: never declined
    return result.to_json()


def recover_for(
    repo: Path, config: Config, control: ControlStore, target: Path | None = None
) -> RecoveryOutcome | None:
    try:
        live = resolve_target(repo, config, target)
    except RollbackError:
        return None  # a target no rollback may touch is not recovered either
    return recover_interrupted(live, control) if live is not None else None


def control_status(repo: Path, config: Config) -> dict[str, Any]:
    """Paused or not, the last rollback, and the live target's state (recovering first)."""
    with ControlStore.for_repo(repo, config.snapshots.store) as control:
        recovered = recover_for(repo, config, control)
        pause = control.pause_state()
        last = control.last_rollback()
    doc: dict[str, Any] = {
        "paused": pause.paused,
        "reason": pause.reason,
        "since": pause.since,
        "by": pause.by,
        "last_rollback": None
        if last is None
        else {
            "at": last.at,
            "target": last.target,
            "to": last.label,
            "status": last.status,
            "reason": last.detail.get("reason"),
        },
        "recovered": None if recovered is None else recovered.message,
        "journal": str(journal_path(repo, config.snapshots.store).resolve()),  # as runs --json
    }
    live = _target_path(repo, config, None)  # shown as it is, even when refused
    if live is not None:
        layout = Layout.for_target(live)
        record = read_live_record(layout) if layout.state_dir.is_dir() else None
        busy = layout.lock_path.exists() and not try_lock(layout.lock_path)
        doc["target"] = {
            "path": str(live),
            "kind": live_state(layout).kind,
            "live": None if record is None else record.get("label"),
            "drift": [] if busy or not layout.state_dir.is_dir() else detect_drift(layout),
            "rollback_running": busy,
        }
    return doc


def pause(repo: Path, config: Config, reason: str = "paused by user") -> PauseState:
    with ControlStore.for_repo(repo, config.snapshots.store) as control:
        recover_for(repo, config, control)
        return control.pause(reason, by="user")


def resume(repo: Path, config: Config) -> PauseState:
    """Lift the pause; returns the pause that was lifted (paused=False if there was none)."""
    with ControlStore.for_repo(repo, config.snapshots.store) as control:
        recover_for(repo, config, control)
        return control.resume()
