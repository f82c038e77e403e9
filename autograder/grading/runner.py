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
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from . import report
from .sandbox import SandboxSettings, sandbox_description
from .spec import TutorialSpec, prepare, save, tutorial_ids
from .submissions import UNKNOWN, Submission, collect
from .worker import Job, Result, grade_submission

COURSE_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = COURSE_ROOT / "autograder" / "output"


@dataclass
class ClassGrades:
    """What :func:`grade_class` did."""

    output: Path
    rows: list[dict]
    graded_now: list[Result] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

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
    }


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "._@+-" else "_" for c in part) or "_"


def _write_gradebook(gb: Gradebook, result: Result, spec: TutorialSpec) -> None:
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
            grade.needs_manual_grade = result.status == "graded" and grade.manual_score is None
        gb.db.commit()


def _write_files(output: Path, result: Result, data: bytes) -> None:
    student, tutorial = _safe(result.student), _safe(result.tutorial)
    feedback = output / "feedback" / student / f"{tutorial}.html"
    feedback.parent.mkdir(parents=True, exist_ok=True)
    feedback.write_text(result.feedback_html, encoding="utf-8")
    submitted = output / "submitted" / student / tutorial / f"{tutorial}.ipynb"
    submitted.parent.mkdir(parents=True, exist_ok=True)
    submitted.write_bytes(data)
    autograded = output / "autograded" / student / tutorial / f"{tutorial}.ipynb"
    if result.autograded:
        autograded.parent.mkdir(parents=True, exist_ok=True)
        autograded.write_text(result.autograded, encoding="utf-8")
    elif autograded.exists():
        autograded.unlink()


def _rejected(sub: Submission, spec: TutorialSpec | None) -> Result:
    tests = spec.tests if spec else []
    result = Result(
        sub.student, sub.tutorial, sub.name, hashlib.sha256(sub.data).hexdigest(), "rejected",
        message=sub.problem, scores={t.grade_id: 0.0 for t in tests},
        maxima={t.grade_id: t.points for t in tests}, manual=dict(spec.manual) if spec else {},
    )
    if spec is not None:
        from . import feedback

        result.feedback_html = feedback.render(result, spec, None)
    return result


def _calibrate(specs: dict[str, TutorialSpec], course: Path, executor: Executor,
               settings: SandboxSettings, run_demos: bool, db_url: str, cache: Path,
               say: Callable[[str], None]) -> None:
    """Grade each tutorial's reference solution once and fix how each test is judged.

    A test the reference answer passes by replay is always replayed (monkeypatch-proof); a test
    that needs the sandbox's own verdict (a class, a callback, a returned module) keeps it.
    """
    todo = [spec for spec in specs.values() if not spec.calibrated]
    if not todo:
        return
    say("checking the grader on the reference solutions of " + ", ".join(s.name for s in todo))
    futures = {}
    for number, spec in enumerate(todo):
        data = (course / "solutions" / spec.name / f"{spec.name}.ipynb").read_bytes()
        job = Job(-1 - number, "reference", spec.name, "reference", data, spec, settings, run_demos)
        futures[executor.submit(grade_submission, job)] = spec
    for future in as_completed(futures):
        spec, result = futures[future], future.result()
        for test in spec.tests:
            passed = result.scores.get(test.grade_id, 0.0) >= test.points
            if test.calls is not None:
                test.mode = "kernel" if test.grade_id in result.in_process else "replay"
            if not passed:
                spec.reference_problems.append(
                    f"{test.grade_id}: {result.verdicts.get(test.grade_id, result.message)}"
                )
        spec.calibrated = True
        save(spec, db_url, cache)
        for problem in spec.reference_problems:
            say(f"  warning: the reference solution of {spec.name} fails {problem[:200]}")


def grade_class(
    source: Path,
    output: Path = DEFAULT_OUTPUT,
    *,
    course: Path = COURSE_ROOT,
    tutorials: list[str] | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    db_url: str | None = None,
    settings: SandboxSettings | None = None,
    force: bool = False,
    run_demos: bool = False,
    progress: Callable[[str], None] | None = print,
) -> ClassGrades:
    """Grade every submission in ``source``; write the gradebook, grades, feedback and report.

    Parameters
    ----------
    source : Path
        Folder or zip file of submissions (see :mod:`autograder.grading.submissions`).
    output : Path
        Output folder (created, private to the grader).
    course : Path
        Course root: ``nbgrader_config.py`` and ``solutions/``.
    tutorials : list of str, optional
        Tutorials to grade; default: every tutorial of ``course/solutions``.
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
        Receives one line per event (default: ``print``); None for silence.

    Returns
    -------
    ClassGrades
    """
    start = time.perf_counter()
    say = progress or (lambda line: None)
    scripts = str(Path(sys.executable).parent)  # nbgrader's Gradebook runs `alembic` from PATH
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    source, output, course = Path(source).resolve(), Path(output).resolve(), Path(course).resolve()
    available = tutorial_ids(course / "solutions")
    if tutorials:
        unknown = sorted(set(tutorials) - set(available))
        if unknown:
            raise ValueError(f"no such tutorial in {course / 'solutions'}: {', '.join(unknown)}")
    selected = sorted(tutorials or available)
    if not selected:
        raise ValueError(f"no tutorial found in {course / 'solutions'}")
    submissions = collect(source, available)  # raises for a missing or unreadable input
    output.mkdir(parents=True, exist_ok=True)
    output.chmod(0o700)
    db_url = db_url or f"sqlite:///{output / 'gradebook.db'}"
    settings = settings or SandboxSettings()
    settings.hide = sorted({*settings.hide, str(course), str(output),
                            str(source if source.is_dir() else source.parent)})

    own = executor is None
    if own:
        executor = ProcessPoolExecutor(
            max_workers=workers or os.cpu_count() or 1,
            mp_context=multiprocessing.get_context("spawn"),
        )
    description = f"{workers or os.cpu_count()} worker process(es)" if own else type(
        executor).__name__
    specs: dict[str, TutorialSpec] = {}
    try:
        for tutorial in selected:
            say(f"preparing {tutorial} (nbgrader generate_assignment into the gradebook)")
            specs[tutorial] = prepare(course, tutorial, db_url, output / "cache")
        _calibrate(specs, course, executor, settings, run_demos, db_url, output / "cache", say)
    except BaseException:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
        raise

    state_file = output / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    jobs: list[tuple[Job, Submission]] = []
    immediate: list[tuple[Result, Submission]] = []
    replaced = [(s.name, s.replaced_by) for s in submissions if s.replaced_by]
    skipped: list[Submission] = []
    for number, sub in enumerate(submissions):
        if sub.replaced_by:
            continue
        if sub.tutorial != UNKNOWN and sub.tutorial not in specs:
            say(f"skipping {sub.name}: {sub.tutorial} is not graded in this run")
            skipped.append(sub)
            continue
        spec = specs.get(sub.tutorial)
        previous = state.get(_key(sub.student, sub.tutorial, sub.name))
        digest = hashlib.sha256(sub.data).hexdigest()
        if sub.problem or spec is None:
            if force or not previous or previous["sha256"] != digest:
                immediate.append((_rejected(sub, spec), sub))
            continue
        if (not force and previous and previous["sha256"] == digest
                and previous["fingerprint"] == spec.fingerprint and previous["status"] != "error"):
            continue
        jobs.append((Job(number, sub.student, sub.tutorial, sub.name, sub.data, spec, settings,
                         run_demos), sub))

    unchanged = len(submissions) - len(jobs) - len(immediate) - len(replaced) - len(skipped)
    say(f"grading {len(jobs)} submission(s) with {description} ({unchanged} unchanged since the "
        f"last run, {len(immediate)} with an unusable name, {len(replaced)} replaced by a "
        "resubmission)")
    done: list[Result] = []

    def record(result: Result, sub: Submission) -> None:
        spec = specs.get(result.tutorial)
        if spec is not None:
            _write_gradebook(gradebook, result, spec)
            _write_files(output, result, sub.data)
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
        futures: dict[Future, tuple[Job, Submission]] = {
            executor.submit(grade_submission, job): (job, sub) for job, sub in jobs
        }
        for count, future in enumerate(as_completed(futures), 1):
            job, sub = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker: report, go on
                result = _rejected(sub, job.spec)
                result.status, result.message = "error", f"the worker failed: {exc!r}"
            record(result, sub)
            state_file.write_text(json.dumps(state, indent=1))
            line = (f"[{count:>{len(str(len(jobs)))}}/{len(jobs)}] {result.tutorial} "
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
    state_file.write_text(json.dumps(state, indent=1))
    rows = list(state.values())
    report.write_grades(rows, output / "grades.csv")
    seconds = time.perf_counter() - start
    report.write_report(
        output / "report.html", rows,
        {t: {c.grade_id: c.points for c in s.tests} for t, s in specs.items()}, replaced,
        {"sandbox": sandbox_description(settings), "executor": description,
         "seconds": seconds, "graded_now": len(jobs),
         "reference_problems": {t: s.reference_problems for t, s in specs.items()
                                if s.reference_problems}},
    )
    say(f"done in {seconds:.0f} s: {output / 'grades.csv'}, {output / 'report.html'}, "
        f"{output / 'feedback'}")
    return ClassGrades(output, rows, done, replaced, seconds)
