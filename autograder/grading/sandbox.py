"""Execute an untrusted notebook in a sandboxed kernel (see ``jail.py`` for what the sandbox is).

The notebook client (:mod:`nbclient`) runs in the grading worker; only the kernel, which executes
the student's code, runs in the sandbox.  It talks to the client over Unix sockets in its scratch
folder (ZeroMQ ``ipc`` transport), so it needs no network at all.  The client keeps at most
``max_output_bytes`` of output per notebook (gigabytes of ``print`` cannot fill the grader's
memory), interrupts a cell after ``cell_timeout`` seconds (the cell counts as failed, the next
cells still run), and survives a kernel that dies (``os._exit``, a segfault, a resource limit):
the cells after it simply do not run.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

JAIL = Path(__file__).with_name("jail.py")
RECORDER = Path(__file__).with_name("recorder.py")
RECORDER_MODULE = "_dlnn_grading_recorder"
FIRST_UID = 200_000
"""Sandboxed kernels run as uid ``FIRST_UID + job number % UID_RANGE`` (no account is needed)."""
UID_RANGE = 50_000


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
        CPU seconds the whole kernel may use (``RLIMIT_CPU``).
    memory_bytes : int
        Address space of the kernel (``RLIMIT_AS``).
    processes : int
        Processes and threads of the kernel's user (``RLIMIT_NPROC``).  As root each kernel has its
        own user; otherwise the limit is this many more than the grader's user already runs.
    open_files : int
        Open files of the kernel (``RLIMIT_NOFILE``).
    file_bytes : int
        Largest file the kernel may write (``RLIMIT_FSIZE``).
    max_output_bytes : int
        Output kept from one notebook; the rest is dropped with a note.
    isolate : bool
        Use namespaces and an unprivileged user when running as root.
    hide : list of str
        Folders the kernel must not see (the grader adds the course, the input and the output).
    """

    cell_timeout: int = 120
    notebook_timeout: int = 900
    cpu_s: int = 1200
    memory_bytes: int = 6 * 2**30
    processes: int = 256
    file_bytes: int = 64 * 2**20
    open_files: int = 512
    max_output_bytes: int = 2 * 2**20
    isolate: bool = True
    hide: list[str] = field(default_factory=list)


def privileged() -> bool:
    """True when the grader can switch users and create namespaces (it runs as root)."""
    return os.geteuid() == 0


def sandbox_description(settings: SandboxSettings) -> str:
    """One sentence for the report: what protection the kernels had."""
    limits = (
        f"per-cell timeout {settings.cell_timeout} s, {settings.notebook_timeout} s per "
        f"notebook, {settings.cpu_s} CPU s, "
        f"{settings.memory_bytes / 2**30:.1f} GiB address space, files up to "
        f"{settings.file_bytes / 2**20:.0f} MiB, output kept up to "
        f"{settings.max_output_bytes / 2**20:.1f} MiB"
    )
    if privileged() and settings.isolate:
        return (
            "each kernel ran as its own unprivileged user in an empty scratch folder, without "
            "network (own network namespace) and with the course, the gradebook, the input and "
            f"all outputs hidden (own mount namespace); {limits}, {settings.processes} processes"
        )
    return (
        "kernels ran as the grader's own user (no root rights: no user switch, no namespaces) in "
        f"a scratch folder with a clean environment; {limits}"
    )


def stage_library(base: Path) -> Path:
    """Copy the packages a kernel imports (``dlnn_helpers``, the recorder) to ``base/lib``.

    The kernel imports these copies, never files inside the (hidden) course folder.
    """
    spec = importlib.util.find_spec("dlnn_helpers")
    if spec is None or spec.origin is None:
        raise RuntimeError("the dlnn_helpers package is not installed in the grading environment")
    package = Path(spec.origin).parent
    digest = hashlib.sha256(RECORDER.read_bytes())
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    lib = base / f"lib-{digest.hexdigest()[:16]}"
    if lib.is_dir():
        return lib
    staging = base / f"staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(package, staging / "dlnn_helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(RECORDER, staging / f"{RECORDER_MODULE}.py")
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        staging.rename(lib)
    except OSError:  # another worker staged it first
        shutil.rmtree(staging, ignore_errors=True)
    return lib


def scratch_base() -> Path:
    """The folder of this machine holding staged packages and per-job scratch folders."""
    base = Path(tempfile.gettempdir()) / f"dlnn-grading-{os.geteuid()}"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    return base


def kill_user(uid: int) -> None:
    """Kill every process of the sandbox user ``uid`` (what a kernel left behind)."""
    if not privileged():
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
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


def _python_folders() -> list[str]:
    """Folders of the Python installation the kernel runs (real paths, symlinks resolved)."""
    folders = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
               os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    return sorted(folders)


class _JailedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel through ``jail.py``."""

    jail_settings: str = ""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        return [sys.executable, str(JAIL), self.jail_settings, "--", *command]


class _LimitedClient(NotebookClient):
    """A notebook client that keeps a bounded amount of output."""

    max_output_bytes: int = 2**21
    output_bytes: int = 0
    truncated: bool = False

    def output(self, outs, msg, display_id, cell_index):  # noqa: D401 - nbclient's hook
        size = len(json.dumps(msg.get("content", {}), default=str))
        self.output_bytes += size
        if self.output_bytes > self.max_output_bytes:
            if not self.truncated:
                self.truncated = True
                note = nbformat.v4.new_output(
                    "stream", name="stdout",
                    text=f"\n[output truncated by the grader after {self.max_output_bytes} "
                    "bytes]\n",
                )
                outs.append(note)
            return None
        return super().output(outs, msg, display_id, cell_index)


async def _run(client: NotebookClient, km: AsyncKernelManager, settings: SandboxSettings,
               workdir: Path) -> None:
    """Start the kernel, run the code cells one by one, always shut the kernel down."""
    try:
        await km.start_kernel(cwd=str(workdir))
        await client.async_start_new_kernel_client()
        for index, cell in enumerate(client.nb.cells):
            if cell.cell_type != "code":
                continue
            if not await km.is_alive():
                raise DeadKernelError("the kernel died")
            # nbclient's own timeout interrupts a long cell; this one catches a kernel that
            # died or hangs without answering.
            await asyncio.wait_for(
                client.async_execute_cell(cell, index,
                                          execution_count=client.code_cells_executed + 1),
                settings.cell_timeout + 30,
            )
        if not await km.is_alive():
            raise DeadKernelError("the kernel died")
    except (TimeoutError, asyncio.TimeoutError):
        if not await km.is_alive():
            raise DeadKernelError("the kernel died") from None
        raise
    finally:
        process = getattr(km.provisioner, "process", None)
        if client.kc is not None:
            client.kc.stop_channels()
        try:
            if km.has_kernel:
                await km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - the sandbox user's processes are killed anyway
            pass
        if process is not None:  # what the kernel forked stays in its session: end it too
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass


@dataclass
class Execution:
    """What happened when a notebook ran."""

    notebook: nbformat.NotebookNode
    records: Path
    problems: list[str]
    seconds: float


def execute(nb: nbformat.NotebookNode, job_number: int, settings: SandboxSettings,
            env: dict[str, str], workdir: Path) -> Execution:
    """Run ``nb`` cell by cell in a sandboxed kernel; never raises for what the notebook does.

    Parameters
    ----------
    nb : NotebookNode
        The notebook to run (modified in place: outputs are added).
    job_number : int
        Unique among the jobs running at the same time; chooses the sandbox user.
    settings : SandboxSettings
        Limits and isolation.
    env : dict
        Extra environment variables of the kernel.
    workdir : Path
        The job's scratch folder (created, owned by the sandbox user); the kernel's records are
        written to ``workdir/records``.

    Returns
    -------
    Execution
    """
    start = time.perf_counter()
    base = workdir.parent.parent
    lib = stage_library(base)
    uid = FIRST_UID + job_number % UID_RANGE
    root = privileged()
    if root:
        kill_user(uid)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, mode=0o700)
    if root:
        os.chown(workdir, uid, uid)
    jail_file = workdir.parent / f"{workdir.name}.jail.json"
    jail_file.write_text(json.dumps({
        "scratch": str(workdir),
        "lib": str(lib),
        "uid": uid,
        "hide": [*settings.hide, str(Path.home())],
        "expose": _python_folders(),
        "isolate": settings.isolate,
        "limits": {
            "cpu_s": settings.cpu_s,
            "memory_bytes": settings.memory_bytes,
            "processes": settings.processes + (0 if root else _own_tasks()),
            "file_bytes": settings.file_bytes,
            "open_files": settings.open_files,
        },
        "env": env,
    }))
    km = _JailedKernelManager(
        kernel_name="python3",
        transport="ipc",
        ip=str(workdir / "kernel"),
        connection_file=str(workdir / "kernel.json"),
    )
    km.jail_settings = str(jail_file)
    client = _LimitedClient(
        nb, km=km, timeout=settings.cell_timeout, allow_errors=True, interrupt_on_timeout=True,
        record_timing=False, startup_timeout=120, kernel_name="python3",
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than {settings.cell_timeout} s and was stopped",
            "traceback": [],
        },
        resources={"metadata": {"path": str(workdir)}},
    )
    client.max_output_bytes = settings.max_output_bytes
    problems: list[str] = []
    expired = False
    try:
        asyncio.run(asyncio.wait_for(_run(client, km, settings, workdir),
                                     settings.notebook_timeout))
    except DeadKernelError:
        problems.append(
            "the kernel died while running the notebook (os._exit, a crash or a resource limit); "
            "the cells after that point did not run"
        )
    except (TimeoutError, asyncio.TimeoutError):
        expired = True
    except RuntimeError as exc:  # e.g. the kernel never started
        problems.append(f"the kernel failed: {exc}")
    finally:
        if root:
            kill_user(uid)
        jail_file.unlink(missing_ok=True)
    if expired:
        problems.append(
            f"the notebook was stopped: it ran longer than {settings.notebook_timeout} s in all, "
            "or a cell stopped answering"
        )
    if client.truncated:
        problems.append(
            f"the notebook printed more than {settings.max_output_bytes} bytes; the rest of its "
            "output was dropped"
        )
    return Execution(nb, workdir / "records", problems, time.perf_counter() - start)
