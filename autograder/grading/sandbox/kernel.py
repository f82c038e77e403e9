"""Running a kernel in a job's sandbox: :class:`Box` (slot, user, scratch folder, control group).

A box takes a slot (:mod:`staging`), prepares its scratch folder (a size-limited tmpfs where the
machine offers it, :mod:`machine`) and control group (:mod:`cgroups`), and starts a fresh kernel
through ``enter_jail.py`` with the settings of :mod:`jail` (:meth:`Box.kernel_manager`; the warm
slots of :mod:`warm` fork kernels instead).  When the job ends it kills everything of the job and
says what the limits caught (:func:`limit_problems`, :func:`scratch_problems`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from ..model import SandboxSettings
from ..protocol.calls import ENTER_JAIL
from . import cgroups
from .jail import SCRATCH, JobFolders, jail_settings
from .machine import _mount_tmpfs, _size, _unmount, controls
from .staging import FIRST_UID, Slot, _read_tail, kill_user, scratch_base, stage_library

JAIL = ENTER_JAIL
"""The script that builds the jail and starts the kernel in it."""


class _JailedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel through ``enter_jail.py``."""

    jail_settings: str = ""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        return [sys.executable, str(JAIL), self.jail_settings, "--", *command]


class Box:
    """One job's sandbox: slot, user, scratch folder, control group (a context manager).

    :func:`execute` uses it; tests use it to run a plain command in the same sandbox
    (:meth:`run`).
    """

    SLOT_TRIES = 3

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.found = controls(settings.isolate)
        self.base = scratch_base()
        # A slot whose leftovers (a killed grader's scratch folder or control group, its dying
        # processes) cannot be cleared now is kept locked and the next free one is taken, so that
        # one grader's remains never fail another grader's job.
        stale: list[Slot] = []
        try:
            while True:
                self.slot = Slot(exclude=frozenset(s.number for s in stale))
                try:
                    self._prepare()
                    return
                except OSError:
                    if len(stale) + 1 >= self.SLOT_TRIES:
                        raise
                    with contextlib.suppress(OSError):
                        self.close(release=False)
                    stale.append(self.slot)
        except BaseException:
            self.close()
            raise
        finally:
            for slot in stale:
                slot.close()

    def _prepare(self) -> None:
        """Set up the scratch folder, the user and the control group of ``self.slot``."""
        settings = self.settings
        self.group = None
        self.uid = FIRST_UID + self.slot.number if self.found.root else None
        jobs = self.base / "jobs"
        jobs.mkdir(mode=0o711, exist_ok=True)
        self.scratch = jobs / f"s{self.slot.number}"
        self.jail_file = jobs / f"s{self.slot.number}.jail.json"
        self.stage = self.base / "stage" if self.found.root else jobs / f"s{self.slot.number}.etc"
        self._clean()  # what a killed grader that held this slot left
        self.scratch.mkdir(mode=0o700)
        self.mounted = False
        if self.found.disk:
            _mount_tmpfs(self.scratch, settings.scratch_bytes, settings.scratch_files,
                         self.uid or 0)
            self.mounted = True
        self.stage.mkdir(mode=0o755, exist_ok=True)
        for sub in (".tmp", ".shm"):
            (self.scratch / sub).mkdir(mode=0o700)
        if self.uid is not None:
            for path in (self.scratch, self.scratch / ".tmp", self.scratch / ".shm"):
                os.chown(path, self.uid, self.uid)
        self.group = None
        if self.found.cgroups.parents:
            self.group = cgroups.JobGroup(self.found.cgroups, f"s{self.slot.number}",
                                          settings.memory_bytes, settings.processes)

    def _clean(self) -> None:
        if self.uid is not None:
            kill_user(self.uid)
        if self.scratch.exists():
            _unmount(self.scratch)
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.jail_file.unlink(missing_ok=True)
        if not self.found.root:
            shutil.rmtree(self.stage, ignore_errors=True)

    def write_jail(self, lib: Path, env: dict[str, str]) -> Path:
        """Write the settings of ``enter_jail.py`` for this box (readable by root only)."""
        data = jail_settings(JobFolders(self.scratch, lib, self.stage), self.uid,
                             self.found.bwrap, self.settings, self.group, env,
                             chroot=self.found.chroot)
        fd = os.open(self.jail_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(data, stream)
        return self.jail_file

    def start(self, code: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start Python ``code`` in this sandbox, as a kernel would start (for tests and probes).

        The same jail, user, limits and folders as a kernel's; what the code prints (stdout and
        stderr) goes to the scratch folder's ``.sandbox.log`` (:meth:`log`).
        """
        script = self.scratch / "probe.py"
        script.write_text(code)
        if self.uid is not None:
            os.chown(script, self.uid, self.uid)
        inside = SCRATCH if self.found.sandboxed else str(self.scratch)
        jail = self.write_jail(stage_library(self.base), env or {})
        return subprocess.Popen([sys.executable, str(JAIL), str(jail), "--", sys.executable,
                                 f"{inside}/probe.py"], start_new_session=True)

    def log(self) -> str:
        """What the sandboxed command wrote (the last MiB)."""
        return _read_tail(self.scratch / ".sandbox.log", 2**20)

    def run(self, code: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        """Run Python ``code`` in this sandbox (:meth:`start`) and wait; its output as stdout."""
        process = self.start(code, env)
        try:
            process.wait(timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return subprocess.CompletedProcess(code, process.returncode, self.log(), "")

    def finish(self) -> list[str]:
        """Kill everything of the job; the problems the limits caught (sentences)."""
        if self.group is not None:
            self.group.kill()
        problems = limit_problems(self.group, self.settings)
        if self.uid is not None:
            kill_user(self.uid)
        return problems + scratch_problems(self.scratch, self.settings, self.mounted)

    def kernel_manager(self, env: dict[str, str]) -> _JailedKernelManager:
        """A kernel manager that starts a fresh kernel in this box (through ``enter_jail.py``)."""
        jail = self.write_jail(stage_library(self.base), env)
        km = _JailedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(self.scratch / "kernel"),
            connection_file=str(self.scratch / "kernel.json"),
        )
        km.jail_settings = str(jail)
        return km

    def memory_peak(self) -> int | None:
        """Most memory the job's processes used together (bytes), where control groups tell."""
        return self.group.memory_peak() if self.group is not None else None

    def close(self, release: bool = True) -> None:
        """Remove the scratch folder and the group; release the slot (unless ``release`` is
        False)."""
        try:
            if getattr(self, "group", None) is not None:
                self.group.remove()
                self.group = None
            if hasattr(self, "scratch"):
                self._clean()
        finally:
            if release:
                self.slot.close()

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def limit_problems(group: cgroups.JobGroup | None, settings: SandboxSettings) -> list[str]:
    """What the job's control group caught (sentences): memory or processes over the limits."""
    problems = []
    if group is None:
        return problems
    if group.oom_kills():
        problems.append(
            f"the notebook's processes together needed more than "
            f"{_size(settings.memory_bytes)} of memory: "
            f"{group.oom_kills()} of them were stopped"
        )
    if group.process_limit_hits():
        problems.append(f"the notebook tried to run more than {settings.processes} "
                        "processes and threads at once")
    return problems


def scratch_problems(scratch: Path, settings: SandboxSettings, mounted: bool) -> list[str]:
    """Whether the job filled its scratch folder (a sentence), where it is a size-limited tmpfs."""
    if not mounted:
        return []
    try:
        usage = os.statvfs(scratch)
    except OSError:
        return []
    room = usage.f_bavail * usage.f_frsize
    if room < max(2**20, settings.scratch_bytes // 100) or usage.f_favail < 10:
        return [f"the notebook filled its scratch folder ({_size(settings.scratch_bytes)}, "
                f"{settings.scratch_files} files)"]
    return []
