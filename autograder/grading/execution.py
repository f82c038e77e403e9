"""Running one notebook in a sandbox: the job a worker asks of a slot.

:func:`execute` takes a :class:`~autograder.grading.sandbox.kernel.Box` (a fresh kernel in its own slot)
or, by default, a warm slot's job (:mod:`~autograder.grading.sandbox.warm`: a kernel forked from the
slot's warm interpreter), runs the notebook with a client that limits its output, and copies the
kernel's records out once everything the kernel started is dead.

This module is the runner layer's use of the sandbox (:mod:`~autograder.grading.sandbox`: what the
machine offers, slots, jails, a kernel, warm slots): the sandbox imports nothing of the runner.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from .model import SandboxSettings
from .sandbox import warm as warm_slots
from .sandbox.kernel import Box
from .sandbox.staging import _copy_out


class ReadyClient(AsyncKernelClient):
    """A kernel client that knows the kernel is ready as soon as it is, without fixed waits.

    ``jupyter_client``'s ``wait_for_ready`` waits up to 0.2 s for IOPub after the kernel's reply
    and then until IOPub has been silent for 0.2 s: 0.2-0.45 s of nothing per notebook, the
    largest part of a forked kernel's start.  Here the kernel is ready when it has answered a
    ``kernel_info_request`` *and* the ``idle`` status of that same request has come over IOPub
    (so IOPub is connected: nothing a cell prints can be lost).  The kernel's ``iopub_welcome``
    (ipykernel 7: the subscription has arrived) or 0.2 s without IOPub sends the request again,
    since the status of an earlier one may have gone out before the subscription.  No message is
    dropped: the notebook client reads only the messages of its own requests.
    """

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            request = self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            while reply is not None and reply["parent_header"].get("msg_id") != request:
                try:  # the reply of an earlier request: this one's follows
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
            while reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    status = await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    break  # IOPub not connected yet: ask again
                if status["msg_type"] == "iopub_welcome":
                    break  # connected now; this request's status may have been missed
                if (status["msg_type"] == "status"
                        and status["parent_header"].get("msg_id") == request
                        and status["content"].get("execution_state") == "idle"):
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    wait_for_ready = _async_wait_for_ready


class _LimitedClient(NotebookClient):
    """A notebook client that keeps a bounded amount of what the kernel sends.

    Every message counts (outputs, display updates, widget state and buffers, comm messages);
    beyond ``max_output_bytes`` only what a verdict may depend on is kept, in a few bytes: that a
    cell raised (its error's name and the start of its message) and that it wrote to stderr.
    Filling the output first cannot hide a failing test.
    """

    max_output_bytes: int = 2**21
    output_bytes: int = 0
    truncated: bool = False

    def process_message(self, msg, cell, cell_index):  # noqa: D401 - nbclient's hook
        msg_type = msg.get("msg_type", "")
        if msg_type in ("status", "execute_input"):
            return super().process_message(msg, cell, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        size += sum(len(b) for b in msg.get("buffers") or [])
        self.output_bytes += size
        if self.output_bytes > self.max_output_bytes:
            if not self.truncated:
                self.truncated = True
                cell.setdefault("outputs", []).append(nbformat.v4.new_output(
                    "stream", name="stdout",
                    text=f"\n[output truncated by the grader after {self.max_output_bytes} "
                    "bytes]\n",
                ))
            content = msg.get("content", {})
            if "execution_count" in content:
                cell["execution_count"] = content["execution_count"]
            outputs = cell.setdefault("outputs", [])
            if msg_type == "error":
                outputs.append(nbformat.v4.new_output(
                    "error", ename=str(content.get("ename", ""))[:200],
                    evalue=str(content.get("evalue", ""))[:500], traceback=[]))
            elif (msg_type == "stream" and content.get("name") == "stderr"
                  and not any(o.get("name") == "stderr" for o in outputs)):
                outputs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text="[stderr output dropped by the grader]\n"))
            return None
        return super().process_message(msg, cell, cell_index)


async def _run(client: NotebookClient, km: AsyncKernelManager, settings: SandboxSettings) -> None:
    """Start the kernel, run the code cells one by one, always shut the kernel down."""
    try:
        await km.start_kernel()
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
        except Exception:  # noqa: BLE001 - the sandbox's processes are killed anyway
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
    memory_peak: int | None = None
    """Most memory the kernel's processes used together (bytes), where control groups tell."""
    uid: int | None = None
    """The user the kernel ran as (None: the grader's own)."""


def execute(nb: nbformat.NotebookNode, job_number: int, settings: SandboxSettings,
            env: dict[str, str], workdir: Path) -> Execution:
    """Run ``nb`` cell by cell in a sandboxed kernel; never raises for what the notebook does.

    Parameters
    ----------
    nb : NotebookNode
        The notebook to run (modified in place: outputs are added).
    job_number : int
        The job's number (for messages; the sandbox's user comes from a machine-wide slot).
    settings : SandboxSettings
        Limits and isolation.
    env : dict
        Extra environment variables of the kernel.
    workdir : Path
        A folder of the grader (created): the kernel's records are copied to
        ``workdir/records`` (regular files only, at most ``scratch_bytes``) once the kernel and
        everything it started are dead.

    Returns
    -------
    Execution
    """
    start = time.perf_counter()
    original = copy.deepcopy(nb)
    warm = warm_slots.job(settings, env) if settings.warm else None
    if warm is not None:
        execution = _execute_in(warm, nb, settings, env, workdir)
        if warm.slot.alive():
            return execution
        # The notebook ended its slot's warm interpreter (it may signal its own user's processes):
        # its cells after that point did not run as they would in a fresh kernel, whose parent
        # no notebook can reach.  Graded again from the start in a fresh kernel, as before warm
        # slots, so that the grade does not depend on the slot.
        nb.clear()
        nb.update(original)
    execution = _execute_in(Box(settings), nb, settings, env, workdir)
    execution.seconds = time.perf_counter() - start
    return execution


def _execute_in(place: Box | warm_slots.WarmJob, nb: nbformat.NotebookNode,
                settings: SandboxSettings, env: dict[str, str], workdir: Path) -> Execution:
    """:func:`execute` in one sandbox: a fresh :class:`Box` or a warm slot's job."""
    start = time.perf_counter()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, mode=0o700)
    problems: list[str] = []
    expired = False
    peak = uid = None
    with place as box:
        uid = box.uid
        km = box.kernel_manager(env)
        km.client_factory = ReadyClient
        # A signal to the kernel's process group would end bubblewrap itself: interrupt by
        # message (ipykernel then interrupts its own main thread).
        km.kernel_spec.interrupt_mode = "message"
        client = _LimitedClient(
            nb, km=km, timeout=settings.cell_timeout, allow_errors=True,
            interrupt_on_timeout=True, record_timing=False, startup_timeout=120,
            kernel_name="python3",
            error_on_timeout={
                "ename": "CellTimeoutError",
                "evalue": f"the cell ran longer than {settings.cell_timeout} s and was stopped",
                "traceback": [],
            },
            resources={"metadata": {"path": str(box.scratch)}},
        )
        client.max_output_bytes = settings.max_output_bytes
        try:
            asyncio.run(asyncio.wait_for(_run(client, km, settings), settings.notebook_timeout))
        except DeadKernelError:
            problems.append(
                "the kernel died while running the notebook (os._exit, a crash or a resource "
                "limit); the cells after that point did not run"
            )
        except (TimeoutError, asyncio.TimeoutError):
            expired = True
        except RuntimeError as exc:  # e.g. the kernel never started
            log = box.log()[-600:].strip().splitlines()
            why = f" ({log[-1][:300]})" if log and log[-1].startswith(("bwrap", "jail")) else ""
            problems.append(f"the kernel failed: {exc}{why}")
        finally:
            problems.extend(box.finish())
            peak = box.memory_peak()
            _copy_out(box.scratch / "records", workdir / "records", settings.scratch_bytes)
    if expired:
        problems.append(
            f"the notebook was stopped: it ran longer than {settings.notebook_timeout} s in all, "
            "or a cell stopped answering"
        )
    if client.truncated:
        problems.append(
            f"the notebook printed more than {settings.max_output_bytes} bytes (output, display "
            "updates and widget messages together); the rest of its output was dropped"
        )
    return Execution(nb, workdir / "records", problems, time.perf_counter() - start, peak, uid)
