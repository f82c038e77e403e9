"""What this machine offers the sandbox, probed once per process, and what is said of it.

:func:`controls` finds whether the grader runs as root (own user per job, control groups, tmpfs
scratch folders), whether bubblewrap can build a sandbox here, where the control groups are
(:mod:`cgroups`) and whether a size-limited tmpfs can be mounted; :func:`sandbox_warnings` (the
terminal) and :func:`sandbox_description` (``report.html``) say what is missing, never silently.
Also the machine's plumbing the other parts of the sandbox use: mounting a tmpfs, and a worker
process that dies with the grader (:func:`die_with_parent`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..model import SandboxSettings
from . import cgroups

MS_NOSUID, MS_NODEV, MS_NOSYMFOLLOW = 2, 4, 256
MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _size(count: int) -> str:
    """``256 MiB``, ``6.0 GiB``."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def privileged() -> bool:
    """True when the grader can switch users and create namespaces (it runs as root)."""
    return os.geteuid() == 0



def _mount_tmpfs(folder: Path, size: int, files: int, uid: int) -> None:
    options = f"size={size},nr_inodes={files},mode=0700,uid={uid},gid={uid}".encode()
    for flags in (MS_NOSUID | MS_NODEV | MS_NOSYMFOLLOW, MS_NOSUID | MS_NODEV):
        if _libc.mount(b"tmpfs", str(folder).encode(), b"tmpfs", ctypes.c_ulong(flags),
                       options) == 0:
            return
        code = ctypes.get_errno()
        if code != errno.EINVAL:  # EINVAL: a kernel without nosymfollow (before Linux 5.10)
            break
    raise OSError(code, f"mount tmpfs on {folder}: {os.strerror(code)}")


def _unmount(folder: Path) -> None:
    if _libc.umount2(str(folder).encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise OSError(code, f"umount {folder}: {os.strerror(code)}")




@dataclass
class Controls:
    """The protections available on this machine (probed once per process).

    Attributes
    ----------
    root : bool
        The grader runs as root: own uid per job, control groups, tmpfs scratch folders.
    bwrap : str or None
        bubblewrap's path when it can build a sandbox here.
    bwrap_problem : str
        Why not, otherwise.
    cgroups : cgroups.Layout
        Where the memory and pids controllers are (and why not).
    disk : bool
        Scratch folders can be size-limited tmpfs mounts.
    disk_problem : str
        Why not, otherwise.
    chroot : bool
        Root without bubblewrap, but able to make namespaces: ``enter_jail.py`` builds the allow-listed
        root itself (:func:`enter_jail.chroot_root`).
    """

    root: bool
    bwrap: str | None
    bwrap_problem: str
    cgroups: cgroups.Layout
    disk: bool
    disk_problem: str
    chroot: bool = False

    @property
    def sandboxed(self) -> bool:
        """The kernel sees the allow-list only (bubblewrap, or the grader's own chroot as root)."""
        return bool(self.bwrap) or self.chroot

    def unavailable(self) -> list[str]:
        """One sentence per protection this machine lacks (empty: everything is in force)."""
        missing = []
        if self.chroot:
            missing.append(
                f"no bubblewrap ({self.bwrap_problem}): the grader built the sandbox itself "
                "(chroot into the allow-list, own mount, network, IPC and UTS namespaces), "
                "without a PID namespace of its own ("
                + ("other users' processes are hidden, not absent)" if _proc_hides_users()
                   else "the host's processes are visible in /proc)")
            )
        elif not self.bwrap:
            missing.append(
                f"no sandbox ({self.bwrap_problem}): kernels see the host's files, processes, "
                "shared memory and network, as far as their user may"
            )
        if not self.root:
            missing.append(
                "not root: kernels run as the grader's own user (no user of their own), may read "
                "and write what that user may where the sandbox shows it"
            )
        for name, why in self.cgroups.missing.items():
            what = {"memory": "memory is limited per process only (three processes may use three "
                              "times the limit)",
                    "pids": "processes are limited per user only"}[name]
            missing.append(f"no {name} control group ({why}): {what}")
        if not self.disk:
            missing.append(f"no disk quota ({self.disk_problem}): the scratch folder is on the "
                           "host's disk, limited per file only")
        return missing


def _probe_bwrap(root: bool) -> tuple[str | None, str]:
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    command = [path, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
               "--ro-bind", "/", "/", "--proc", "/proc", "--", "true"]
    try:
        extra = {"user": 65534, "group": 65534, "extra_groups": []} if root else {}
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False,
                              **extra)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"bubblewrap could not run: {exc}"
    if done.returncode == 0 and root and not _can_unshare_mounts():
        return None, ("root cannot make a mount namespace here (no CAP_SYS_ADMIN), which the "
                      "sandbox needs to show the Python environment to the kernel's user")
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1][:300]
        return None, (f"bubblewrap cannot create namespaces here ({why}); unprivileged user "
                      "namespaces must be allowed (sysctl kernel.unprivileged_userns_clone=1, "
                      "user.max_user_namespaces > 0; in Docker: --security-opt "
                      "seccomp=unconfined --security-opt apparmor=unconfined)")
    return path, ""


def _proc_hides_users() -> bool:
    """Whether a ``/proc`` of the grader's own root may hide other users' processes here
    (``hidepid`` per mount: Linux 5.8 or newer; ``enter_jail.chroot_root``)."""
    import re

    found = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return bool(found) and (int(found[1]), int(found[2])) >= (5, 8)


def _can_unshare_mounts() -> bool:
    """Whether this process could make a mount namespace (what ``enter_jail.py`` does as root)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        CLONE_NEWNS = 0x00020000
        os._exit(0 if _libc.unshare(CLONE_NEWNS) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _probe_disk(root: bool) -> tuple[bool, str]:
    if not root:
        return False, "mounting a size-limited tmpfs needs root"
    folder = Path(tempfile.mkdtemp(prefix="dlnn-grading-probe-"))
    try:
        _mount_tmpfs(folder, 2**20, 16, 0)
        _unmount(folder)
        return True, ""
    except OSError as exc:
        return False, f"cannot mount a tmpfs ({exc.strerror or exc})"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@functools.lru_cache(maxsize=2)
def controls(isolate: bool = True) -> Controls:
    """Probe what this machine offers (cached: once per process)."""
    root = privileged()
    if isolate:
        bwrap, bwrap_problem = _probe_bwrap(root)
    else:
        bwrap, bwrap_problem = None, "switched off (isolate=False)"
    if root:
        layout = cgroups.detect()
    else:
        layout = cgroups.Layout(missing={c: "making control groups needs root"
                                         for c in cgroups.CONTROLLERS})
    disk, disk_problem = _probe_disk(root)
    chroot = isolate and root and bwrap is None and _can_unshare_mounts()
    return Controls(root, bwrap, bwrap_problem, layout, disk, disk_problem, chroot)


def sandbox_warnings(settings: SandboxSettings) -> list[str]:
    """Lines for the terminal: each protection this machine lacks (empty when all are in force)."""
    return [f"warning: sandbox weaker than it should be: {line}"
            for line in controls(settings.isolate).unavailable()]


def sandbox_description(settings: SandboxSettings) -> str:
    """One paragraph for the report: what protection the kernels had, and what was missing."""
    found = controls(settings.isolate)
    limits = (
        f"per-cell timeout {settings.cell_timeout} s, {settings.notebook_timeout} s per "
        f"notebook, {settings.cpu_s} CPU s per process, files up to "
        f"{settings.file_bytes / 2**20:.0f} MiB, output and widget messages kept up to "
        f"{settings.max_output_bytes / 2**20:.1f} MiB"
    )
    parts = []
    if found.chroot:
        parts.append(
            "each kernel ran as its own unprivileged user (a uid no other job or grader on this "
            "machine had at the same time), in a root the grader built itself (no bubblewrap: "
            "chroot, own mount, network, IPC and UTS namespaces), without network, seeing only "
            "the system's programs and libraries, the Python environment and the course package "
            "(read-only) and its own scratch folder; no socket, shared memory, /run, home or "
            "course folder of the host; "
            + ("other users' processes hidden" if _proc_hides_users() else
               "the host's processes visible in /proc (Linux older than 5.8 cannot hide them)")
        )
    elif found.bwrap:
        who = ("as its own unprivileged user (a uid no other job or grader on this machine had "
               "at the same time)" if found.root else "as the grader's own user")
        parts.append(
            f"each kernel ran under bubblewrap {who}, without network, in its own user, PID, "
            "IPC, UTS, network and mount namespaces, seeing only the system's programs and "
            "libraries, the Python environment and the course package (read-only) and its own "
            "scratch folder; no host process, socket, shared memory, /run, home or course folder"
        )
    elif found.root:
        parts.append("each kernel ran as its own unprivileged user, but without sandbox (it saw "
                     "the host)")
    else:
        parts.append("kernels ran as the grader's own user (no root rights: no user switch) "
                     "without sandbox, in a scratch folder with a clean environment")
    whole = []
    if "memory" in found.cgroups.parents:
        whole.append(f"{_size(settings.memory_bytes)} of memory")
    if "pids" in found.cgroups.parents:
        whole.append(f"{settings.processes} processes")
    if whole:
        parts.append(" and ".join(whole) + " for all of a submission's processes together "
                     f"({found.cgroups.describe()})")
    if found.disk:
        parts.append(f"a scratch folder of {_size(settings.scratch_bytes)} "
                     f"({settings.scratch_files} files)")
    parts.append(limits)
    text = "; ".join(parts)
    missing = found.unavailable()
    if missing:
        text += ". NOT IN FORCE on this machine: " + "; ".join(missing)
    return text


_IMPORTED_IN = os.getpid()
"""The process that imported this module: a worker forked from the grader's pool server
(``forkserver``) inherits the server's pid here."""


def die_with_parent() -> None:
    """Make this process die (SIGKILL) when the process that started it dies (Linux).

    Called by every grading worker process, so that killing the grader (even ``kill -9``) ends
    its workers, whose sandboxes (``--die-with-parent``) end with them.  A worker forked from the
    pool's server process dies with that server, which ends when the grader does.
    """
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    ppid = os.getppid()
    if ppid in (parent.pid, _IMPORTED_IN):
        return  # started by the grader, or forked from the server process that imported this
    if _IMPORTED_IN == os.getpid() and parent.is_alive():
        return  # forked from a server process started without the grader's preload
    os.kill(os.getpid(), signal.SIGKILL)  # the parent died before prctl: do not outlive it
