"""A warm interpreter for the build's reference runs: it imports once, then forks one kernel per notebook.

Every notebook the build executes starts a kernel, and a fresh kernel pays its start-up again: a
Python importing torch, NumPy, matplotlib, IPython and the course package (about 2 s of CPU on the
2-core development machine, against 0.3 s for a kernel with nothing to import).  The site's cold
build executes seven notebooks, five of them one after the other on one core (tutorial 3's two
kernels, then the other five tutorials), so that start-up is about a tenth of the build.

This process (``python -m coursebuild.zygote SOCKET``, started by :class:`coursebuild.warm_kernels.
WarmKernels`) imports :data:`PRELOAD` once and listens on a Unix socket.  A kernel is started as
usual by ``jupyter_client``, with the command of :mod:`coursebuild.kernel_launcher` in place of
``python -m ipykernel_launcher``: the launcher sends its arguments, environment, working folder and
its standard input, output and error here, and this process forks a child which becomes the kernel
(exactly what ``ipykernel_launcher`` runs, with that environment, folder and those streams).  The
child is a fresh process of its own: nothing a notebook does reaches the next one, and NumPy's and
Python's global generators are reseeded as in a fresh process.

Lifetimes: the launcher stands for the kernel (``jupyter_client`` signals and waits for it); it
forwards signals to the kernel and exits with the kernel's status.  When a launcher goes away first
(killed), its kernel is killed; when this process goes away, every kernel it forked is killed, and
this process goes when the process that started it does, even killed (``PR_SET_PDEATHSIG``).

Protocol (one connection per kernel): the launcher sends one JSON line ``{"argv": [...], "env":
{...}, "cwd": "..."}`` with its descriptors 0, 1 and 2 attached (``SCM_RIGHTS``); this process answers
``{"pid": N}``, then ``{"exit": STATUS}`` when the kernel has exited.  The launcher may send
``{"signal": N}`` lines meanwhile.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import random
import selectors
import signal
import socket
import sys

PRELOAD = ("numpy", "torch", "matplotlib", "matplotlib.pyplot", "IPython", "ipykernel.kernelapp",
           "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.comm", "ipykernel.debugger",
           "IPython.core.history", "IPython.core.completer",
           "dlnn_helpers", "dlnn_helpers.checks")
"""What every notebook of the course imports (a module not installed is skipped): the libraries,
what ``IPKernelApp.initialize`` imports, and the course package.  Modules only: importing them
creates no figure, thread or kernel."""

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
"""The backend ipykernel selects for a kernel (through ``MPLBACKEND``, when it is not set)."""

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def preload() -> None:
    """Import :data:`PRELOAD` as a kernel would find them (matplotlib reads ``MPLBACKEND`` when it
    is imported, so the inline backend a kernel selects is selected first)."""
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def _launcher_path() -> str:
    """A fresh kernel's ``sys.argv[0]``: the path of ``ipykernel_launcher``."""
    import importlib.util

    found = importlib.util.find_spec("ipykernel_launcher")
    return found.origin if found is not None and found.origin else "ipykernel_launcher"


def _become_kernel(request: dict, fds: list[int], parent: int) -> None:
    """In the forked child: take the launcher's streams, folder and environment and run the kernel
    (never returns)."""
    code = 1
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the warm interpreter is gone already
            os._exit(1)
        os.setsid()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [_launcher_path(), *request["argv"]]
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        for name in ("SIGINT", "SIGTERM", "SIGCHLD"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the kernel's stderr (the launcher's) says why
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class Zygote:
    """The server: one listening socket, one connection and one pidfd per kernel."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, ("accept", None))
        self.kernels: dict[int, socket.socket] = {}  # pid -> its launcher's connection
        self.pidfds: dict[int, int] = {}

    def _start(self, connection: socket.socket) -> None:
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        buffer = message
        while not buffer.endswith(b"\n"):
            more = connection.recv(1 << 20)
            if not more:
                break
            buffer += more
        try:
            request = json.loads(buffer)
        except ValueError:
            for fd in fds:
                os.close(fd)
            connection.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self.selector.close()
            self.listener.close()
            for other in self.kernels.values():
                other.close()
            for pidfd in self.pidfds.values():
                os.close(pidfd)
            connection.close()
            _become_kernel(request, fds, parent)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.kernels[pid] = connection
        self.pidfds[pid] = pidfd
        self.selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
        self.selector.register(connection, selectors.EVENT_READ, ("launcher", pid))
        self._send(connection, {"pid": pid})

    @staticmethod
    def _send(connection: socket.socket, message: dict) -> None:
        try:
            connection.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            pass

    def _exited(self, pid: int) -> None:
        if pid not in self.kernels:  # both its events came in one select: handled already
            return
        _, status = os.waitpid(pid, 0)
        self.selector.unregister(self.pidfds[pid])
        os.close(self.pidfds.pop(pid))
        connection = self.kernels.pop(pid)
        if connection.fileno() in self.selector.get_map():  # its launcher is still there
            self.selector.unregister(connection)
            self._send(connection, {"exit": os.waitstatus_to_exitcode(status)})
        connection.close()

    def _from_launcher(self, pid: int) -> None:
        connection = self.kernels.get(pid)
        if connection is None:  # the kernel's exit, in the same select, came first
            return
        try:
            data = connection.recv(4096)
        except OSError:
            data = b""
        if not data:  # the launcher is gone: so is its kernel
            self.selector.unregister(connection)
            self._signal(pid, signal.SIGKILL)
            return
        for line in data.splitlines():
            try:
                number = int(json.loads(line)["signal"])
            except (ValueError, KeyError, TypeError):
                continue
            self._signal(pid, number)

    def _signal(self, pid: int, number: int) -> None:
        if pid in self.pidfds:
            try:
                signal.pidfd_send_signal(self.pidfds[pid], number)
            except OSError:
                pass

    def serve(self) -> None:
        """Answer launchers until this process is terminated."""
        while True:
            for key, _ in self.selector.select():
                kind, pid = key.data
                if kind == "accept":
                    connection, _ = self.listener.accept()
                    self._start(connection)
                elif kind == "exited":
                    self._exited(pid)
                else:
                    self._from_launcher(pid)


def main(argv: list[str]) -> None:
    """``python -m coursebuild.zygote SOCKET``: import, listen, print ``ready``, serve."""
    path = argv[0]
    parent = os.getppid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # the build gone (even killed): so is this
    if os.getppid() != parent:
        sys.exit(1)
    del sys.path[0]  # this process's folder, which ``ipykernel_launcher`` removes too
    preload()
    zygote = Zygote(path)
    print("ready", flush=True)
    zygote.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
