"""Start a Jupyter kernel inside the grading sandbox (a stand-alone script, standard library only).

Usage (the grader builds this command; nobody types it)::

    python jail.py SETTINGS.json -- python -m ipykernel_launcher -f CONNECTION_FILE

``SETTINGS.json`` holds::

    {"scratch": "/tmp/dlnn-grading-0/jobs/3",  # the only writable folder: cwd and HOME
     "lib": "/tmp/dlnn-grading-0/lib-…",       # staged packages, put on PYTHONPATH
     "uid": 200003,                            # unprivileged user (only when run as root)
     "hide": ["/work/main", ...],              # folders covered by an empty tmpfs
     "expose": ["/usr/local", ...],            # the Python installation, bound back
     "limits": {"cpu_s": 900, "memory_bytes": 4294967296, "processes": 256,
                "file_bytes": 67108864, "open_files": 256},
     "env": {"NBGRADER_EXECUTION": "autograde", ...},
     "isolate": true}

What it arranges, in this order, before replacing itself with the kernel (``execve``):

1. **As root** (the grading server): new mount and network namespaces (``unshare``), so the
   kernel has no network interface but a down loopback; every folder in ``hide`` (the course with
   its solutions, the gradebook, the input, the output of every student, root's home) is covered by
   an empty tmpfs owned by root, and ``/tmp``, ``/var/tmp`` and ``/dev/shm`` by private empty ones
   (no channel between students).  The scratch folder, the staged packages and the Python
   installation (``expose``) are bind-mounted back at the same paths.
2. Resource limits (always): CPU seconds, address space, number of processes of the user (a fork
   bomb stops there), size of any file written, open files, no core dumps.
3. **As root**: drop every group and switch to the unprivileged ``uid`` (distinct for every job
   running at the same time, so the process limit and the clean-up are per job).
4. A clean environment: no variable of the grader leaks into the kernel.

Run as an ordinary user (an instructor's laptop) steps 1 and 3 are skipped: the kernel runs as that
user, in the scratch folder, with the resource limits and the clean environment only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def isolate(scratch: str, lib: str, hide: list[str], expose: list[str]) -> None:
    """New mount + network namespaces; hide folders; private temporary folders (needs root).

    ``expose`` lists folders the kernel needs (the Python installation) that may lie inside a
    hidden or unreadable folder (e.g. ``/root/.pyenv``): they are bind-mounted back.  The tmpfs
    that cover folders belong to root (mode 755): the kernel's user cannot write there.
    """
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    # Keep handles on the folders the kernel needs before anything covers them.
    wanted = [scratch, lib, *(p for p in expose if os.path.isdir(p))]
    keep = {path: os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in wanted}
    covered = [p for p in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(p)]
    for path in covered:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    for path in sorted(set(hide)):
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    for path, fd in keep.items():
        os.makedirs(path, mode=0o755, exist_ok=True)  # inside a covering tmpfs (owned by root)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        os.close(fd)


def limit(limits: dict[str, int]) -> None:
    """Apply the resource limits (each one lowers both the soft and the hard limit)."""
    table = {
        "cpu_s": resource.RLIMIT_CPU,
        "memory_bytes": resource.RLIMIT_AS,
        "processes": resource.RLIMIT_NPROC,
        "file_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
    }
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in table.items():
        if key in limits and limits[key]:
            value = int(limits[key])
            _, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))


def main(argv: list[str]) -> None:
    settings_path, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: jail.py SETTINGS.json -- KERNEL COMMAND...")
    with open(settings_path) as stream:
        settings = json.load(stream)
    scratch, lib = settings["scratch"], settings["lib"]
    root = os.geteuid() == 0
    if root and settings.get("isolate", True):
        isolate(scratch, lib, settings.get("hide", []), settings.get("expose", []))
    if root:
        uid = int(settings["uid"])
        for path in command:  # the connection file must be readable by the kernel's user
            if path.startswith(scratch) and os.path.isfile(path):
                os.chown(path, uid, uid)
    limit(settings.get("limits", {}))
    if root:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    env = {
        "HOME": scratch,
        "TMPDIR": scratch,
        "PATH": os.path.dirname(command[0]) + ":/usr/bin:/bin",
        "PYTHONPATH": lib,
        "LANG": "C.UTF-8",
    }
    env.update(settings.get("env", {}))
    os.chdir(scratch)
    quiet = os.open(os.devnull, os.O_RDWR)  # the kernel's own console output is not grading output
    for fd in (0, 1, 2):
        os.dup2(quiet, fd)
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
