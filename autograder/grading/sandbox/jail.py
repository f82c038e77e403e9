"""The jail of one job: what the kernel sees and the settings ``enter_jail.py`` reads.

The kernel's file system is an allow-list (:func:`visible_paths`): the system's programs and
libraries and the Python environment read-only (:func:`_python_binds`), the staged course package
read-only at :data:`LIB_INSIDE`, generated account files (:func:`_etc_files`) and its scratch
folder read-write at :data:`SCRATCH`; installed copies of the packages the kernel must not see
(``courselayout.MASKED_PACKAGES``) are covered by an empty folder (:func:`masks`).
:func:`jail_settings` writes it all down for :mod:`autograder.grading.inside.enter_jail`, which
builds the jail (bubblewrap, or its own chroot as root) and starts the kernel in it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from courselayout import MASKED_PACKAGES

from ..model import SandboxSettings
from . import cgroups
from .machine import privileged
from .staging import _own_tasks

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
        Where ``enter_jail.py`` builds the sandbox's root when it chroots.
    """

    scratch: Path
    lib: Path
    stage: Path


def jail_settings(folders: JobFolders, uid: int | None, bwrap: str | None,
                  settings: SandboxSettings, group: cgroups.JobGroup | None,
                  env: dict[str, str], chroot: bool = False) -> dict:
    """The settings ``enter_jail.py`` reads (see its docstring).

    ``chroot``: as root without bubblewrap, ``enter_jail.py`` builds the sandbox's root itself.
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
