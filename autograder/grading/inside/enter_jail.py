"""Start a Jupyter kernel inside the grading sandbox (a stand-alone script, standard library only).

Usage (the grader builds this command; nobody types it)::

    python enter_jail.py SETTINGS.json -- python -m ipykernel_launcher -f CONNECTION_FILE

``SETTINGS.json`` (written by :mod:`autograder.grading.sandbox.jail`, readable by root only) holds::

    {"scratch": "/tmp/dlnn-grading-0/jobs/s3",     # host folder: a size-limited tmpfs as root
     "inside": "/scratch",                          # where the kernel sees it (cwd and HOME)
     "uid": 200003,                                 # the job's own user (as root), else null
     "cgroups": [".../dlnn-grading/s3/cgroup.procs", ...],
     "bwrap": "/usr/bin/bwrap",                     # null: no bubblewrap (see "chroot")
     "chroot": false,                               # as root without bubblewrap: our own root
     "stage": "/tmp/dlnn-grading-0/stage",          # an empty folder (as root, see below)
     "binds": [["/usr/lib", "/usr/lib", "ro"], ["/work/main/.venv", "/sandbox/env", "ro"], ...,
               ["/tmp/dlnn-grading-0/jobs/s3", "/scratch", "rw"]],
     "scratch_bind": 12,                            # which of the binds is the scratch folder
     "symlinks": [["usr/lib", "/lib"], ...],
     "files": {"/etc/passwd": "student:x:200003:...", ...},
     "python": "/sandbox/env/bin/python",           # the kernel's interpreter inside
     "lib": "/sandbox/lib",                         # the staged course package (PYTHONPATH)
     "limits": {"cpu_s": 900, "memory_bytes": 4294967296, "processes": 256,
                "file_bytes": 67108864, "open_files": 512},
     "env": {"NBGRADER_EXECUTION": "autograde", ...}}

What it does, in this order, then replaces itself with bubblewrap (``execve``), which starts the
kernel:

1. **As root**: joins the job's control groups (memory and processes of the whole submission,
   :mod:`cgroups`); then, in a mount namespace of its own (private: nothing it mounts is seen by
   the host and all of it vanishes with the sandbox), mounts a small tmpfs on ``stage`` and
   bind-mounts there every folder the kernel may see.  bubblewrap then runs as the unprivileged
   job user, who could not reach e.g. ``/root/.pyenv`` by path, and takes its folders from there.
2. Resource limits (always): CPU seconds, address space per process, processes of the user, size
   of a file, open files, no core dumps.
3. **As root**: drops every group and becomes the job's own ``uid``.
4. bubblewrap builds the sandbox: new user, PID, IPC, UTS, network, mount (and cgroup)
   namespaces; a root made of the allow-listed folders only (read-only), ``/proc`` of its own PID
   namespace, a minimal ``/dev``, the scratch folder read-write at ``inside`` (also ``/tmp`` and
   ``/dev/shm``, so every byte written counts against the one size limit); no user namespace
   inside; dies with its parent.  The kernel gets a clean environment.

**As root without bubblewrap** (``"chroot": true``: bubblewrap is not installed, but root can make
namespaces) this script builds the same allow-listed root itself, with the kernel's standard
library: new mount, network, IPC and UTS namespaces; a tmpfs root holding the same read-only binds
at the same places as bubblewrap's (the Python environment at ``/sandbox/env``, the base
interpreter at its own path, however private its folder is on the host), the generated ``/etc``
files, the scratch folder read-write (also ``/tmp`` and ``/dev/shm``), a few devices and a
``/proc`` that hides other users' processes (``hidepid=2``); then ``chroot`` into it, drops to the
job's user with ``no_new_privs`` and dies with its parent.  What it lacks compared with bubblewrap:
a PID namespace of its own (host processes of other users are hidden, not absent) and the user
namespace.

Without either (``"bwrap": null``, ``"chroot": false``) the kernel starts directly in the scratch
folder with the limits and the clean environment only; the grader reports that weaker mode.

Everything this script, bubblewrap and the kernel's console print goes to ``.sandbox.log`` in the
scratch folder (the grader quotes its last line when a kernel does not start).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
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
        _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                    ctypes.c_ulong(flags), data.encode() if data else None),
        f"mount {target}",
    )


def join_cgroups(procs_files: list[str]) -> None:
    """Put this process (and so everything it starts) in the job's control groups."""
    for path in procs_files:
        with open(path, "w") as stream:
            stream.write(str(os.getpid()))


def stage(folder: str, binds: list[list[str]], files: dict[str, str]) -> list[str]:
    """Bind every source under ``folder`` in a private mount namespace; return the staged paths.

    ``files`` are written there too (mode 644, owned by root): the sandbox's own ``/etc/passwd``
    and the like.  Needs root.
    """
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1000,mode=755")
    staged = []
    for number, (source, _, _) in enumerate(binds):
        target = os.path.join(folder, str(number))
        if os.path.isdir(source):
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(source, target, None, MS_BIND | MS_REC, None)
        staged.append(target)
    for number, text in enumerate(files.values()):
        target = os.path.join(folder, f"file-{number}")
        with open(target, "w") as stream:
            stream.write(text)
        os.chmod(target, 0o644)
        staged.append(target)
    return staged


DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
"""The host devices a chroot sandbox shows in its ``/dev`` (bubblewrap's ``--dev`` has the same)."""


def _under(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _node(path: str, folder: bool) -> None:
    """Create ``path`` (and its parents, mode 755) as an empty folder or file, to mount on."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if folder:
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _bind(source: str, target: str, read_only: bool) -> None:
    _node(target, os.path.isdir(source))
    _mount(source, target, None, MS_BIND | MS_REC, None)
    if read_only:
        _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
               None)


def chroot_root(folder: str, settings: dict) -> None:
    """As root without bubblewrap: build the sandbox's root in ``folder`` and ``chroot`` into it.

    New mount, network, IPC and UTS namespaces (private: nothing mounted here is seen by the host);
    a tmpfs root with the binds of ``settings`` at their places inside (read-only but the scratch
    folder), the generated files, ``/tmp`` and ``/dev/shm`` in the scratch folder, a minimal
    ``/dev`` and a ``/proc`` that hides every other user's processes.  Needs root; the caller then
    drops to the job's user.
    """
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4000,mode=755")
    for source, target, mode in settings["binds"]:
        _bind(source, _under(folder, target), mode == "ro")
    for target, link in settings.get("symlinks", []):
        os.makedirs(os.path.dirname(_under(folder, link)), mode=0o755, exist_ok=True)
        os.symlink(target, _under(folder, link))
    for path, text in settings.get("files", {}).items():
        target = _under(folder, path)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        with open(target, "w") as stream:
            stream.write(text)
        os.chmod(target, 0o644)
    scratch = settings["scratch"]
    _bind(os.path.join(scratch, ".tmp"), _under(folder, "/tmp"), False)
    _bind(os.path.join(scratch, ".shm"), _under(folder, "/dev/shm"), False)
    for device in DEVICES:
        if os.path.exists(f"/dev/{device}"):
            _bind(f"/dev/{device}", _under(folder, f"/dev/{device}"), False)
    proc = _under(folder, "/proc")
    _node(proc, True)
    # Before Linux 5.8 every /proc of a PID namespace shares its options: hidepid would change the
    # host's /proc too, so it is set on newer kernels only.
    found = re.match(r"(\d+)\.(\d+)", os.uname().release)
    release = (int(found[1]), int(found[2])) if found else (0, 0)
    _mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           "hidepid=2" if release >= (5, 8) else None)
    hostname = b"sandbox"
    _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    _mount("none", folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    os.chroot(folder)
    os.chdir("/")


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


def bwrap_command(settings: dict, sources: list[str], command: list[str]) -> list[str]:
    """The bubblewrap command line that runs ``command`` in the sandbox.

    ``sources`` are the paths to bind (the staged ones as root, the originals otherwise), in the
    order of ``settings["binds"]`` then ``settings["files"]``.
    """
    inside = settings["inside"]
    argv = [settings["bwrap"], "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--hostname", "sandbox"]
    if settings.get("uid") is not None:
        argv += ["--uid", str(settings["uid"]), "--gid", str(settings["uid"])]
    binds = settings["binds"]
    for source, (_, target, mode) in zip(sources, binds, strict=False):
        argv += ["--ro-bind" if mode == "ro" else "--bind", source, target]
    for (target, link) in settings.get("symlinks", []):
        argv += ["--symlink", target, link]
    for source, target in zip(sources[len(binds):], settings.get("files", {}), strict=False):
        argv += ["--ro-bind", source, target]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--bind", sources[settings["scratch_bind"]] + "/.shm", "/dev/shm",
             "--bind", sources[settings["scratch_bind"]] + "/.tmp", "/tmp",
             "--remount-ro", "/", "--remount-ro", "/dev", "--chdir", inside, "--", *command]
    return argv


def main(argv: list[str]) -> None:
    settings_path, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: jail.py SETTINGS.json -- KERNEL COMMAND...")
    with open(settings_path) as stream:
        settings = json.load(stream)
    scratch = settings["scratch"]
    uid = settings.get("uid") if os.geteuid() == 0 else None
    # What this script, bubblewrap and the kernel's console say goes to a log in the scratch
    # folder, where the grader reads why a kernel did not start (the notebook's output goes to
    # the grader over the kernel's sockets).
    log = os.open(os.path.join(scratch, ".sandbox.log"),
                  os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    if uid is not None:
        os.fchown(log, uid, uid)
    quiet = os.open(os.devnull, os.O_RDONLY)
    os.dup2(quiet, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        start(settings, uid, command)
    except Exception as exc:  # noqa: BLE001 - one line for the grader's report
        print(f"jail: {type(exc).__name__}: {exc}", flush=True)
        raise SystemExit(1) from None


def start(settings: dict, uid: int | None, command: list[str]) -> None:
    """Everything after the log is open: the steps of the module docstring, then ``execve``."""
    scratch, inside = settings["scratch"], settings["inside"]
    chrooted = bool(settings.get("chroot")) and uid is not None
    sandboxed = bool(settings.get("bwrap")) or chrooted
    if uid is not None:
        join_cgroups(settings.get("cgroups", []))
    if sandboxed:
        # The kernel sees the scratch folder at ``inside``: its connection file says so.
        for index, arg in enumerate(command):
            if arg.startswith(scratch + os.sep) and arg.endswith(".json"):
                with open(arg) as stream:
                    info = json.load(stream)
                if str(info.get("ip", "")).startswith(scratch + os.sep):
                    info["ip"] = inside + info["ip"][len(scratch):]
                copy = os.path.join(scratch, ".kernel-inside.json")
                fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "w") as stream:
                    json.dump(info, stream)
                if uid is not None:
                    os.chown(copy, uid, uid)
                command[index] = inside + copy[len(scratch):]
        command[0] = settings["python"]
    if chrooted:
        chroot_root(settings["stage"], settings)
        executable, run = command[0], command
    elif sandboxed:
        sources = [source for source, _, _ in settings["binds"]]
        if uid is not None:
            sources = stage(settings["stage"], settings["binds"], settings.get("files", {}))
        else:
            sources += [_write_private(settings["stage"], i, text)
                        for i, text in enumerate(settings.get("files", {}).values())]
        executable = settings["bwrap"]
        run = bwrap_command(settings, sources, command)
    else:
        executable, run = command[0], command
    limit(settings.get("limits", {}))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if chrooted:  # what bubblewrap does for its child: no setuid gain, die with the worker
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
        _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl")
    env = {
        "HOME": inside if sandboxed else scratch,
        "TMPDIR": "/tmp" if sandboxed else scratch,
        "PATH": os.path.dirname(command[0]) + ":/usr/bin:/bin",
        "PYTHONPATH": settings["lib"],
        "LANG": "C.UTF-8",
    }
    env.update(settings.get("env", {}))
    os.chdir(inside if chrooted else scratch)
    os.execve(executable, run, env)


def _write_private(folder: str, number: int, text: str) -> str:
    """Write a file to bind into the sandbox (as an ordinary user: in the job's own folder)."""
    path = os.path.join(folder, f"file-{number}")
    with open(path, "w") as stream:
        stream.write(text)
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
