"""Memory and process limits for a whole submission: Linux control groups, v1 and v2.

A resource limit (``setrlimit``) bounds one process; a notebook that starts three children has
three budgets.  A control group bounds every process of the submission together: the grader
creates one group per job with the ``memory`` and ``pids`` controllers, the sandbox launcher
(``enter_jail.py``) puts itself in it before it starts the kernel, and everything the kernel starts stays
in it.  After the run the grader kills what is left in the group, reads whether the memory limit
was hit, and removes the group.

Both layouts are supported, controller by controller: cgroup v2 (the unified hierarchy: a
controller listed in its ``cgroup.controllers``) and cgroup v1 (one hierarchy per controller, as
this project's test machine mounts them).  The groups are made under the grader's own group
(``…/dlnn-grading/<job>``) so that limits set above the grader still apply; with v2, whose rule
"no processes in a group that delegates controllers" forbids that when the grader's group holds
processes, under the root of the hierarchy instead.  Where no layout offers a controller (not root,
no such hierarchy, a container without delegation), :func:`detect` says why, and the grader reports
it: the sandbox then keeps only the per-process limits.

Standard library only: ``enter_jail.py`` runs as a stand-alone script.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("memory", "pids")
GROUP = "dlnn-grading"


@dataclass
class Layout:
    """Where each controller lives on this machine.

    Attributes
    ----------
    parents : dict
        Controller -> ``(version, folder)``: the folder (``…/dlnn-grading``) under which job groups
        are made, ``version`` 1 or 2.
    missing : dict
        Controller -> why it is unavailable (one sentence).
    """

    parents: dict[str, tuple[int, Path]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``memory: cgroup v1, pids: cgroup v1`` (what the report says)."""
        return ", ".join(
            f"{name}: cgroup v{self.parents[name][0]}" if name in self.parents else f"{name}: none"
            for name in CONTROLLERS
        )


def _mounts(mountinfo: Path) -> list[tuple[str, str, set[str]]]:
    """``(mount point, filesystem type, super options)`` of every cgroup mount."""
    found = []
    for line in mountinfo.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            point = fields[4].replace("\\040", " ")
            found.append((point, tail[0], set(tail[2].split(","))))
    return found


def _own_groups(proc_cgroup: Path) -> dict[str, str]:
    """Controller (or ``""`` for v2) -> the group of this process, from ``/proc/self/cgroup``."""
    groups = {}
    for line in proc_cgroup.read_text().splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            groups[name] = path
    return groups


def _write(path: Path, text: str) -> None:
    with open(path, "w") as stream:
        stream.write(text)


def _v2_parent(mount: Path, own: str, controllers: list[str]) -> tuple[Path | None, str]:
    """Make ``dlnn-grading`` delegating ``controllers`` under the grader's group or the root."""
    reasons = []
    for base in dict.fromkeys([mount / own.lstrip("/"), mount]):
        try:
            offered = (base / "cgroup.controllers").read_text().split()
            if not set(controllers) <= set(offered):
                reasons.append(f"{base} does not offer {' and '.join(controllers)}")
                continue
            enabled = (base / "cgroup.subtree_control").read_text().split()
            todo = [c for c in controllers if c not in enabled]
            if todo:
                _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in todo))
            parent = base / GROUP
            parent.mkdir(exist_ok=True)
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            todo = [c for c in controllers if c not in enabled]
            if todo:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in todo))
            return parent, ""
        except OSError as exc:
            reasons.append(f"{base}: {exc.strerror or exc}")
    return None, "; ".join(reasons)


def detect(mountinfo: Path = Path("/proc/self/mountinfo"),
           proc_cgroup: Path = Path("/proc/self/cgroup")) -> Layout:
    """Find (and prepare) where job groups can be made; never raises.

    Parameters
    ----------
    mountinfo, proc_cgroup : Path
        The files describing this process's mounts and groups (tests pass fakes).

    Returns
    -------
    Layout
    """
    layout = Layout()
    try:
        mounts = _mounts(mountinfo)
        own = _own_groups(proc_cgroup)
    except (OSError, ValueError) as exc:
        layout.missing = {c: f"cannot read the cgroup mounts ({exc})" for c in CONTROLLERS}
        return layout
    v2 = next((Path(point) for point, kind, _ in mounts if kind == "cgroup2"), None)
    v2_offered: set[str] = set()
    if v2 is not None:
        try:
            v2_offered = set((v2 / "cgroup.controllers").read_text().split())
        except OSError:
            pass
    wanted_v2 = [c for c in CONTROLLERS if c in v2_offered]
    if wanted_v2:
        parent, why = _v2_parent(v2, own.get("", "/"), wanted_v2)
        for name in wanted_v2:
            if parent is not None:
                layout.parents[name] = (2, parent)
            else:
                layout.missing[name] = f"cgroup v2 offers it but no group can delegate it ({why})"
    for name in CONTROLLERS:
        if name in layout.parents or name in layout.missing:
            continue
        point = next((Path(p) for p, kind, opts in mounts if kind == "cgroup" and name in opts),
                     None)
        if point is None:
            layout.missing[name] = ("neither a cgroup v1 hierarchy nor cgroup v2 provides the "
                                    f"{name} controller")
            continue
        parent = point / own.get(name, "/").lstrip("/") / GROUP
        try:
            parent.mkdir(exist_ok=True)
            if name == "memory" and (parent / "memory.use_hierarchy").is_file():
                if (parent / "memory.use_hierarchy").read_text().strip() != "1":
                    _write(parent / "memory.use_hierarchy", "1")
            layout.parents[name] = (1, parent)
        except OSError as exc:
            layout.missing[name] = f"cannot make a cgroup v1 group in {parent.parent} ({exc.strerror})"
    return layout


class JobGroup:
    """The control groups of one job (one per controller; the same folder with v2).

    Parameters
    ----------
    layout : Layout
        From :func:`detect`.
    name : str
        Unique among the jobs running now (the sandbox slot).
    memory_bytes : int
        Memory of every process of the job together (swap included where it can be limited).
    processes : int
        Processes and threads of the job together.
    """

    def __init__(self, layout: Layout, name: str, memory_bytes: int, processes: int) -> None:
        self.folders: dict[str, tuple[int, Path]] = {}
        for controller, (version, parent) in layout.parents.items():
            folder = parent / name
            self.folders[controller] = (version, folder)
        for _, folder in set(self.folders.values()):
            if folder.is_dir():  # left by a killed grader that held this slot: start clean
                self._empty(folder)
                _rmdir(folder)
            folder.mkdir()
        if "memory" in self.folders:
            version, folder = self.folders["memory"]
            if version == 2:
                _write(folder / "memory.max", str(memory_bytes))
                _try_write(folder / "memory.swap.max", "0")
            else:
                _write(folder / "memory.limit_in_bytes", str(memory_bytes))
                _try_write(folder / "memory.memsw.limit_in_bytes", str(memory_bytes))
        if "pids" in self.folders:
            _write(self.folders["pids"][1] / "pids.max", str(processes))

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to join the job."""
        return sorted({str(folder / "cgroup.procs") for _, folder in self.folders.values()})

    def pids(self) -> set[int]:
        """Processes in the job's groups now."""
        found: set[int] = set()
        for _, folder in self.folders.values():
            found |= _pids(folder)
        return found

    @staticmethod
    def _empty(folder: Path) -> None:
        """Kill every process in ``folder`` until none is left (a fork race ends at pids.max)."""
        if (folder / "cgroup.kill").is_file():
            _try_write(folder / "cgroup.kill", "1")
        for _ in range(200):
            pids = _pids(folder)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def kill(self) -> None:
        """Kill every process of the job."""
        for _, folder in set(self.folders.values()):
            self._empty(folder)

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer stopped because the job hit its memory limit."""
        if "memory" not in self.folders:
            return 0
        version, folder = self.folders["memory"]
        name = "memory.events" if version == 2 else "memory.oom_control"
        return _counter(folder / name, "oom_kill")

    def memory_peak(self) -> int | None:
        """Most memory the job used at once (bytes), where the kernel tells it."""
        if "memory" not in self.folders:
            return None
        version, folder = self.folders["memory"]
        name = "memory.peak" if version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((folder / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def process_limit_hits(self) -> int:
        """How often a fork or thread creation failed at the job's process limit."""
        if "pids" not in self.folders:
            return 0
        return _counter(self.folders["pids"][1] / "pids.events", "max")

    def remove(self) -> None:
        """Kill what is left and remove the groups."""
        self.kill()
        for _, folder in set(self.folders.values()):
            _rmdir(folder)


def _pids(folder: Path) -> set[int]:
    try:
        return {int(p) for p in (folder / "cgroup.procs").read_text().split()}
    except (OSError, ValueError):
        return set()


def _counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _try_write(path: Path, text: str) -> bool:
    try:
        _write(path, text)
        return True
    except OSError:
        return False


def _rmdir(folder: Path) -> None:
    """Remove an empty group (its processes may take a moment to be reaped)."""
    for _ in range(100):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
