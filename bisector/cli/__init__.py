"""The command line: parse, load config, call one library function, render.

This package is the only code (with the daemon's entry) that prints or exits. Here are
the typer apps, the registration of every command (in the order `--help` lists them)
and `main()`; the commands live in one module per family. Heavy modules are imported
inside the commands so `bisector --help` starts fast.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import sys
from types import FrameType
from typing import Annotated, NoReturn

import typer

from bisector.cli import _cache, _guard, _init, _isolate, _rollback, _run, _runs, _snapshot
from bisector.cli._common import state
from bisector.cli._lines import WholeLines
from bisector.errors import BisectorError
from bisector.plumbing.escape import one_line

__all__ = ["app", "main"]

app = typer.Typer(
    name="bisector",
    help=(
        "Find which commit, dependency upgrade or config key made a model-serving stack "
        "slower, hungrier or less accurate, and roll the configs back.\n\n"
        "Exit codes of run: 0 culprit found, 3 not reproduced, 4 inconclusive, "
        "2 bad input, 1 internal error. guard --once: 0 ok, 6 breached and acted, 7 blind."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
)
snapshot_app = typer.Typer(
    help="Capture, list, show and diff release snapshots.", no_args_is_help=True
)
config_app = typer.Typer(
    help="bisector.yaml helpers, and config-key isolation (`bisector config --good FILE --bad FILE`).",
    no_args_is_help=True,
)
cache_app = typer.Typer(help="Cached environments and images.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(config_app, name="config")
app.add_typer(cache_app, name="cache")


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines to stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log debug events.")] = False,
) -> None:
    state["debug"] = debug
    from bisector.log import configure

    configure(json_lines=log_json, verbose=verbose or debug)


app.command()(_init.init)
app.command()(_run.run)
app.command()(_rollback.rollback)
app.command()(_rollback.status)
app.command()(_rollback.pause)
app.command()(_rollback.resume)
app.command()(_rollback.daemon)
app.command()(_guard.guard)
app.command()(_run.report)
app.command()(_runs.runs)
app.command()(_isolate.deps)
app.command()(_run.demo)
snapshot_app.command("take")(_snapshot.snapshot_take)
snapshot_app.command("list")(_snapshot.snapshot_list)
snapshot_app.command("show")(_snapshot.snapshot_show)
snapshot_app.command("diff")(_snapshot.snapshot_diff)
config_app.callback(invoke_without_command=True)(_isolate.config_group)
config_app.command("isolate")(_isolate.config_isolate)
config_app.command("schema")(_isolate.config_schema)
config_app.command("check")(_isolate.config_check)
cache_app.command("list")(_cache.cache_list)
cache_app.command("prune")(_cache.cache_prune)


def _print_error(err: BisectorError) -> None:
    # A message quotes file names, refs and tools' output: a line break in one must not
    # make a second `error:` or a forged `hint:` line.
    sys.stderr.write(f"error: {one_line(err.message)}\n")
    if err.hint:
        sys.stderr.write(f"hint: {one_line(err.hint)}\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so it unwinds like Ctrl-C: the benchmark's
    process group is killed and worktrees are removed on the way out."""


_sigterm = {"received": False}  # typer turns KeyboardInterrupt into a plain `return 130`


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(
        signal.SIGTERM, signal.SIG_IGN
    )  # one unwinding; a second SIGTERM must not cut it short
    _sigterm["received"] = True
    raise Terminated


def _die_of_sigterm() -> NoReturn:
    sys.stderr.write("error: terminated\n")
    sys.stderr.flush()
    # Die of the signal, so whoever sent it sees a SIGTERM death, not an exit code.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    sys.exit(143)  # pragma: no cover - not reached: the signal ends us first


_sigint = {"received": False}  # the same for Ctrl-C, which typer would end silently


def _on_sigint(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # one unwinding, one `error: interrupted`
    _sigint["received"] = True
    raise KeyboardInterrupt


def _die_of_sigint() -> NoReturn:
    sys.stderr.write("error: interrupted\n")
    sys.exit(130)


def _die_if_signalled() -> None:
    """After SIGTERM or Ctrl-C, whatever the command returned or raised on the way out."""
    if _sigterm["received"]:
        _die_of_sigterm()
    if _sigint["received"]:
        _die_of_sigint()


def _os_message(exc: OSError | sqlite3.DatabaseError) -> str:
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the store's database cannot be used: {exc}"
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        return f"{what}: {exc.filename}"
    return what


def _os_hint(exc: OSError | sqlite3.DatabaseError) -> str | None:
    if isinstance(exc, sqlite3.DatabaseError):
        return "the file may be damaged: move it aside (a new one is made) and run again"
    # A read-only mount (EROFS) is no PermissionError, but as much a path that may not be
    # written as a folder without write permission (EACCES): both say what to check.
    if exc.errno == errno.EROFS:
        return (
            "the file system holding the path is mounted read-only: check the mount "
            "(findmnt -T PATH), or use a path on a writable one"
        )
    if isinstance(
        exc, PermissionError | FileNotFoundError | NotADirectoryError | IsADirectoryError
    ):
        return "check the path and its permissions"
    return None


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI with whole-line stderr (`_lines.WholeLines`), put back on the way out."""
    original = sys.stderr
    sys.stderr = WholeLines(original)
    on_sigint = signal.getsignal(signal.SIGINT)
    _sigint["received"] = False
    try:
        _main(argv)
    finally:
        sys.stderr.flush()
        sys.stderr = original
        if not _sigint["received"]:  # called in-process (tests): Ctrl-C as it was
            signal.signal(signal.SIGINT, on_sigint)


def _main(argv: list[str] | None) -> NoReturn:
    # Commands that must finish a step first (a rollback's apply, the daemon) install
    # their own handler for that time and put this one back.
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C: typer turns KeyboardInterrupt into a silent `return 130`, so note it here.
    # A SIGINT ignored from the start (`nohup`, a background job) stays ignored.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        rv = app(args=argv, prog_name="bisector", standalone_mode=False)
    except typer.Exit as exc:
        _die_if_signalled()
        sys.exit(exc.exit_code)
    except Terminated:
        _die_of_sigterm()
    except (typer.Abort, KeyboardInterrupt):
        _die_if_signalled()
        _die_of_sigint()
    except BisectorError as exc:
        _die_if_signalled()  # an error raised while unwinding from a signal
        if state["debug"]:
            import traceback

            traceback.print_exc()
        _print_error(exc)
        sys.exit(exc.exit_code)
    except (OSError, sqlite3.DatabaseError) as exc:
        _die_if_signalled()
        # The machine, not bisector: a path that cannot be read or written, a full disk,
        # a port in use, a damaged database file. Bad input (exit 2) with what the OS said.
        if state["debug"]:
            import traceback

            traceback.print_exc()
        _print_error(BisectorError(_os_message(exc), hint=_os_hint(exc)))
        sys.exit(2)
    except Exception as exc:
        _die_if_signalled()
        show = getattr(exc, "show", None)
        if callable(show):  # a usage error of the argument parser: bad input, exit 2
            show()
            sys.exit(2)
        if state["debug"] or os.environ.get("BISECTOR_DEBUG"):
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"error: internal error: {type(exc).__name__}: {one_line(str(exc))}\n")
        sys.stderr.write("hint: run again with --debug for the traceback\n")
        sys.exit(1)
    _die_if_signalled()
    sys.exit(rv if isinstance(rv, int) else 0)
