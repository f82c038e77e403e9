"""Warm grading slots: start-up paid once per worker, a fresh kernel process per submission.

A fresh kernel pays its start-up for every notebook: a Python importing torch, numpy, matplotlib,
IPython and the course package (about 2 s of CPU on a small machine).  A grading worker here holds
one *warm slot* instead: a sandbox slot (:class:`~autograder.grading.sandbox.kernel.Box`: its user, its
scratch folder, its control group) whose ``enter_jail.py`` starts, in place of a kernel,
``zygote.py`` — the same interpreter in the same sandbox (bubblewrap's namespaces and allow-list,
the slot's uid, limits and control group), which imports all of that once and then forks one
kernel per submission:

- **a fresh process per submission**: the kernel is a child forked after the imports, so nothing a
  notebook changes in its modules, its memory or its interpreter reaches the next notebook; the
  interpreter it was forked from runs no student code;
- **its own control group** (memory and processes of the submission together, where the machine
  has control groups: :class:`~autograder.grading.sandbox.cgroups.JobGroup` ``s<slot>-job``): the
  grader moves the forked child into it before the child runs a line of the notebook;
- **its own scratch folder**: emptied, and every process of the job killed (the warm interpreter
  is the *subreaper* of everything a kernel forks) and every System V IPC object removed, before
  the next submission gets the slot.

The warm interpreter runs no student code, cannot be read by the kernels (not dumpable), and is
reachable only by the grader (a Unix socket it removes once the grader is connected).  A kernel
that kills or stops it makes the grader start a new one for the next submission (the job in
progress is unaffected); a slot that cannot start (no ipykernel, a sandbox that cannot run
Python) falls back to a fresh interpreter per notebook, with today's messages.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import zmq

from ..model import SandboxSettings
from ..protocol.calls import ZYGOTE_MODULE
from . import cgroups
from . import machine as _machine
from .jail import SCRATCH
from .kernel import JAIL, Box, _JailedKernelManager, limit_problems, scratch_problems
from .staging import stage_library

SOCKET_NAME = ".zygote.sock"
START_TIMEOUT = 300.0
"""Seconds the warm interpreter may take to import everything (a loaded machine)."""
ANSWER_TIMEOUT = 60.0
"""Seconds it may take to fork a kernel or to clear a job; then it is started again."""


KILL_WAIT = 2.0
"""Seconds a killed kernel may take to be gone before the kill returns."""


class SlotLost(RuntimeError):
    """The warm interpreter died, stopped answering, or could not start."""


class ForkedKernel:
    """The :class:`subprocess.Popen` face of a kernel forked in the sandbox (not our child).

    Followed through a pidfd (Linux 5.3+): it cannot be confused with a later process of the
    same pid.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._fd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        if self.returncode is None and self._fd >= 0:
            ready, _, _ = select.select([self._fd], [], [], 0)
            if ready:
                self.returncode = 0
                self.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._fd >= 0:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired("kernel", timeout or 0)
            self.returncode = 0
            self.close()
        return self.returncode or 0

    def send_signal(self, signum: int) -> None:
        if self._fd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._fd, signum)
            if signum == signal.SIGKILL:  # gone at once: jupyter_client need not poll (0.1 s)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.wait(KILL_WAIT)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (host pids)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as stream:
                    children = [int(p) for p in stream.read().split()]
            except (OSError, ValueError):
                continue
            found += children
            todo += children
    return found


def _namespace_pid(pid: int) -> int | None:
    """The pid of host process ``pid`` in its innermost PID namespace."""
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class WarmSlot:
    """One worker's sandbox slot with its warm interpreter (``zygote.py``) running in it.

    Parameters
    ----------
    settings : SandboxSettings
        The sandbox of every job of this slot.
    env : dict
        The kernels' extra environment variables.
    """

    def __init__(self, settings: SandboxSettings, env: dict[str, str]) -> None:
        self.settings = settings
        self.box = Box(settings)
        self.job_group: cgroups.JobGroup | None = None
        self.process: subprocess.Popen | None = None
        self.channel: socket.socket | None = None
        self._stream: socket.SocketIO | None = None
        self.inside = SCRATCH if self.box.found.sandboxed else str(self.box.scratch)
        self.lost = False
        try:
            self._start(env)
        except BaseException:
            self.close()
            raise

    def _start(self, env: dict[str, str]) -> None:
        box = self.box
        jail = box.write_jail(stage_library(box.base), env)
        self.process = subprocess.Popen(
            [sys.executable, str(JAIL), str(jail), "--", sys.executable, "-m", ZYGOTE_MODULE,
             self.inside], start_new_session=True)
        path = box.scratch / SOCKET_NAME
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise SlotLost(f"the warm interpreter did not start ({box.log()[-300:].strip()})")
            if time.monotonic() > deadline:
                raise SlotLost(f"the warm interpreter did not start in {START_TIMEOUT:.0f} s")
            channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                if path.is_socket():
                    channel.connect(str(path))
                    break
            except OSError:
                pass
            channel.close()
            time.sleep(0.02)
        channel.settimeout(ANSWER_TIMEOUT)
        self.channel = channel
        self._stream = channel.makefile("rwb", buffering=0)

    def ask(self, request: dict) -> dict:
        """Send one request to the warm interpreter; its answer (:class:`SlotLost` if none)."""
        if self.channel is None or self.lost:
            raise SlotLost("the warm interpreter is gone")
        try:
            self._stream.write(json.dumps(request).encode() + b"\n")
            line = self._stream.readline()
        except OSError as exc:
            self.lost = True
            raise SlotLost(f"the warm interpreter does not answer ({exc})") from None
        if not line:
            self.lost = True
            raise SlotLost("the warm interpreter died")
        return json.loads(line)

    def alive(self) -> bool:
        return not self.lost and self.process is not None and self.process.poll() is None

    def fork_kernel(self, connection_file: str) -> ForkedKernel:
        """A kernel forked from the warm interpreter, in the job's control group, started."""
        box = self.box
        info = json.loads(Path(connection_file).read_text())
        scratch = str(box.scratch)
        if str(info.get("ip", "")).startswith(scratch + os.sep):
            info["ip"] = self.inside + info["ip"][len(scratch):]
        copy = box.scratch / ".kernel-inside.json"
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(info, stream)
        if box.uid is not None:
            os.chown(copy, box.uid, box.uid)
        inner = self.ask({"do": "fork", "connection": f"{self.inside}/.kernel-inside.json"})["pid"]
        host = next((p for p in _descendants(self.process.pid) if _namespace_pid(p) == inner), None)
        if host is None:
            self.lost = True
            raise SlotLost("the forked kernel was not found")
        kernel = ForkedKernel(host)
        if self.job_group is not None:
            for path in self.job_group.procs_files:
                with open(path, "w") as stream:
                    stream.write(str(host))
        self.ask({"do": "go"})
        return kernel

    def clear(self) -> None:
        """Empty the scratch folder for the next job (every process of the job is dead)."""
        scratch = self.box.scratch
        for entry in os.scandir(scratch):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        for sub in (".tmp", ".shm"):
            (scratch / sub).mkdir(mode=0o700, exist_ok=True)
            if self.box.uid is not None:
                os.chown(scratch / sub, self.box.uid, self.box.uid)

    def memory_peak(self) -> int | None:
        """Most memory the warm interpreter used (bytes; the imports every kernel shares)."""
        return self.box.group.memory_peak() if self.box.group is not None else None

    def close(self) -> None:
        """Kill the warm interpreter and everything of the slot; release the slot."""
        if self.channel is not None:
            if self._stream is not None:  # the stream first: it holds the socket open
                with contextlib.suppress(OSError):
                    self._stream.close()
                self._stream = None
            with contextlib.suppress(OSError):
                self.channel.close()
            self.channel = None
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()
        if self.job_group is not None:
            self.job_group.remove()
            self.job_group = None
        self.box.finish()
        self.box.close()


class WarmJob:
    """One submission's turn in a warm slot (a context manager, the face :class:`Box` has for
    :func:`~autograder.grading.execution.execute`)."""

    def __init__(self, slot: WarmSlot) -> None:
        self.slot = slot
        self.settings = slot.settings
        self.scratch = slot.box.scratch
        self.uid = slot.box.uid
        layout = slot.box.found.cgroups
        self.group = None
        if layout.parents:
            self.group = cgroups.JobGroup(layout, f"s{slot.box.slot.number}-job",
                                          self.settings.memory_bytes, self.settings.processes)
        slot.job_group = self.group

    def kernel_manager(self, env: dict[str, str]) -> _ForkedKernelManager:
        km = _ForkedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(self.scratch / "kernel"),
            connection_file=str(self.scratch / "kernel.json"),
        )
        km.slot = self.slot
        # The client connects before the forked kernel has bound its sockets: retry every 10 ms
        # (zmq's default is 100 ms), so the first request reaches the kernel as soon as it listens.
        km.context.setsockopt(zmq.RECONNECT_IVL, 10)
        return km

    def log(self) -> str:
        return self.slot.box.log()

    def finish(self) -> list[str]:
        """Kill every process of the job; the problems the limits caught (sentences)."""
        try:
            self.slot.ask({"do": "reset"})
        except SlotLost:
            pass  # the slot is closed after this job
        if self.group is not None:
            self.group.kill()
        problems = limit_problems(self.group, self.settings)
        problems += scratch_problems(self.scratch, self.settings, self.slot.box.mounted)
        return problems

    def memory_peak(self) -> int | None:
        """Most memory of the slot during the job: the warm interpreter's and the job's own."""
        own = self.group.memory_peak() if self.group is not None else None
        shared = self.slot.memory_peak()
        if own is None and shared is None:
            return None
        return (own or 0) + (shared or 0)

    def __enter__(self) -> WarmJob:
        return self

    def __exit__(self, *exc: object) -> None:
        slot = self.slot
        if self.group is not None:
            self.group.remove()
        slot.job_group = None
        if slot.alive():
            try:
                slot.clear()
                return
            except OSError:
                pass
        _drop(slot)


class _ForkedKernelManager(_JailedKernelManager):
    """A kernel manager whose kernel is forked by the slot's warm interpreter."""

    slot: WarmSlot | None = None

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: object) -> None:
        assert self.provisioner is not None and self.slot is not None
        try:
            process = self.slot.fork_kernel(self.connection_file)
        except SlotLost as exc:
            raise RuntimeError(str(exc)) from None
        self.provisioner.process = process
        self.provisioner.pid = process.pid
        self.provisioner.pgid = None
        self._reconcile_connection_info(self.provisioner.connection_info)


_SLOTS: dict[tuple[int, str], WarmSlot] = {}
"""The warm slot of each thread that grades (a Dask worker grades in several threads)."""
_LOCK = threading.Lock()


def _drop(slot: WarmSlot) -> None:
    with _LOCK:
        for key in [k for k, s in _SLOTS.items() if s is slot]:
            del _SLOTS[key]
    with contextlib.suppress(Exception):
        slot.close()


def close_all(thread: int | None = None) -> None:
    """Close this process's warm slots (at exit), or those of one thread."""
    with _LOCK:
        slots = [s for k, s in _SLOTS.items() if thread is None or k[0] == thread]
    for slot in slots:
        _drop(slot)


atexit.register(close_all)


def job(settings: SandboxSettings, env: dict[str, str]) -> WarmJob | None:
    """This worker's warm slot for ``settings`` (started on first use), ready for one job.

    None when no warm interpreter can run here: the caller starts a fresh kernel instead.
    """
    thread = threading.get_ident()
    key = (thread, json.dumps([asdict(settings), env, repr(_machine.controls(settings.isolate))],
                              sort_keys=True, default=str))
    slot = _SLOTS.get(key)
    if slot is not None and not slot.alive():
        _drop(slot)
        slot = None
    if slot is None:
        close_all(thread)  # one slot per worker thread
        try:
            slot = WarmSlot(settings, env)
        except (SlotLost, OSError, RuntimeError):
            return None
        with _LOCK:
            _SLOTS[key] = slot
    return WarmJob(slot)
