"""The sandbox: execute an untrusted notebook's kernel, split by job.

- :mod:`.machine` — what this machine offers (root, bubblewrap, control groups, tmpfs), probed
  once, and what the terminal and the report say is missing;
- :mod:`.staging` — the staged course package, slots (one number, one uid per job), cleaning up;
- :mod:`.jail` — what the kernel sees and the settings ``inside/enter_jail.py`` reads;
- :mod:`.kernel` — :class:`Box`, one job's sandbox, and starting a fresh kernel in it;
- :mod:`.warm` — warm slots: a kernel forked from a warm interpreter (``inside/zygote.py``);
- :mod:`.cgroups` — control groups (memory and processes of a submission as a whole).

Which packages are staged and which are masked is course knowledge: it comes from the course
layout (``courselayout.KERNEL_PACKAGES``, ``courselayout.MASKED_PACKAGES``).  This package's
namespace re-exports the names callers use most (``sandbox.Box``, ``sandbox.controls``, ...); the
grader's own modules import from the submodule that holds a name.

The notebook client (:mod:`nbclient`) runs in the grading worker; only the kernel, which executes
the student's code, runs in the sandbox (``inside/enter_jail.py`` starts it under bubblewrap).
It talks to the client over Unix sockets in its scratch folder (ZeroMQ ``ipc`` transport), so it
needs no network.
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
  with the grader (:func:`.machine.die_with_parent`), and after each job every process of the group and of
  the uid is killed, the tmpfs unmounted, the group removed.

What is missing is said, never silently: :func:`.machine.sandbox_warnings` (the terminal) and
:func:`.machine.sandbox_description` (``report.html``).  As an ordinary user (a laptop) bubblewrap still
gives the namespaces and the allow-list, but the kernel runs as the grader's own user, memory and
processes are limited per process only and the scratch folder is on the host's disk.
"""

from __future__ import annotations

from ..model import SandboxSettings
from .jail import (
    ENV_INSIDE,
    LIB_INSIDE,
    SCRATCH,
    SYSTEM,
    TOP_LINKS,
    JobFolders,
    jail_settings,
    masks,
    visible_paths,
)
from .kernel import JAIL, Box, limit_problems, scratch_problems
from .machine import Controls, controls, die_with_parent, privileged, sandbox_description, sandbox_warnings
from .staging import FIRST_UID, UID_RANGE, Slot, kill_user, scratch_base, stage_library

__all__ = [
    "ENV_INSIDE", "FIRST_UID", "JAIL", "LIB_INSIDE", "SCRATCH", "SYSTEM", "TOP_LINKS", "UID_RANGE",
    "Box", "Controls", "JobFolders", "SandboxSettings", "Slot", "controls", "die_with_parent",
    "jail_settings", "kill_user", "limit_problems", "masks", "privileged", "sandbox_description",
    "sandbox_warnings", "scratch_base", "scratch_problems", "stage_library", "visible_paths",
]
