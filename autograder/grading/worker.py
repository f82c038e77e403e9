"""Grade one submission: the function the executor runs (in a worker process, maybe elsewhere).

:func:`grade_submission` takes a :class:`~autograder.grading.model.Job` (the submission's bytes and
the tutorial's spec, so a worker on another machine needs neither the input folder nor the
gradebook) and returns a :class:`~autograder.grading.model.Result`.  It never touches the
gradebook or the output folder: the parent process writes them, one writer for the whole class.
It never raises for anything the submission does.
"""

from __future__ import annotations

import ast
import hashlib
import multiprocessing.connection
import multiprocessing.util
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path

import nbformat

from courselayout import AUTOGRADE_ENV_VAR, STATIC_ENV_VAR, course_layout

from .execution import execute
from .judge import shortcuts, static_look
from .judge.replay import judge, load_records
from .model import Job, Rejected, Result, Verdict
from .notebook import prepare
from .outputs import feedback
from .sandbox import warm as warm_slots
from .sandbox.machine import die_with_parent
from .sandbox.staging import scratch_base

KERNEL_ENV = {
    AUTOGRADE_ENV_VAR: "autograde",
    "MPLBACKEND": "Agg",
    STATIC_ENV_VAR: "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}


HIDDEN_BEGIN, HIDDEN_END = course_layout().markers.hidden_tests
"""nbgrader's markers of a test cell's hidden part (the course layout's, as :mod:`.spec` reads
them: this module, which every worker process imports, does not import nbgrader)."""


def worker_started() -> None:
    """Run once in each worker process of the grader's own pool (its ``initializer``).

    - Its warm slots are closed when it ends: a worker forked from the pool's server process ends
      with ``os._exit`` (no interpreter finalisation, no ``atexit``), after multiprocessing's
      finalisers.
    - It dies the moment the grader does (even ``kill -9``), whatever it is doing: a thread
      waits for the grader's end (:func:`multiprocessing.parent_process`'s sentinel).  A forked
      worker's parent is the pool's server, which ends only once every worker has ended, so
      ``PR_SET_PDEATHSIG`` (:func:`die_with_parent`) alone would not end it.  Its sandboxes
      (``--die-with-parent``) end with it.
    """
    multiprocessing.util.Finalize(None, warm_slots.close_all, exitpriority=100)
    grader = multiprocessing.parent_process()
    if grader is not None:
        threading.Thread(target=_die_with_grader, args=(grader.sentinel,), daemon=True,
                         name="die-with-grader").start()


def _die_with_grader(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os.kill(os.getpid(), signal.SIGKILL)


def _error_text(cell: nbformat.NotebookNode) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return ""


def _in_process_verdict(cell: nbformat.NotebookNode | None) -> Verdict:
    """nbgrader's rule, for test cells that are not plain check calls: no error, full points."""
    if cell is None or cell.get("execution_count") is None:
        return Verdict(False, "the test did not run (the notebook stopped before it)")
    error = _error_text(cell)
    if error:
        return Verdict(False, error)
    stderr = [o for o in cell.get("outputs", []) if o.get("name") == "stderr"]
    if stderr:
        return Verdict(False, "the test wrote to stderr")
    return Verdict(True, "passed")


def _with_text_shortcut(verdict: Verdict, text: str) -> Verdict:
    """The verdict once the exercise's code was read: a refused routine named there scores 0."""
    if not text:
        return verdict
    if verdict.passed:
        return Verdict(False, text, verdict.in_process, verdict.review, text)
    if verdict.shortcut:
        return verdict
    return Verdict(False, f"{verdict.message}\n{text}", verdict.in_process, verdict.review, text,
                   verdict.call)


def hidden_calls(source: str) -> set[int]:
    """Indices of the check calls of a test cell that lie in its hidden part."""
    lines = source.splitlines()
    begin = next((n for n, line in enumerate(lines, 1) if line.strip() == HIDDEN_BEGIN), None)
    if begin is None:
        return set()
    end = next((n for n, line in enumerate(lines, 1) if n > begin and line.strip() == HIDDEN_END),
               len(lines) + 1)
    try:
        statements = ast.parse(source).body
    except SyntaxError:
        return set()
    return {i for i, statement in enumerate(statements) if begin < statement.lineno < end}


def _shown(test_id: str, verdict: Verdict, calls: list, hidden: set[int],
           spellings: list[str]) -> str | None:
    """The student's view of a failure on a hidden call (None: the verdict is shown as it is)."""
    if verdict.passed or verdict.call not in hidden or verdict.call >= len(calls):
        return None
    call = calls[verdict.call]
    values = [str(v) for v in [*call.settings.values(), *call.args] if isinstance(v, str)]
    return feedback.hidden_failure(test_id, verdict.message, values, spellings)


def grade_submission(job: Job) -> Result:
    """Grade one submission in a sandboxed kernel and judge its tests in this process.

    Parameters
    ----------
    job : Job

    Returns
    -------
    Result
        Never raises: a malformed file gives ``status="rejected"``, a failure of the grader itself
        ``status="error"``; both score 0.
    """
    start = time.perf_counter()
    die_with_parent()  # a killed grader leaves no worker (and so no sandbox) behind
    spec = job.spec
    result = Result(
        job.student, job.tutorial, job.file, hashlib.sha256(job.data).hexdigest(), "rejected",
        maxima={t.grade_id: t.points for t in spec.tests},
        manual=dict(spec.manual),
    )
    result.scores = {t.grade_id: 0.0 for t in spec.tests}
    result.worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        prepared = prepare(job.data, spec, run_demos=job.run_demos)
    except Rejected as exc:
        result.message = str(exc)
        result.seconds = time.perf_counter() - start
        result.feedback_html = feedback.render(result, spec, None)
        return result
    result.notes = list(prepared.notes)
    results = scratch_base() / "results"
    results.mkdir(mode=0o700, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{job.number}-{result.sha256[:8]}-", dir=results))
    try:
        execution = execute(prepared.notebook, job.number, job.settings, KERNEL_ENV, workdir)
        result.notes.extend(execution.problems)
        result.memory_peak = execution.memory_peak
        executed = {
            c.metadata.get("nbgrader", {}).get("grade_id"): c
            for c in execution.notebook.cells if c.cell_type == "code"
        }
        declared = shortcuts.declared()
        spellings = feedback.secrets_of(spec)
        for test in spec.tests:
            cell = executed.get(test.grade_id)
            if test.calls is None:
                verdict = _in_process_verdict(cell)
                result.in_process.append(test.grade_id)
            else:
                not_run = ""
                if cell is not None and _error_text(cell):
                    not_run = f"the test could not run: {_error_text(cell)}"
                verdict = judge(test.calls, load_records(execution.records, test.grade_id),
                                not_run, test.mode)
                verdict = _with_text_shortcut(verdict, shortcuts.scan(
                    test.calls, prepared.solutions, spec.solution_names, declared))
                if verdict.shortcut:
                    result.shortcuts[test.grade_id] = verdict.shortcut
                shown = _shown(test.grade_id, verdict, test.calls, hidden_calls(test.source),
                               spellings)
                if shown is not None:
                    result.shown[test.grade_id] = shown
                if verdict.in_process:
                    result.in_process.append(test.grade_id)
                flags = static_look.review(test.calls, prepared.solutions, spec.solution_names,
                                           declared)
                why = "; ".join(filter(None, [verdict.review, flags]))
                if why:  # a person looks; the score stands
                    result.review[test.grade_id] = why
            result.scores[test.grade_id] = test.points if verdict.passed else 0.0
            result.verdicts[test.grade_id] = verdict.message
            if cell is not None:  # the autograded notebook shows the restored test and verdict
                cell.source = test.source
                cell.outputs = [nbformat.v4.new_output(
                    "stream", name="stdout",
                    text=("✅ " if verdict.passed else "❌ ") + verdict.message + "\n",
                )]
        result.status = "graded"
        notebook = execution.notebook
        notebook.cells = [c for c in notebook.cells if "dlnn_grading" not in c.metadata
                          or c.metadata["dlnn_grading"] == "added"]
        result.autograded = nbformat.writes(notebook)
        result.feedback_html = feedback.render(result, spec, prepared)
    except Exception as exc:  # noqa: BLE001 - the grader's own failure: report it, go on
        result.status = "error"
        result.message = f"the grader failed on this submission: {type(exc).__name__}: {exc}"
        result.notes.append(traceback.format_exc(limit=3))
        result.scores = {t.grade_id: 0.0 for t in spec.tests}
        result.feedback_html = feedback.render(result, spec, None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result
