"""Staging and slots: the course package the kernel imports, the job's number, its scratch folder.

:func:`stage_library` copies the student package (``courselayout.KERNEL_PACKAGES``) and the
grader's own modules that run inside (:data:`protocol.calls.STAGED`: the recorder, its record
model, the warm interpreter) to a folder the kernel sees read-only; :class:`Slot` gives each job a
number no other job of the machine holds (its uid is ``FIRST_UID + slot``); :func:`kill_user` ends
what a job's user left; :func:`_copy_out` copies what a kernel wrote, bounded.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

from courselayout import KERNEL_PACKAGES

from ..protocol.calls import STAGED
from .machine import privileged

FIRST_UID = 200_000
"""Sandboxed kernels run as uid ``FIRST_UID + slot`` (no account is needed)."""
UID_RANGE = 50_000


def stage_library(base: Path) -> Path:
    """Copy the packages a kernel imports (the student package, the grader's staged modules) to
    ``base/lib-…``.

    The kernel imports these copies (mounted read-only), never files inside the course folder.
    """
    packages = []
    for name in KERNEL_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"the {name} package is not installed in the grading environment")
        packages.append(Path(spec.origin).parent)
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in STAGED.values()))
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    lib = base / f"lib-{digest.hexdigest()[:16]}"
    if lib.is_dir():
        os.utime(lib)  # in use: not pruned
        return lib
    staging = base / f"staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for package in packages:
        shutil.copytree(package, staging / package.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for module, path in STAGED.items():
        shutil.copy(path, staging / f"{module}.py")
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
