"""A warm interpreter inside the grading sandbox: it imports once, then forks one kernel per job.

This script runs **inside** the sandbox (staged next to the recorder as ``_dlnn_grading_zygote``
and started by ``enter_jail.py`` exactly as a kernel is: the same bubblewrap namespaces, allow-listed
file system, user, limits and control group), with the standard library and the modules it
preloads (:data:`PRELOAD`: numpy, torch, matplotlib, the course package, ipykernel).  Those
imports are the start-up a fresh kernel pays for every notebook; here they are paid once per
grading slot.  For every submission the grader asks for a kernel and this process forks one
(a fresh process of its own, so no module state of one submission reaches the next):

1. ``{"do": "fork", "connection": PATH}``: fork a child that waits at a gate; answer
   ``{"pid": N}`` (the child's pid in the sandbox).  The grader moves the child into the job's
   control group, then
2. ``{"do": "go"}``: open the gate; the child starts its own session, sends its console to a
   fresh ``.sandbox.log``, reseeds numpy's global generator (as a fresh process would be) and
   becomes an IPython kernel with connection file ``PATH``.  Answer ``{"ok": true}``.
3. ``{"do": "reset"}`` after the job: kill every process of the job (this process is their
   *subreaper*: whatever they forked, even with a new session, comes back to it), reap them, and
   remove the System V shared memory, queues and semaphores left in the sandbox's IPC namespace.
   Answer ``{"ok": true, "killed": N}``.  The grader then empties the scratch folder.

The grader talks to it over one Unix socket, ``<scratch>/.zygote.sock``, which this process
removes as soon as the grader has connected (before any kernel exists): no kernel can reach it.
This process is not dumpable (``PR_SET_DUMPABLE`` 0), so a kernel running as the same user cannot
read or write its memory or file descriptors; a kernel that kills or stops it only makes the
grader start a new one (the next job waits for an answer for a bounded time).
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import socket
import sys
import time

PRELOAD = ("numpy", "torch", "matplotlib", "matplotlib.pyplot", "IPython", "ipykernel.kernelapp",
           "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.comm", "ipykernel.debugger",
           "IPython.core.history", "IPython.core.completer", "pdb", "faulthandler",
           "stack_data", "executing", "asttokens", "pure_eval", "pygments.formatters",
           "pygments.styles", "pygments.console", "pygments.lexers.python", "PIL.features",
           "dlnn_helpers", "dlnn_helpers.checks")
"""The imports every graded notebook pays at start-up (those not installed are skipped): the
libraries, and what ``IPKernelApp.initialize`` imports (the shell, the debugger's ``debugpy``,
the history), and what its first traceback imports (``stack_data``, pygments): a forked kernel
then only builds its objects (about 0.1 s instead of 0.5 s), and a notebook's first error costs
no imports (0.2 s)."""
SOCKET_NAME = ".zygote.sock"
LOG_NAME = ".sandbox.log"
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
IPC_RMID = 0

_libc = ctypes.CDLL(None, use_errno=True)


def preload() -> None:
    """Import :data:`PRELOAD` (what is missing in this environment is skipped), and build the
    Python highlighter IPython's tracebacks use (pygments compiles its rules on first use)."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    try:
        from pygments import highlight
        from pygments.formatters import Terminal256Formatter
        from pygments.lexers import get_lexer_by_name

        highlight("x = 1\n", get_lexer_by_name("python3"), Terminal256Formatter())
    except ImportError:
        pass


def _children() -> set[int]:
    """This process's children now (orphans of its kernels included: it is their subreaper)."""
    found: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as stream:
                found |= {int(pid) for pid in stream.read().split()}
        except (OSError, ValueError):
            continue
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _clear_ipc() -> None:
    """Remove every System V IPC object of the sandbox's IPC namespace (the jobs made them)."""
    for kind, call in (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl")):
        try:
            with open(f"/proc/sysvipc/{kind}") as stream:
                rows = stream.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 2:
                continue
            ident = int(fields[1])
            if kind == "sem":
                _libc.semctl(ident, 0, IPC_RMID, 0)
            else:
                getattr(_libc, call)(ident, IPC_RMID, None)


def reset() -> int:
    """Kill every process of the job (what it forked included) and its IPC objects."""
    killed = 0
    for _ in range(500):
        children = _children()
        if not children:
            break
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.005)
        _reap()
    _reap()
    _clear_ipc()
    return killed


def _launcher() -> str:
    """The path of ``ipykernel_launcher`` (a kernel's ``sys.argv[0]``)."""
    import importlib.util

    found = importlib.util.find_spec("ipykernel_launcher")
    return found.origin if found is not None and found.origin else "ipykernel_launcher"


def _kernel(gate: int, connection: str, scratch: str) -> None:
    """In the forked child: wait at the gate, then become an IPython kernel (never returns)."""
    try:
        opened = os.read(gate, 1)
        os.close(gate)
        if opened != b"1":
            os._exit(1)
        os.setsid()
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # a kernel as a fresh process is
        log = os.open(os.path.join(scratch, LOG_NAME),
                      os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        if "numpy" in sys.modules:  # as unpredictable as in a fresh process
            sys.modules["numpy"].random.seed()
        from ipykernel import kernelapp  # what `python -m ipykernel_launcher -f PATH` runs

        kernelapp.launch_new_instance()
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:  # noqa: BLE001 - a kernel that cannot start: the grader says so
        os._exit(1)
    os._exit(0)


def serve(connection: socket.socket, scratch: str) -> None:
    """Answer the grader's requests until it hangs up."""
    stream = connection.makefile("rwb", buffering=0)
    gate = -1
    while True:
        line = stream.readline()
        if not line:
            return
        _reap()
        request = json.loads(line)
        reply: dict = {"ok": True}
        if request.get("do") == "fork":
            read, gate = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: nothing of the grader's channel stays open
                os.close(connection.fileno())
                os.close(gate)
                sys.argv = [_launcher(), "-f", request["connection"]]
                _kernel(read, request["connection"], scratch)
                os._exit(0)
            os.close(read)
            reply = {"pid": pid}
        elif request.get("do") == "go":
            os.write(gate, b"1")
            os.close(gate)
            gate = -1
        elif request.get("do") == "reset":
            if gate >= 0:
                os.close(gate)
                gate = -1
            reply = {"ok": True, "killed": reset()}
        else:
            reply = {"error": "unknown request"}
        stream.write(json.dumps(reply).encode() + b"\n")


def main(argv: list[str]) -> None:
    scratch = argv[0] if argv else os.getcwd()
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if sys.path and sys.path[0] in ("", os.getcwd()):  # as a kernel's (ipykernel_launcher)
        del sys.path[0]
    preload()
    path = os.path.join(scratch, SOCKET_NAME)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(300)
    connection, _ = listener.accept()
    os.unlink(path)
    listener.close()
    connection.settimeout(None)
    quiet = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(quiet, fd)
    serve(connection, scratch)


if __name__ == "__main__":
    main(sys.argv[1:])
