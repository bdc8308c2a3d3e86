"""The preload fork server: run by an environment's own interpreter, standard library only.

    python _server.py --module torch --module transformers --forbid ROOT

It imports the listed modules once, then forks one child per trial request. The child
becomes what `python ARGS...` would have been in the trial's folder and environment:
its own session (so its own process group), stdin from /dev/null, stdout and stderr
opened from the paths the driver gives, `sys.argv` / `sys.path` as a fresh interpreter
sets them, and the script or `-m` module run by `runpy` as `__main__`. Its exit status
(negative: killed by that signal) goes back to the driver.

Protocol: one JSON object per line. The driver writes requests to our stdin; we answer on
the stdout we were started with (kept on a private fd: fd 1 itself is pointed at stderr,
so a preloaded module that prints cannot corrupt the protocol).

- on start: ``{"event": "ready", "pid", "modules", "import_s", "cuda_initialized"}`` or
  ``{"event": "error", "error"}`` (then we exit 3);
- ``{"op": "run", "argv", "cwd", "env", "stdout", "stderr", "roots"}`` → ``{"event":
  "started", "pid"}`` then ``{"event": "exit", "status"}``; or ``{"event": "refused",
  "error"}`` when a loaded module's file lies under the checkout or a forbidden root, or
  CUDA got initialised: nothing of the repository under test may be shared by trials;
- ``{"op": "stop"}`` or end of input: we kill a running child's group and exit. End of
  input is also how we die with the run: the driver's end of the pipe closes when it dies.

Never imports bisector: it runs in environments that do not have it. Written for the
oldest interpreter an environment may hold (no `match`, no runtime `X | Y`).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import select
import signal
import sys
import time
import traceback
from typing import IO, Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_POLL_S = 0.5


def _clean_path() -> list[str]:
    """sys.path without our own folder (bisector's package must not shadow anything) and
    without PYTHONPATH entries (each trial puts its own back): the interpreter's base."""
    pythonpath = {
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    }
    return [
        p
        for p in sys.path
        if p and os.path.abspath(p) != _HERE and os.path.abspath(p) not in pythonpath
    ]


def loaded_under(roots: list[str]) -> list[str]:
    """Names of loaded modules whose file (or package folder) lies under one of `roots`."""
    bases = [os.path.realpath(root).rstrip(os.sep) + os.sep for root in roots]
    found = []
    for name, module in list(sys.modules.items()):
        places = _PLACES.get(name)
        if places is None or places[0] is not module:
            places = _PLACES[name] = (module, _module_places(module))
        if any((place + os.sep).startswith(base) for place in places[1] for base in bases):
            found.append(name)
    return sorted(found)


# Real paths of each loaded module, computed once: checked before every fork, and torch
# alone loads thousands of modules.
_PLACES: dict[str, tuple[object, list[str]]] = {}


def _module_places(module: object) -> list[str]:
    try:  # lazy and C modules have odd attributes (torch's `_ClassNamespace` __path__)
        where: list[object] = [getattr(module, "__file__", None)]
        package: Any = getattr(module, "__path__", None)
        if isinstance(package, list) or type(package).__name__ == "_NamespacePath":
            where += list(package)
    except Exception:
        return []
    return [os.path.realpath(w) for w in where if isinstance(w, str)]


def cuda_initialized() -> bool | None:
    """Whether torch (if loaded) has initialised CUDA; None without torch. A forked child
    cannot use a CUDA context its parent created, so the server must never create one."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    check = getattr(cuda, "is_initialized", None)
    return bool(check()) if callable(check) else None


class Server:
    def __init__(
        self, proto_in: IO[str], proto_out: IO[str], base_path: list[str], roots: list[str]
    ) -> None:
        self.proto_in, self.proto_out = proto_in, proto_out
        self.base_path, self.roots = base_path, roots
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        # SIGCHLD wakes our select at once (no polling delay added to a trial's duration).
        signal.signal(signal.SIGCHLD, _wake)
        signal.set_wakeup_fd(self.wake_w)

    def send(self, **message: Any) -> None:
        self.proto_out.write(json.dumps(message) + "\n")
        self.proto_out.flush()

    def serve(self) -> int:
        while True:
            line = self.proto_in.readline()
            if not line:
                return 0
            request = json.loads(line)
            if request.get("op") == "stop":
                return 0
            if request.get("op") == "run":
                if not self.run(request):
                    return 0

    def refusal(self, request: dict[str, Any]) -> str | None:
        bad = loaded_under([request["cwd"], *self.roots, *request.get("roots", [])])
        if bad:
            return (
                "modules of the repository under test are loaded in the preload server: "
                + ", ".join(bad[:10])
            )
        if cuda_initialized():
            return (
                "CUDA was initialised in the preload server (torch.cuda.is_initialized() is true)"
            )
        return None

    def run(self, request: dict[str, Any]) -> bool:
        """One trial; False when the driver went away meanwhile (we exit)."""
        refused = self.refusal(request)
        if refused is not None:
            self.send(event="refused", error=refused)
            return True
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            self.child(request)
        self.send(event="started", pid=pid)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.send(event="exit", status=os.waitstatus_to_exitcode(status))
                return True
            control = self.proto_in.fileno()
            ready, _, _ = select.select([control, self.wake_r], [], [], _POLL_S)
            if self.wake_r in ready:
                os.read(self.wake_r, 4096)
            if control in ready:
                line = self.proto_in.readline()
                if not line or json.loads(line).get("op") == "stop":
                    _kill_group(pid)  # the driver died or gave up: the trial goes with it
                    return False

    def child(self, request: dict[str, Any]) -> None:
        """Become the trial's `python ARGS...` process; never returns."""
        code = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            for fd in (self.wake_r, self.wake_w, self.proto_in.fileno(), self.proto_out.fileno()):
                os.close(fd)
            _redirect(0, os.devnull, os.O_RDONLY)
            _redirect(1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            _redirect(2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            code = _run_as_python(request, self.base_path)
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            _finish(code)


def _wake(_signum: int, _frame: object) -> None:
    """SIGCHLD's handler: nothing; its wakeup byte ends the select."""


def _redirect(fd: int, path: str, flags: int) -> None:
    opened = os.open(path, flags, 0o644)
    os.dup2(opened, fd)
    os.close(opened)


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of `sys.exit(x)`: None 0, an int itself, anything else
    printed to stderr and 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _run_as_python(request: dict[str, Any], base_path: list[str]) -> int:
    """`python -m MODULE ARGS` or `python SCRIPT ARGS` in this (forked) process."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv = list(request["argv"])
    pythonpath = [
        os.path.abspath(p) for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    importlib.invalidate_caches()
    if argv[0] == "-m":
        sys.argv = ["-m", *argv[2:]]  # runpy sets argv[0] to the module's file
        sys.path[:] = [os.getcwd(), *pythonpath, *base_path]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv  # as given, like the interpreter
        sys.path[:] = [os.path.dirname(os.path.realpath(argv[0])), *pythonpath, *base_path]
        runpy.run_path(argv[0], run_name="__main__")
    return 0


def _finish(code: int) -> None:
    """Exit the child as the interpreter would (atexit handlers, flushed streams), but
    never back into the server's loop."""
    try:
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = code or 120  # as the interpreter does when flushing stdout fails
    os._exit(code)


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.2)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _driver_loaded() -> bool | None:
    """Whether the CUDA driver library is mapped in this process (reported, not refused:
    a loaded library is not yet an initialised driver); None without procfs."""
    try:
        with open("/proc/self/maps") as maps:
            return "libcuda.so" in maps.read()
    except OSError:
        return None


def _parse(argv: list[str]) -> tuple[list[str], list[str]]:
    modules: list[str] = []
    roots: list[str] = []
    for i in range(0, len(argv) - 1, 2):
        (modules if argv[i] == "--module" else roots).append(argv[i + 1])
    return modules, roots


def main() -> int:
    modules, roots = _parse(sys.argv[1:])
    # The protocol keeps the pipes we were started with; fd 0 and 1 become harmless.
    proto_in = os.fdopen(os.dup(0), "r")
    proto_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    base_path = _clean_path()  # each child's sys.path: its own PYTHONPATH, then this
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != _HERE]
    os.chdir("/")  # no relative import can find the repository under test

    def fail(error: str) -> int:
        proto_out.write(json.dumps({"event": "error", "error": error}) + "\n")
        proto_out.flush()
        return 3

    # `torch.cuda.is_available()` (which libraries call at import) initialises the CUDA
    # driver unless told to ask NVML, and a driver initialised before fork fails in every
    # child. Only the server's own environment: each child gets its trial's.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    import_s: dict[str, float] = {}
    for name in modules:
        start = time.perf_counter()
        try:
            __import__(name)
        except BaseException as exc:
            return fail(f"cannot import {name}: {type(exc).__name__}: {exc}")
        import_s[name] = round(time.perf_counter() - start, 3)
    bad = loaded_under(roots)
    if bad:
        return fail(
            "preload entries load modules of the repository under test: " + ", ".join(bad[:10])
        )
    cuda = cuda_initialized()
    if cuda:
        return fail(
            "importing the preload modules initialised CUDA; a forked trial could not use it"
        )
    server = Server(proto_in, proto_out, base_path, roots)
    server.send(
        event="ready",
        pid=os.getpid(),
        modules=modules,
        import_s=import_s,
        cuda_initialized=cuda,
        cuda_driver_loaded=_driver_loaded(),
        # A fork keeps only the forking thread: native threads started by the imports
        # (an OpenMP pool) are not in the children. Reported so a bench can watch it.
        native_threads=len(os.listdir("/proc/self/task"))
        if os.path.isdir("/proc/self/task")
        else None,
    )
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
