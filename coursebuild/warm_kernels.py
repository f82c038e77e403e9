"""Kernels forked from a warm interpreter, for the notebooks the build executes one after another.

:class:`WarmKernels` starts :mod:`coursebuild.zygote` (an interpreter that has imported torch,
NumPy, matplotlib, IPython and the course package) with the environment the build's kernels share,
and gives ``nbclient`` a kernel manager whose kernels that interpreter forks: each notebook still
runs in a fresh process of its own, with its own environment and working folder, without paying the
imports again (about 2 s of CPU a notebook on the 2-core development machine).

A kernel's environment may differ from the warm interpreter's only in variables read *while
running* (the course's ``DLNN_*`` settings, :data:`RUNTIME_NAMES`), not in those a process reads when
it starts or imports (threads, ``malloc``, ``PYTHONPATH``, ``MPLBACKEND``, ``HOME``, ...):
:meth:`WarmKernels.manager_for` returns ``None`` (start a fresh kernel) for any other environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

START_TIMEOUT = 300.0
"""Seconds the warm interpreter may take to import everything (a loaded machine)."""

RUNTIME_PREFIX = "DLNN_"
"""Variables a kernel's environment may set or change against the warm interpreter's: read by the
course package when a function runs, never when it is imported."""
RUNTIME_NAMES = frozenset({"PYTEST_CURRENT_TEST"})
"""Other such variables (pytest names the running test in its own process's environment)."""


class WarmKernelsError(RuntimeError):
    """The warm interpreter could not start."""


class WarmKernels:
    """A warm interpreter and the kernel manager class of the kernels it forks.

    Parameters
    ----------
    env : dict of str to str
        The environment of the warm interpreter, and of every kernel it forks, less the variables
        of :data:`RUNTIME_PREFIX`.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.folder = Path(tempfile.mkdtemp(prefix="dlnn-warm-kernels-"))
        self.socket = self.folder / "zygote.sock"
        log = self.folder / "zygote.log"
        with open(log, "wb") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "coursebuild.zygote", str(self.socket)],
                # jupyter_client gives each kernel the pid of the process that manages it, and
                # ipykernel reads it when it is imported: the warm interpreter is given the same
                env={**self.env, "JPY_PARENT_PID": str(os.getpid())},
                cwd=self.folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        if _read_line(self.process, START_TIMEOUT) != b"ready\n":
            self.close(keep_log=True)
            reason = log.read_text(errors="replace")
            shutil.rmtree(self.folder, ignore_errors=True)
            raise WarmKernelsError(f"the warm interpreter did not start (status "
                                   f"{self.process.returncode}):\n{reason}")
        self._manager = _manager_class(str(self.socket))

    def manager_for(self, env: dict[str, str]) -> type[AsyncKernelManager] | None:
        """The kernel manager class for a kernel with environment ``env``: forked from the warm
        interpreter, or ``None`` (start a fresh kernel) when ``env`` differs from the warm
        interpreter's in a variable read at start-up."""
        names = (set(env) | set(self.env))
        differ = {n for n in names if env.get(n) != self.env.get(n)}
        if self.process.poll() is not None or any(
                not n.startswith(RUNTIME_PREFIX) and n not in RUNTIME_NAMES for n in differ):
            return None
        return self._manager

    def close(self, keep_log: bool = False) -> None:
        """Stop the warm interpreter (the kernels it forked stop with it) and remove its folder
        (unless ``keep_log``)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if not keep_log:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> WarmKernels:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_line(process: subprocess.Popen, timeout: float) -> bytes:
    """The first line ``process`` prints, or ``b""`` when it exits or ``timeout`` passes first."""
    import selectors
    import time

    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return b""
            chunk = os.read(process.stdout.fileno(), 64)
            if not chunk:
                return b""
            line += chunk
    return line


def _manager_class(socket_path: str) -> type[AsyncKernelManager]:
    """A kernel manager that starts ``coursebuild.kernel_launcher`` (talking to the warm interpreter
    at ``socket_path``) in place of ``ipykernel_launcher``."""

    class WarmKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            cmd = super().format_kernel_cmd(extra_arguments)
            for index in range(len(cmd) - 1):
                if cmd[index] == "-m" and cmd[index + 1] == "ipykernel_launcher":
                    return [sys.executable, "-m", "coursebuild.kernel_launcher", socket_path,
                            *cmd[index + 2:]]
            return cmd  # another kernel than IPython's: started as usual

    return WarmKernelManager
