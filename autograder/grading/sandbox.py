"""Execute an untrusted notebook in a sandboxed kernel.

The notebook client (:mod:`nbclient`) runs in the grading worker; only the kernel, which executes
the student's code, runs in the sandbox (``jail.py`` starts it under bubblewrap).  It talks to the
client over Unix sockets in its scratch folder (ZeroMQ ``ipc`` transport), so it needs no network.
The client keeps at most ``max_output_bytes`` of everything the kernel sends per notebook
(outputs, display updates, widget and comm messages alike), interrupts a cell after
``cell_timeout`` seconds (the cell counts as failed, the next cells still run), and survives a
kernel that dies (``os._exit``, a segfault, a limit): the cells after it simply do not run.

What the sandbox is, as root (a grading server):

- **bubblewrap**, in new user, PID, IPC, UTS, network, mount and cgroup namespaces.  The kernel's
  file system is an allow-list (:func:`visible_paths`): the system's programs and libraries and
  the Python environment read-only, the course package (a staged copy) read-only, a generated
  ``/etc/passwd``, ``/etc/group``, ``/etc/hosts`` and ``/etc/nsswitch.conf``, its own ``/proc``
  and a minimal ``/dev``, and its scratch folder read-write, at ``/scratch`` (also ``/tmp`` and
  ``/dev/shm``).  Nothing else of the host exists for it: no checkout of the course, no input or
  output folder, no home folder, no ``/run`` (no host Unix sockets, no ``/run/lock``), no host
  process (own PID namespace: no process list, no command lines), no shared memory of anyone else
  (own IPC namespace: SysV segments and queues die with it), no network, not even loopback to the
  host (own network namespace: abstract Unix sockets of the host are unreachable too).
- **Its own user**: each job takes a *slot*, a lock file in ``/run/lock/dlnn-grading-slots``
  (machine-wide), and runs as uid ``FIRST_UID + slot``; two graders on one machine never hold the
  same slot, so they never share a uid, and neither can signal the other's kernels.
- **Limits for the submission as a whole**: a control group (:mod:`cgroups`, v1 or v2) bounds the
  memory and the processes of all the kernel's processes together; its scratch folder is a tmpfs
  of ``scratch_bytes`` (and ``scratch_files`` files) mounted for the job, so the disk it can fill is
  bounded too.  Per process: CPU seconds, address space, file size, open files.
- **Nothing is left behind**: bubblewrap dies with its parent, the grader's worker processes die
  with the grader (:func:`die_with_parent`), and after each job every process of the group and of
  the uid is killed, the tmpfs unmounted, the group removed.

What is missing is said, never silently: :func:`sandbox_warnings` (the terminal) and
:func:`sandbox_description` (``report.html``).  As an ordinary user (a laptop) bubblewrap still
gives the namespaces and the allow-list, but the kernel runs as the grader's own user, memory and
processes are limited per process only and the scratch folder is on the host's disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import hashlib
import importlib.util
import json
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from . import cgroups

JAIL = Path(__file__).with_name("jail.py")
RECORDER = Path(__file__).with_name("recorder.py")
RECORDER_MODULE = "_dlnn_grading_recorder"
RECORDS = RECORDER.with_name("records.py")  # the record model the recorder imports
RECORDS_MODULE = "_dlnn_grading_records"
ZYGOTE = RECORDER.with_name("zygote.py")  # the warm interpreter of a slot (warm.py starts it)
ZYGOTE_MODULE = "_dlnn_grading_zygote"
FIRST_UID = 200_000
"""Sandboxed kernels run as uid ``FIRST_UID + slot`` (no account is needed)."""
UID_RANGE = 50_000
SCRATCH = "/scratch"
"""The kernel's scratch folder, as the kernel sees it (working folder and ``HOME``)."""
ENV_INSIDE = "/sandbox/env"
"""Where a virtual environment (``sys.prefix``) appears inside the sandbox."""
LIB_INSIDE = "/sandbox/lib"
"""Where the staged course package appears inside the sandbox (``PYTHONPATH``)."""
SYSTEM = ["/usr/bin", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/usr/share/zoneinfo",
          "/etc/ld.so.cache", "/etc/localtime", "/etc/fonts", "/sys/devices/system/cpu"]
"""Host paths the kernel sees read-only (those that exist): programs, libraries, time zones, the
dynamic linker's cache, fontconfig's settings (matplotlib runs ``fc-list``) and the CPU topology
(read by torch and OpenBLAS)."""
TOP_LINKS = ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
"""Merged-``/usr`` links recreated as links (bound as folders where they are folders)."""
MS_NOSUID, MS_NODEV, MS_NOSYMFOLLOW = 2, 4, 256
MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


@dataclass
class SandboxSettings:
    """Limits and isolation of one kernel.

    Attributes
    ----------
    cell_timeout : int
        Seconds one cell may run before it is interrupted and counted as failed.
    notebook_timeout : int
        Seconds the whole notebook may take; then its kernel is killed (a notebook that breaks
        its kernel would otherwise time out cell after cell).
    cpu_s : int
        CPU seconds of each process (``RLIMIT_CPU``).
    memory_bytes : int
        Memory of all the kernel's processes together (control group); also the address space of
        each one (``RLIMIT_AS``), the only bound where control groups are unavailable.
    processes : int
        Processes and threads of all the kernel's processes together (control group and
        ``RLIMIT_NPROC`` of its own user; as an ordinary user this many more than the grader's
        user already runs).
    open_files : int
        Open files of each process (``RLIMIT_NOFILE``).
    file_bytes : int
        Largest file the kernel may write (``RLIMIT_FSIZE``).
    scratch_bytes : int
        Size of the scratch folder (a tmpfs; ``/tmp`` and ``/dev/shm`` are in it).
    scratch_files : int
        Files and folders the scratch folder may hold.
    max_output_bytes : int
        Everything kept from what one notebook's kernel sends (outputs, display updates, widget
        and comm messages); the rest is dropped with a note.
    isolate : bool
        Use bubblewrap (False: only the limits and a clean environment; for debugging).
    hide : list of str
        Folders that must never be visible (the grader adds the course, the input and the
        output): the sandbox refuses to expose any folder that contains one.
    warm : bool
        Fork each kernel from a warm interpreter of the worker's slot, whose imports are done
        (:mod:`warm`); False starts a fresh interpreter per notebook (slower, same sandbox).
    """

    cell_timeout: int = 120
    notebook_timeout: int = 900
    cpu_s: int = 1200
    memory_bytes: int = 6 * 2**30
    processes: int = 256
    file_bytes: int = 64 * 2**20
    open_files: int = 512
    scratch_bytes: int = 512 * 2**20
    scratch_files: int = 20_000
    max_output_bytes: int = 2 * 2**20
    isolate: bool = True
    hide: list[str] = field(default_factory=list)
    warm: bool = True


def _size(count: int) -> str:
    """``256 MiB``, ``6.0 GiB``."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def privileged() -> bool:
    """True when the grader can switch users and create namespaces (it runs as root)."""
    return os.geteuid() == 0


# ------------------------------------------------------------------------------------------------
# What this machine offers
# ------------------------------------------------------------------------------------------------


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
        Root without bubblewrap, but able to make namespaces: ``jail.py`` builds the allow-listed
        root itself (:func:`jail.chroot_root`).
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
    (``hidepid`` per mount: Linux 5.8 or newer; ``jail.chroot_root``)."""
    import re

    found = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return bool(found) and (int(found[1]), int(found[2])) >= (5, 8)


def _can_unshare_mounts() -> bool:
    """Whether this process could make a mount namespace (what ``jail.py`` does as root)."""
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


def die_with_parent() -> None:
    """Make this process die (SIGKILL) when the process that started it dies (Linux).

    Called by every grading worker process, so that killing the grader (even ``kill -9``) ends
    its workers, whose sandboxes (``--die-with-parent``) end with them.
    """
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent.pid:  # the parent died before prctl: do not outlive it
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------------------
# Staging, slots, scratch folders
# ------------------------------------------------------------------------------------------------


def stage_library(base: Path) -> Path:
    """Copy the packages a kernel imports (``dlnn_helpers``, the recorder) to ``base/lib-…``.

    The kernel imports these copies (mounted read-only), never files inside the course folder.
    """
    spec = importlib.util.find_spec("dlnn_helpers")
    if spec is None or spec.origin is None:
        raise RuntimeError("the dlnn_helpers package is not installed in the grading environment")
    package = Path(spec.origin).parent
    digest = hashlib.sha256(RECORDER.read_bytes() + RECORDS.read_bytes() + ZYGOTE.read_bytes())
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    lib = base / f"lib-{digest.hexdigest()[:16]}"
    if lib.is_dir():
        os.utime(lib)  # in use: not pruned
        return lib
    staging = base / f"staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(package, staging / "dlnn_helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(RECORDER, staging / f"{RECORDER_MODULE}.py")
    shutil.copy(RECORDS, staging / f"{RECORDS_MODULE}.py")
    shutil.copy(ZYGOTE, staging / f"{ZYGOTE_MODULE}.py")
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        staging.rename(lib)
    except OSError:  # another worker staged it first
        shutil.rmtree(staging, ignore_errors=True)
    for old in base.glob("lib-*"):  # copies of earlier versions, unused for a day
        try:
            if old != lib and time.time() - old.stat().st_mtime > 86_400:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return lib


def scratch_base() -> Path:
    """The folder of this machine holding staged packages and per-job scratch folders."""
    base = Path(tempfile.gettempdir()) / f"dlnn-grading-{os.geteuid()}"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    return base


def _slot_folder() -> Path:
    """Where the slot locks live: machine-wide as root (every grader of the machine uses it)."""
    if privileged():
        lock = Path("/run/lock")
        folder = (lock if lock.is_dir() else Path("/tmp")) / "dlnn-grading-slots"
    else:
        folder = scratch_base() / "slots"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class Slot:
    """A number no other job of this machine holds now (a ``flock`` held for the job).

    Released when closed, or by the kernel when the holding process dies.
    """

    def __init__(self, exclude: frozenset[int] = frozenset()) -> None:
        folder = _slot_folder()
        for number in range(UID_RANGE):
            if number in exclude:
                continue
            fd = os.open(folder / str(number), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.number, self._fd = number, fd
            return
        raise RuntimeError(f"all {UID_RANGE} sandbox slots are taken")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def kill_user(uid: int) -> None:
    """Kill every process of the sandbox user ``uid`` (what a kernel left behind)."""
    if not privileged():
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(3):  # what forked meanwhile
                os.kill(-1, signal.SIGKILL)  # every process this user may signal: its own
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _own_tasks() -> int:
    """Processes and threads of this user now (``RLIMIT_NPROC`` counts them all)."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == os.getuid():
                count += len(os.listdir(entry / "task"))
        except OSError:
            continue
    return count


def _copy_out(source: Path, target: Path, budget: int, depth: int = 0) -> int:
    """Copy regular files and folders (never links, FIFOs, devices) up to ``budget`` bytes."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        entries = list(os.scandir(source))[:10_000]
    except OSError:
        return budget
    for entry in entries:
        if budget <= 0:
            break
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode) and depth < 4:
                budget = _copy_out(Path(entry.path), target / entry.name, budget, depth + 1)
            elif stat.S_ISREG(mode):
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as src, open(target / entry.name, "wb") as dst:
                    if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                        continue
                    while budget > 0 and (chunk := src.read(min(budget, 2**20))):
                        dst.write(chunk)
                        budget -= len(chunk)
        except OSError:
            continue
    return budget


def _read_tail(path: Path, size: int = 2000) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        stream.seek(max(0, os.fstat(fd).st_size - size))
        return stream.read(size).decode("utf-8", "replace")


def _python_binds() -> tuple[list[tuple[str, str]], str]:
    """``(host folder, folder inside)`` of the Python installation, and the interpreter inside.

    A virtual environment appears at :data:`ENV_INSIDE` (wherever it lies on the host, e.g. in a
    checkout of the course); the base interpreter at its own path (a venv refers to it by path).
    """
    prefix, base = os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)
    binds = []
    executable = sys.executable
    if prefix != base:
        binds.append((prefix, ENV_INSIDE))
        executable = f"{ENV_INSIDE}/bin/{os.path.basename(sys.executable)}"
    installed = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
    for folder in sorted({base, installed}):
        covered = any(folder == s or folder.startswith(s + "/") for s in SYSTEM)
        if folder not in (prefix, "/", "/usr") and not covered:
            binds.append((folder, folder))
    return binds, executable


def _etc_files(uid: int) -> dict[str, str]:
    """The sandbox's own account files: its user, and no one else's."""
    return {
        "/etc/passwd": (f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
                        f"student:x:{uid}:{uid}:student:{SCRATCH}:/usr/sbin/nologin\n"
                        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        "/etc/group": f"root:x:0:\nstudent:x:{uid}:\nnogroup:x:65534:\n",
        "/etc/hosts": "127.0.0.1 localhost sandbox\n::1 localhost sandbox\n",
        "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }


@dataclass(frozen=True)
class JobFolders:
    """The host folders of one job's sandbox.

    Attributes
    ----------
    scratch : Path
        The kernel's writable scratch folder (``/scratch`` inside).
    lib : Path
        The staged course package (read-only inside, at ``LIB_INSIDE``).
    stage : Path
        Where ``jail.py`` builds the sandbox's root when it chroots.
    """

    scratch: Path
    lib: Path
    stage: Path


def jail_settings(folders: JobFolders, uid: int | None, bwrap: str | None,
                  settings: SandboxSettings, group: cgroups.JobGroup | None,
                  env: dict[str, str], chroot: bool = False) -> dict:
    """The settings ``jail.py`` reads (see its docstring).

    ``chroot``: as root without bubblewrap, ``jail.py`` builds the sandbox's root itself.
    """
    scratch, lib, stage = folders.scratch, folders.lib, folders.stage
    sandboxed = bool(bwrap) or (chroot and uid is not None)
    processes = settings.processes + (0 if privileged() else _own_tasks())
    if group is not None and "pids" in group.folders:
        processes += 16  # the control group is the bound (and counts what hit it)
    limits = {
        "cpu_s": settings.cpu_s,
        "memory_bytes": settings.memory_bytes,
        "processes": processes,
        "file_bytes": settings.file_bytes,
        "open_files": settings.open_files,
    }
    python, executable = _python_binds()
    binds = [(path, path, "ro") for path in SYSTEM if os.path.exists(path)]
    binds += [(source, target, "ro") for source, target in python]
    empty = lib.parent / "empty"
    empty.mkdir(mode=0o755, exist_ok=True)
    binds += masks(binds, str(empty))
    binds += [(str(lib), LIB_INSIDE, "ro"), (str(scratch), SCRATCH, "rw")]
    for source, _, _ in binds:
        for hidden in settings.hide:
            if hidden == source or hidden.startswith(source.rstrip("/") + "/"):
                raise RuntimeError(f"the sandbox would expose {hidden} (it lies in {source})")
    symlinks = []
    for path in TOP_LINKS:
        if os.path.islink(path):
            symlinks.append((os.readlink(path), path))
        elif os.path.isdir(path):
            binds.insert(0, (path, path, "ro"))
    return {
        "scratch": str(scratch),
        "inside": SCRATCH if sandboxed else str(scratch),
        "uid": uid,
        "cgroups": group.procs_files if group else [],
        "bwrap": bwrap,
        "chroot": sandboxed and not bwrap,
        "stage": str(stage),
        "binds": binds,
        "scratch_bind": len(binds) - 1,
        "symlinks": symlinks,
        "files": _etc_files(uid if uid is not None else os.getuid()),
        "python": executable if sandboxed else sys.executable,
        "lib": LIB_INSIDE if sandboxed else str(lib),
        "limits": limits,
        "env": env,
    }


INSTRUCTOR_PACKAGES = ("dlnn_reference",)
"""Instructor-only packages (the reference answers): never importable in the kernel."""
MASKED_PACKAGES = (*INSTRUCTOR_PACKAGES, "dlnn_helpers")
"""Packages whose installed copies are hidden from the kernel where a bound folder holds them (the
kernel imports the staged ``dlnn_helpers`` only, whose expected data the checks watch)."""


def _installed_folder(name: str) -> str | None:
    """The folder of the installed package ``name`` (None: not installed, or a single file)."""
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    locations = list(found.submodule_search_locations)
    return os.path.realpath(locations[0]) if locations else None


def masks(binds: list[tuple[str, str, str]], empty: str) -> list[tuple[str, str, str]]:
    """Binds of the empty folder ``empty`` over every copy of :data:`MASKED_PACKAGES` that a bound
    folder would show the kernel (a non-editable install in the environment, say).

    An editable install points outside every bound folder (into the course's checkout, which the
    kernel never sees): nothing to hide then.
    """
    hidden = []
    for name in MASKED_PACKAGES:
        folder = _installed_folder(name)
        if folder is None:
            continue
        for source, target, _ in binds:
            real = os.path.realpath(source)
            if folder == real or folder.startswith(real.rstrip("/") + "/"):
                hidden.append((empty, target.rstrip("/") + folder[len(real.rstrip("/")):], "ro"))
    return hidden


def visible_paths() -> list[str]:
    """Every top-level path the kernel sees besides ``/proc``, ``/dev`` and ``/tmp`` (docs, tests)."""
    python, _ = _python_binds()
    paths = [p for p in SYSTEM if os.path.exists(p)] + [t for _, t in python]
    paths += [p for p in TOP_LINKS if os.path.lexists(p)]
    return sorted({*paths, LIB_INSIDE, SCRATCH, *_etc_files(0)})


# ------------------------------------------------------------------------------------------------
# Running a notebook
# ------------------------------------------------------------------------------------------------


class _JailedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel through ``jail.py``."""

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
        """Write the settings of ``jail.py`` for this box (readable by root only)."""
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
        """A kernel manager that starts a fresh kernel in this box (through ``jail.py``)."""
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
