"""Grade a class: from a folder or zip of submissions to gradebook, grades, feedback and report.

The parent process (this module) is the only writer: it registers the tutorials in the gradebook
with nbgrader, hands one :class:`~autograder.grading.worker.Job` per submission to a
:class:`concurrent.futures.Executor` (by default a process pool with one worker per core; a Dask
``Client.get_executor()`` works the same way), and writes each result as it arrives:

``OUTPUT/``
    ``gradebook.db`` (unless another ``db_url`` is given), ``grades.csv``, ``report.html``,
    ``feedback/<student>/<tutorial>.html``, ``submitted/<student>/<tutorial>/<tutorial>.ipynb``
    and ``autograded/<student>/<tutorial>/<tutorial>.ipynb`` (nbgrader's layout), and
    ``state.json``, the memory that makes a second run with the same files grade nothing again.

No submission stops the run: whatever fails for one file (reading it, its worker, the gradebook,
its feedback files) becomes that file's row with the reason, and the run goes on; a worker
process that dies takes no other submission with it (they are graded again, each in a process of
its own).  ``state.json`` is replaced atomically; when it is missing, empty or damaged it is rebuilt
from the gradebook.  One grader at a time writes an output folder: a second one waits for the lock
(``lock_wait``) or stops with a message that says who holds it, so no row is ever lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import multiprocessing
import os
import socket
import stat
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from courselayout import ROOT, course_layout

from .inputs.roster import Roster
from .inputs.submissions import UNKNOWN, Limits, Submission, collect
from .model import Job, Result, SandboxSettings, TutorialSpec
from .outputs import feedback, handgrades, report
from .sandbox.machine import controls, sandbox_description, sandbox_warnings
from .spec import prepare, save
from .worker import grade_submission, worker_started

COURSE_ROOT = ROOT
DEFAULT_OUTPUT = COURSE_ROOT / "autograder" / "output"
LOCK_NAME = ".grading.lock"
STATE_NAME = "state.json"
MAX_FEEDBACK_BYTES = 8 * 2**20
"""A feedback page larger than this (it cannot be, short of a bug) is replaced by a short one."""
ROW_KEYS = {"student", "tutorial", "status", "score", "max_score", "manual_max", "file", "sha256",
            "scores", "notes", "message", "fingerprint", "verdicts", "in_process"}


class OutputLocked(RuntimeError):
    """Another grader is writing the same output folder."""


class CalibrationFailed(RuntimeError):
    """A tutorial's reference solution does not score full marks in this machine's sandbox: the
    grader would grade wrongly here, so it grades nothing (no grade, no feedback is written)."""


def _advice(notes: list[str], settings: SandboxSettings) -> str:
    """What an instructor can do about a reference solution that fails in the sandbox."""
    text = " ".join(notes)
    found = controls(settings.isolate)
    if "PermissionError" in text or "Permission denied" in text:
        return (
            "the kernel's user cannot reach the Python environment or a file the kernel needs "
            f"(the interpreter is {sys.executable}); install bubblewrap (apt-get install "
            "bubblewrap), run the grader as root where it may create mount namespaces (a "
            "container needs --cap-add SYS_ADMIN or --privileged), or install Python and the "
            "environment where every user may read them (e.g. not under /root)"
        )
    if "the kernel failed" in text or "kernel died" in text:
        return (
            "the kernel does not start or dies in this machine's sandbox (what happened is said "
            "above): check that the grading environment has ipykernel and the course's "
            "requirements (pip install -r requirements-dev.txt) and that the limits "
            "(--memory-gib, --cell-timeout) are not too low for the reference solution"
        )
    where = "bubblewrap" if found.bwrap else ("the grader's own sandbox" if found.chroot
                                              else "no sandbox")
    return (
        f"the reference solution fails a test when it runs here ({where}); if the tutorial is at "
        "fault, fix solutions/<tutorial>/<tutorial>.ipynb and run `python scripts/course.py "
        "generate`; if the machine is, raise the limits (--memory-gib, --cell-timeout) or grade "
        "on a machine with the full sandbox (autograder/README.md)"
    )


@contextlib.contextmanager
def output_lock(output: Path, wait: float = 0.0,
                say: Callable[[str], None] = lambda line: None) -> Iterator[None]:
    """Hold the output folder's lock (``fcntl.flock`` on ``OUTPUT/.grading.lock``) while grading.

    Parameters
    ----------
    output : Path
        The output folder (exists).
    wait : float
        Seconds to wait for another grader to finish; 0 refuses at once.
    say : callable
        Receives one line when waiting starts.

    Raises
    ------
    OutputLocked
        When the lock is still held after ``wait`` seconds; the message names the holder.
    """
    fd = os.open(output / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + max(0.0, wait)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "unknown"
                if time.monotonic() >= deadline:
                    raise OutputLocked(
                        f"another grader is writing {output} ({holder}); wait until it has "
                        "finished, give --wait SECONDS to wait for it, or use another --output"
                    ) from None
                if not announced:
                    say(f"waiting up to {wait:g} s for another grader to finish with {output} "
                        f"({holder})")
                    announced = True
                time.sleep(min(0.5, max(0.01, deadline - time.monotonic())))
        started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass
class ClassGrades:
    """What :func:`grade_class` did."""

    output: Path
    rows: list[dict]
    graded_now: list[Result] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def memory_peak(self) -> int | None:
        """Most memory one grading slot used in this run (bytes; None where unmeasured)."""
        return max((r.memory_peak for r in self.graded_now if r.memory_peak), default=None)

    @property
    def grades_csv(self) -> Path:
        return self.output / "grades.csv"

    @property
    def report_html(self) -> Path:
        return self.output / "report.html"


def _key(student: str, tutorial: str, file: str) -> str:
    return f"{tutorial}/{student}" if tutorial != UNKNOWN else f"{UNKNOWN}/{student}/{file}"


def _row(result: Result, fingerprint: str, manual_max: float) -> dict:
    return {
        "student": result.student, "tutorial": result.tutorial, "status": result.status,
        "score": result.score, "max_score": result.max_score, "manual_max": manual_max,
        "file": result.file, "sha256": result.sha256, "scores": result.scores,
        "notes": result.notes, "message": result.message, "fingerprint": fingerprint,
        "verdicts": result.verdicts, "in_process": result.in_process,
        "review": dict(getattr(result, "review", {})),
        "shortcuts": dict(getattr(result, "shortcuts", {})),
    }


def _state_from_gradebook(db_url: str) -> dict:
    """Rows rebuilt from the gradebook (when ``state.json`` is lost): every submission's
    autograded scores; no file digest, so every file of the input is graded again."""
    state: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        gradebook = Gradebook(db_url)
        try:
            for assignment in gradebook.assignments:
                for submission in assignment.submissions:
                    scores, maxima, manual = {}, 0.0, 0.0
                    for notebook in submission.notebooks:
                        for grade in notebook.grades:
                            if grade.cell_type == "code":
                                scores[grade.name] = float(grade.auto_score or 0.0)
                                maxima += float(grade.max_score or 0.0)
                            else:
                                manual += float(grade.max_score or 0.0)
                    student = submission.student.id
                    state[_key(student, assignment.name, "")] = {
                        "student": student, "tutorial": assignment.name, "status": "graded",
                        "score": float(sum(scores.values())), "max_score": maxima,
                        "manual_max": manual, "file": "", "sha256": "", "scores": scores,
                        "notes": [], "fingerprint": "", "verdicts": {}, "in_process": [],
                        "message": "restored from the gradebook (the grader's state file was "
                                   "lost); grade the file again to see its details",
                    }
        finally:
            gradebook.close()
    return state


def _load_state(state_file: Path, db_url: str, say: Callable[[str], None]) -> dict:
    """The rows of earlier runs; rebuilt from the gradebook when the state file is unusable."""
    why = "missing"
    try:
        fd = os.open(state_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise ValueError("not a regular file")
            state = json.loads(stream.read())
        if not isinstance(state, dict) or not all(
            isinstance(row, dict) and ROW_KEYS <= set(row) for row in state.values()
        ):
            raise ValueError("not a table of rows")
        return state
    except FileNotFoundError:
        pass
    except (OSError, ValueError, RecursionError) as exc:
        why = f"unreadable ({type(exc).__name__}: {exc})"
    state = _state_from_gradebook(db_url)
    if why != "missing" or state:
        say(f"{STATE_NAME} was {why[:200]}: rebuilt from the gradebook ({len(state)} row(s))")
    return state


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "._@+-" else "_" for c in part) or "_"


def _write_gradebook(gb: Gradebook, result: Result, spec: TutorialSpec,
                     resubmitted: bool = False) -> list[str]:
    """Write one result; return the hand-marked answers a resubmission flags for marking again."""
    with warnings.catch_warnings():
        # nbgrader's add_submission triggers SQLAlchemy autoflush warnings (harmless, its own).
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(result.student)
        try:
            gb.find_submission(result.tutorial, result.student)
        except MissingEntry:
            gb.add_submission(result.tutorial, result.student)
        for grade_id, score in result.scores.items():
            grade = gb.find_grade(grade_id, result.tutorial, result.tutorial, result.student)
            grade.auto_score = score
            grade.needs_manual_grade = grade.manual_score is not None
        for grade_id in spec.manual:
            grade = gb.find_grade(grade_id, result.tutorial, result.tutorial, result.student)
            grade.needs_manual_grade = result.status == "graded" and (
                grade.manual_score is None or bool(grade.needs_manual_grade))
        flagged = (handgrades.mark_resubmitted(gb, result.student, result.tutorial, list(spec.manual))
                   if resubmitted and result.status == "graded" else [])
        gb.db.commit()
    return flagged


def _write_files(output: Path, result: Result, data: bytes, secrets: list[str]) -> list[str]:
    """Write the submission's feedback, submitted and autograded files; return what went wrong.

    The feedback page is scrubbed of what only the parent knows (``secrets``) and bounded; the
    autograded notebook that the formgrader shows has its active HTML neutralised.
    """
    problems = []
    student, tutorial = _safe(result.student), _safe(result.tutorial)
    page = feedback.scrub(result.feedback_html, secrets)
    if len(page.encode("utf-8", "replace")) > MAX_FEEDBACK_BYTES:
        page = ("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><p>Score: "
                f"{result.score:g} / {result.max_score:g}. The detailed feedback was too large to "
                "show; ask your instructor.</p></body></html>")
        problems.append("the feedback page was too large and was shortened")
    feedback_file = output / "feedback" / student / f"{tutorial}.html"
    feedback_file.parent.mkdir(parents=True, exist_ok=True)
    report.atomic_write(feedback_file, page)
    submitted = output / "submitted" / student / tutorial / f"{tutorial}.ipynb"
    submitted.parent.mkdir(parents=True, exist_ok=True)
    report.atomic_write(submitted, data)
    autograded = output / "autograded" / student / tutorial / f"{tutorial}.ipynb"
    text = ""
    if result.autograded:
        try:
            text = report.neutralise_notebook(result.autograded)
        except Exception as exc:  # noqa: BLE001 - not shown rather than shown unsafe
            problems.append(f"the autograded notebook could not be made safe to show "
                            f"({type(exc).__name__}); not written")
    if text:
        autograded.parent.mkdir(parents=True, exist_ok=True)
        report.atomic_write(autograded, text)
    elif autograded.exists():
        autograded.unlink()
    return problems


def _rejected(sub: Submission, spec: TutorialSpec | None) -> Result:
    tests = spec.tests if spec else []
    result = Result(
        sub.student, sub.tutorial, sub.name, hashlib.sha256(sub.data).hexdigest(), "rejected",
        message=sub.problem, scores={t.grade_id: 0.0 for t in tests},
        maxima={t.grade_id: t.points for t in tests}, manual=dict(spec.manual) if spec else {},
    )
    if spec is not None:
        result.feedback_html = feedback.render(result, spec, None)
    return result


CALIBRATION_ENV = "DLNN_GRADING_CACHE"
"""The environment variable naming the folder of this machine's calibrations."""


def calibration_folder(folder: Path | None = None) -> Path:
    """Where the calibrations of this machine are kept (for every output folder).

    ``folder`` when given, else ``$DLNN_GRADING_CACHE``, else ``$XDG_CACHE_HOME/dlnn-course/
    calibration`` (``~/.cache/dlnn-course/calibration``).
    """
    if folder is not None:
        return Path(folder)
    if os.environ.get(CALIBRATION_ENV):
        return Path(os.environ[CALIBRATION_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlnn-course" / "calibration"


def calibration_key(spec: TutorialSpec, settings: SandboxSettings, run_demos: bool) -> str:
    """What a calibration depends on, hashed: the tutorial, the grader, the checks and references
    and the libraries (the spec's content fingerprint), its tests, the sandbox's limits and what
    this machine's sandbox offers (the folders it hides excepted: the kernel never sees them)."""
    limits = {k: v for k, v in asdict(settings).items() if k != "hide"}
    content = json.dumps([spec.name, spec.fingerprint, run_demos, limits,
                          repr(controls(settings.isolate)),
                          [(t.grade_id, t.points, t.source) for t in spec.tests]],
                         sort_keys=True, default=str)
    return hashlib.sha256(content.encode()).hexdigest()[:24]


def _own_folder(folder: Path) -> bool:
    """Whether ``folder`` is a folder of this user that nobody else may write."""
    try:
        info = os.stat(folder, follow_symlinks=False)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _known_calibration(spec: TutorialSpec, folder: Path, key: str) -> bool:
    """Apply a calibration kept in ``folder`` for ``key``; whether there was a usable one."""
    if not _own_folder(folder):
        return False
    try:
        data = json.loads((folder / f"{spec.name}-{key}.json").read_text())
        modes = data["modes"]
        if data.get("key") != key or set(modes) != {t.grade_id for t in spec.tests}:
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for test in spec.tests:
        if test.calls is not None:
            test.mode = str(modes[test.grade_id])
    spec.calibrated = True
    return True


def _keep_calibration(spec: TutorialSpec, folder: Path, key: str) -> None:
    """Keep a successful calibration for the next output folder (best effort: a cache)."""
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _own_folder(folder):
            report.atomic_write(folder / f"{spec.name}-{key}.json", json.dumps(
                {"tutorial": spec.name, "key": key, "fingerprint": spec.fingerprint,
                 "modes": {t.grade_id: t.mode for t in spec.tests}}))


def _calibrate(specs: dict[str, TutorialSpec], options: GradingOptions, executor: Executor,
               cache: Path, say: Callable[[str], None]) -> None:
    """Grade each tutorial's reference solution once and fix how each test is judged.

    A test the reference answer passes by replay is always replayed (monkeypatch-proof); a test
    that needs the sandbox's own verdict (a class, a callback, a returned module) keeps it.
    A calibration is kept in the output folder's ``cache`` (with the spec) and in this machine's
    calibration folder (:func:`calibration_folder`) under :func:`calibration_key`: another output
    folder graded with the same tutorial, grader, checks, references, libraries and sandbox uses
    it; any change of those calibrates again.  A failed calibration is never kept.
    """
    course, settings, run_demos = options.course, options.settings, options.run_demos
    # A spec cached by an older grader that kept a failing calibration is checked again.
    todo = [spec for spec in specs.values() if not spec.calibrated or spec.reference_problems]
    if not todo:
        return
    db_url = options.db_url
    folder = calibration_folder(options.calibration_cache)
    keys = {spec.name: calibration_key(spec, settings, run_demos) for spec in todo}
    known = [spec for spec in todo if _known_calibration(spec, folder, keys[spec.name])]
    for spec in known:
        spec.reference_problems = []
        save(spec, db_url, cache)
    if known:
        say("reference solutions already checked on this machine for this grader: "
            + ", ".join(s.name for s in known))
    todo = [spec for spec in todo if all(spec is not k for k in known)]
    if not todo:
        return
    for spec in todo:
        spec.reference_problems = []
    say("checking the grader on the reference solutions of " + ", ".join(s.name for s in todo))
    futures = {}
    for number, spec in enumerate(todo):
        data = course_layout(course).solution_path(spec.name).read_bytes()
        job = Job(-1 - number, "reference", spec.name, "reference", data, spec, settings, run_demos)
        futures[executor.submit(grade_submission, job)] = spec
    refused = []
    for future in as_completed(futures):
        spec, result = futures[future], future.result()
        failing: dict[str, list[str]] = {}  # verdict -> the tests that got it
        for test in spec.tests:
            passed = result.scores.get(test.grade_id, 0.0) >= test.points
            if test.calls is not None:
                test.mode = "kernel" if test.grade_id in result.in_process else "replay"
            if not passed:
                why = result.verdicts.get(test.grade_id, result.message) or "no verdict"
                failing.setdefault(why.strip()[:300], []).append(test.grade_id)
        if result.status != "graded" or failing:
            notes = [n.strip()[:500] for n in [result.message, *result.notes] if n.strip()]
            refused.append(
                f"{spec.name}: its reference solution scored {result.score:g}/{result.max_score:g} "
                "here. "
                + ("What happened: " + "; ".join(notes[:3]) + ". " if notes else "")
                + "Failing: " + "; ".join(f"{', '.join(tests)} ({why})"
                                          for why, tests in failing.items())
                + f". Fix: {_advice(notes, settings)}."
            )
            continue
        spec.calibrated = True
        save(spec, db_url, cache)
        _keep_calibration(spec, folder, keys[spec.name])
    if refused:  # nothing calibrated is kept wrong: the next run checks again
        raise CalibrationFailed(
            "refusing to grade: on this machine the grader cannot give the reference solutions "
            "full marks, so every student's grade would be wrong. No grade and no feedback were "
            "written.\n" + "\n".join(f"- {line}" for line in refused)
            + f"\nSandbox on this machine: {sandbox_description(settings)}"
        )


WORKER_PRELOAD = ["autograder.grading.worker"]
"""What the grader's worker processes import once, in the server process they are forked from."""


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The grader's own worker processes, forked from a server process that imported the grading
    code once (``multiprocessing``'s *forkserver*, started here if it is not running yet, and kept
    for the next run of this process).

    A worker started fresh (*spawn*) imports torch, numpy, nbformat and the course package again
    (about 4 s of CPU each) and tears them down at exit (1-2 s more); a worker forked from the
    server has them at once and ends with ``os._exit`` (its warm slots closed first:
    :func:`~autograder.grading.worker.worker_started`).  The server forks only: it runs no job.
    It ends when the grader does (its pipe from the grader closes), and the workers forked from it
    die with it (:func:`~autograder.grading.sandbox.machine.die_with_parent`), their sandboxes
    with them.
    """
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(WORKER_PRELOAD)
    forkserver.ensure_running()  # it imports while the caller goes on
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=worker_started)


def _alone(job: Job) -> Result:
    """Grade one job in a worker process of its own (after a worker died)."""
    with worker_pool(1) as pool:
        return pool.submit(grade_submission, job).result()


def _graded(executor: Executor, jobs: list[tuple[Job, Submission]], own: bool, workers: int,
            say: Callable[[str], None]) -> Iterator[tuple[Job, Submission, Result | Exception]]:
    """Each job with its result (or the exception that stands for it), as they finish.

    When a worker process of our own pool dies (killed for memory, a crash), every job that was
    still waiting fails with it, and so do the jobs not handed to the pool yet when it died (the
    pool refuses them); those are graded again, each in a process of its own, so only the
    submission that kills its process gets no grade.
    """
    futures: dict[Future, tuple[Job, Submission]] = {}
    broken: list[tuple[Job, Submission]] = []
    for index, (job, sub) in enumerate(jobs):
        try:
            futures[executor.submit(grade_submission, job)] = (job, sub)
        except BrokenProcessPool as exc:  # a worker died while the jobs were being handed out
            if not own:
                for job_left, sub_left in jobs[index:]:
                    yield job_left, sub_left, exc
            else:
                broken.extend(jobs[index:])
            break
    for future in as_completed(futures):
        job, sub = futures[future]
        try:
            yield job, sub, future.result()
        except BrokenProcessPool as exc:
            if own:
                broken.append((job, sub))
            else:
                yield job, sub, exc
        except Exception as exc:  # noqa: BLE001 - a lost worker: its row says so
            yield job, sub, exc
    if not broken:
        return
    say(f"a grading worker died: {len(broken)} submission(s) graded again, each in a process of "
        "its own")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
        again = {threads.submit(_alone, job): (job, sub) for job, sub in broken}
        for future in as_completed(again):
            job, sub = again[future]
            try:
                yield job, sub, future.result()
            except Exception as exc:  # noqa: BLE001 - it kills any process that grades it
                yield job, sub, exc


def _secrets(db_url: str, paths: list[Path]) -> list[str]:
    """What only the parent knows and no feedback page may show."""
    extra = [db_url, *(str(p) for p in paths)]
    with contextlib.suppress(Exception):
        from sqlalchemy.engine import make_url

        password = make_url(db_url).password
        if password:
            extra.append(str(password))
    return feedback.host_secrets(extra)


@dataclass
class GradingOptions:
    """How :func:`grade_class` grades: every option but the input and the output folder.

    Attributes
    ----------
    course : Path
        Course root: ``nbgrader_config.py`` and its source folder (``solutions/``).
    tutorials : list of str, optional
        Tutorials to grade; default: every tutorial of the course.
    workers : int, optional
        Worker processes of the default executor (default: one per core).
    executor : concurrent.futures.Executor, optional
        Where the submissions are graded (e.g. ``distributed.Client(...).get_executor()``); the
        caller owns it.  Default: a process pool of ``workers`` processes.
    db_url : str, optional
        The gradebook; default ``sqlite:///OUTPUT/gradebook.db``.
    settings : SandboxSettings, optional
        Limits of the sandbox.
    force : bool
        Grade again submissions already graded with the same file and the same tutorial.
    run_demos : bool
        Run every cell of the notebooks, not only what grades depend on.
    progress : callable, optional
        Receives one line per event (default: ``print``), control characters escaped; None for
        silence.
    lock_wait : float
        Seconds to wait when another grader is writing ``output`` (default: refuse at once).
    limits : Limits, optional
        What reading the input may cost (see :class:`~autograder.grading.inputs.submissions.Limits`).
    roster : Roster, optional
        The class: file names are matched to its students (:mod:`~autograder.grading.inputs.roster`).
    prepare_all : bool
        Prepare and calibrate every selected tutorial, even those no file of the input needs
        (a prepared output folder to copy); by default only the tutorials of the input's files
        (and of the rows of earlier runs) are prepared, and only those with files to grade now
        are calibrated.
    calibration_cache : Path, optional
        Where calibrations are kept for every output folder of this machine
        (:func:`calibration_folder`: ``$DLNN_GRADING_CACHE``, else ``~/.cache/dlnn-course``).
    """

    course: Path = COURSE_ROOT
    tutorials: list[str] | None = None
    workers: int | None = None
    executor: Executor | None = None
    db_url: str | None = None
    settings: SandboxSettings | None = None
    force: bool = False
    run_demos: bool = False
    progress: Callable[[str], None] | None = print
    lock_wait: float = 0.0
    limits: Limits | None = None
    roster: Roster | None = None
    prepare_all: bool = False
    calibration_cache: Path | None = None


def grade_class(source: Path, output: Path = DEFAULT_OUTPUT, options: GradingOptions | None = None,
                **changes: Any) -> ClassGrades:
    """Grade every submission in ``source``; write the gradebook, grades, feedback and report.

    Parameters
    ----------
    source : Path
        Folder or zip file of submissions (see :mod:`autograder.grading.inputs.submissions`).
    output : Path
        Output folder (created, private to the grader).
    options : GradingOptions, optional
        Everything else (default: :class:`GradingOptions`' defaults).
    **changes
        Fields of :class:`GradingOptions` to change (``grade_class(src, out, workers=2)``); an
        unknown name raises :class:`TypeError`.

    Returns
    -------
    ClassGrades

    Raises
    ------
    OutputLocked
        When another grader holds ``output`` for longer than ``lock_wait``.
    CalibrationFailed
        When a tutorial's reference solution does not score full marks in this machine's
        sandbox (checked before any submission is graded): nothing is graded and no grade,
        feedback or report is written; the message says which tutorial, what failed and why.
    FileNotFoundError, ValueError
        When the input or the tutorials cannot be found.
    """
    start = time.perf_counter()
    options = replace(options or GradingOptions(), **changes)
    course, tutorials, progress = options.course, options.tutorials, options.progress

    def say(line: str) -> None:
        if progress is not None:
            progress(report.terminal_safe(line))

    source, output, course = Path(source).resolve(), Path(output).resolve(), Path(course).resolve()
    source_folder = course_layout(course).source
    available = course_layout(course).tutorial_ids()
    if tutorials:
        unknown = sorted(set(tutorials) - set(available))
        if unknown:
            raise ValueError(f"no such tutorial in {source_folder}: {', '.join(unknown)}")
    selected = sorted(tutorials or available)
    if not selected:
        raise ValueError(f"no tutorial found in {source_folder}")
    # raises for a missing or unreadable input
    submissions = collect(source, available, options.limits, options.roster)
    output.mkdir(parents=True, exist_ok=True)
    output.chmod(0o700)
    db_url = options.db_url or f"sqlite:///{output / 'gradebook.db'}"
    settings = options.settings or SandboxSettings()
    settings.hide = sorted({*settings.hide, str(course), str(output),
                            str(source if source.is_dir() else source.parent)})
    for line in sandbox_warnings(settings):  # a missing protection is never silent
        if progress is None:
            print(report.terminal_safe(line), file=sys.stderr)
        else:
            say(line)
    secrets = _secrets(db_url, [output, source, course])
    options = replace(options, course=course, db_url=db_url, settings=settings)
    with output_lock(output, options.lock_wait, say):
        return _grade_locked(submissions, output, selected, options, say, secrets, start)


def _grade_locked(submissions: list[Submission], output: Path, selected: list[str],
                  options: GradingOptions, say: Callable[[str], None], secrets: list[str],
                  start: float) -> ClassGrades:
    """:func:`grade_class` once it holds the output folder's lock (``options`` resolved: its
    course, gradebook and sandbox settings are set)."""
    course, workers, executor, db_url = options.course, options.workers, options.executor, options.db_url
    settings, force, run_demos = options.settings, options.force, options.run_demos
    own = executor is None
    workers = workers or os.cpu_count() or 1
    if own:  # the workers' server imports while this process prepares
        executor = worker_pool(workers)
    description = f"{workers} worker process(es)" if own else type(executor).__name__
    specs: dict[str, TutorialSpec] = {}
    state_file = output / STATE_NAME
    state = _load_state(state_file, db_url, say)
    # Only the tutorials this run is about are prepared: those of the files given and those of
    # the rows kept from earlier runs (the report shows them); every one with options.prepare_all.
    about = {sub.tutorial for sub in submissions} | {row.get("tutorial") for row in state.values()}
    needed = [t for t in selected if options.prepare_all or t in about]
    try:
        for tutorial in needed:
            say(f"preparing {tutorial} (nbgrader generate_assignment into the gradebook)")
            specs[tutorial] = prepare(course, tutorial, db_url, output / "cache")
    except BaseException:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
        raise

    jobs: list[tuple[Job, Submission]] = []
    immediate: list[tuple[Result, Submission]] = []
    replaced = [(s.name, s.replaced_by) for s in submissions if s.replaced_by]
    skipped: list[Submission] = []
    for number, sub in enumerate(submissions):
        if sub.replaced_by:
            continue
        if sub.tutorial != UNKNOWN and sub.tutorial not in selected:
            say(f"skipping {sub.name}: {sub.tutorial} is not graded in this run")
            skipped.append(sub)
            continue
        spec = specs.get(sub.tutorial)
        previous = state.get(_key(sub.student, sub.tutorial, sub.name)) or {}
        digest = hashlib.sha256(sub.data).hexdigest()
        if sub.problem or spec is None:
            if force or previous.get("sha256") != digest or previous.get("message") != sub.problem:
                immediate.append((_rejected(sub, spec), sub))
            continue
        if (not force and previous.get("sha256") == digest
                and previous.get("fingerprint") == spec.fingerprint
                and previous.get("status") not in ("error", None)):
            continue
        jobs.append((Job(number, sub.student, sub.tutorial, sub.name, sub.data, spec, settings,
                         run_demos), sub))

    # The reference solutions are graded here only for the tutorials that have work now (and
    # only when their calibration is not known for this grader, course and sandbox).
    # (The jobs hold the same spec objects: they are sent with the calibrated modes.)
    graded_now = {job.tutorial for job, _ in jobs}
    try:
        _calibrate({t: s for t, s in specs.items() if options.prepare_all or t in graded_now},
                   options, executor, output / "cache", say)
    except BaseException:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
        raise

    unchanged = len(submissions) - len(jobs) - len(immediate) - len(replaced) - len(skipped)
    say(f"grading {len(jobs)} submission(s) with {description} ({unchanged} unchanged since the "
        f"last run, {len(immediate)} not gradable as submitted, {len(replaced)} replaced by a "
        "resubmission)")
    done: list[Result] = []

    def record(result: Result, sub: Submission) -> None:
        """Write one result everywhere; whatever fails becomes part of its row."""
        spec = specs.get(result.tutorial)
        problems = []
        if spec is not None:
            before = state.get(_key(result.student, result.tutorial, result.file)) or {}
            try:
                again = _write_gradebook(gradebook, result, spec, resubmitted=before.get(
                    "sha256") not in (None, "", result.sha256))
                if again:
                    result.notes = [*result.notes,
                                    handgrades.AGAIN_NOTE.format(answers=", ".join(again))]
            except Exception as exc:  # noqa: BLE001 - this row says so; the run goes on
                with contextlib.suppress(Exception):
                    gradebook.db.rollback()
                problems.append(f"the gradebook could not be written ({type(exc).__name__}: "
                                f"{str(exc)[:300]})")
            try:
                problems += _write_files(output, result, sub.data, secrets)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"the feedback files could not be written ({type(exc).__name__}: "
                                f"{str(exc)[:300]})")
        if problems:
            result.notes = [*result.notes, *problems]
            if any("could not be written" in p for p in problems):
                result.status = "error"  # graded again by the next run
                result.message = "; ".join([result.message, *problems]).strip("; ")
        fingerprint = spec.fingerprint if spec else ""
        state[_key(result.student, result.tutorial, result.file)] = _row(
            result, fingerprint, sum(spec.manual.values()) if spec else 0.0
        )
        done.append(result)

    gradebook = Gradebook(db_url)
    try:
        for result, sub in immediate:
            record(result, sub)
            say(f"  rejected {sub.name}: {result.message}")
        if immediate:
            report.atomic_write(state_file, json.dumps(state, indent=1), durable=True)
        width = len(str(len(jobs)))
        for count, (job, sub, outcome) in enumerate(
                _graded(executor, jobs, own, workers, say), 1):
            if isinstance(outcome, Result):
                result = outcome
            else:
                result = _rejected(sub, job.spec)
                result.status = "error"
                result.message = f"the worker failed: {type(outcome).__name__}: {outcome}"[:500]
                result.feedback_html = feedback.render(result, job.spec, None)
            record(result, sub)
            report.atomic_write(state_file, json.dumps(state, indent=1), durable=True)
            line = (f"[{count:>{width}}/{len(jobs)}] {result.tutorial} "
                    f"{result.student}: {result.status} {result.score:g}/{result.max_score:g} "
                    f"({result.seconds:.1f} s)")
            if result.message:
                line += f" - {result.message}"
            say(line)
    finally:
        gradebook.close()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)

    # Rows of students whose files are no longer identifiable stay; everything is in state.
    report.atomic_write(state_file, json.dumps(state, indent=1), durable=True)
    rows = handgrades.apply(output, list(state.values()), db_url)  # grades.csv, hand marks
    seconds = time.perf_counter() - start
    peaks = [r.memory_peak for r in done if getattr(r, "memory_peak", None)]
    report.write_report(
        output / "report.html", rows,
        {t: {c.grade_id: c.points for c in s.tests} for t, s in specs.items()}, replaced,
        {"sandbox": sandbox_description(settings), "executor": description,
         "seconds": seconds, "graded_now": len(jobs), "memory_peak": max(peaks, default=None),
         "reference_problems": {t: s.reference_problems for t, s in specs.items()
                                if s.reference_problems}},
    )
    memory = f", peak memory per slot {max(peaks) / 2**20:.0f} MiB" if peaks else ""
    say(f"done in {seconds:.0f} s{memory}: {output / 'grades.csv'}, {output / 'report.html'}, "
        f"{output / 'feedback'}")
    return ClassGrades(output, rows, done, replaced, seconds)
