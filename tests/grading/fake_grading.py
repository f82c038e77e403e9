"""The grading command with everything real but the kernel (not a test module).

:func:`run` calls :func:`autograder.grading.runner.grade_class` on tutorial 1, prepared once per
test session (nbgrader ``generate_assignment`` into a gradebook that each run copies), with a
worker (:func:`fake_grade`) that runs no notebook: it judges a submission by what its metadata
asks for.  Reading the input, rows, the gradebook, ``state.json``, the lock, ``grades.csv``, the
report, the feedback pages and the autograded notebooks are the real ones — what the input and
output tests exercise, in a second or two per run.

A submission's notebook metadata ``{"fake": {...}}`` steers :func:`fake_grade`:
``"score": "zero"`` fails every test, ``"verdict": text`` is every test's verdict (e.g. a message
that carries hidden settings or host details).
"""

from __future__ import annotations

import atexit
import copy
import functools
import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from autograder.grading import runner
from autograder.grading.model import Job, Result, TutorialSpec
from autograder.grading.outputs import feedback
from autograder.grading.spec import prepare

from ..tools import copy_course

T1 = "T1_DeepLinearNetworks"


@functools.cache
def prepared() -> tuple[Path, TutorialSpec, Path]:
    """``(course, spec, gradebook)``: tutorial 1 registered in a gradebook, once per session."""
    base = Path(tempfile.mkdtemp(prefix="dlnn-fake-grading-"))
    atexit.register(shutil.rmtree, base, True)
    course = base / "course"
    course.mkdir()
    copy_course(course)
    database = base / "gradebook.db"
    spec = prepare(course, T1, f"sqlite:///{database}", base / "cache")
    spec.calibrated = True
    return course, spec, database


def fake_grade(job: Job) -> Result:
    """Judge a submission by its ``fake`` metadata (see the module's docstring)."""
    spec = job.spec
    result = Result(job.student, job.tutorial, job.file, hashlib.sha256(job.data).hexdigest(),
                    "graded", maxima={t.grade_id: t.points for t in spec.tests},
                    manual=dict(spec.manual), worker=f"fake:{os.getpid()}")
    try:
        notebook = nbformat.reads(job.data.decode(), as_version=4)
        steer = dict(notebook.metadata.get("fake", {}))
    except Exception as exc:  # noqa: BLE001
        result.status, result.message = "rejected", f"not a notebook ({type(exc).__name__})"
        result.scores = {t.grade_id: 0.0 for t in spec.tests}
        result.feedback_html = feedback.render(result, spec, None)
        return result
    passed = steer.get("score") != "zero"
    result.scores = {t.grade_id: t.points if passed else 0.0 for t in spec.tests}
    result.verdicts = {t.grade_id: steer.get("verdict", "is correct" if passed else "is wrong")
                       for t in spec.tests}
    result.autograded = nbformat.writes(notebook)
    result.feedback_html = feedback.render(result, spec, None)
    return result


def student_notebook(**steer) -> nbformat.NotebookNode:
    """Tutorial 1's student notebook with ``fake`` metadata."""
    nb = nbformat.read(Path(__file__).resolve().parents[2] / "tutorials" / T1 / f"{T1}.ipynb",
                       as_version=4)
    nb.metadata["fake"] = steer
    return nb


def notebook_bytes(**steer) -> bytes:
    return nbformat.writes(student_notebook(**steer)).encode()


def run(monkeypatch, source: Path, output: Path, *, workers: int | None = None,
        **options) -> runner.ClassGrades:
    """``grade_class`` on tutorial 1 with :func:`fake_grade` as the worker (in threads)."""
    course, spec, database = prepared()
    output.mkdir(parents=True, exist_ok=True)
    if not (output / "gradebook.db").exists():
        shutil.copy(database, output / "gradebook.db")
    monkeypatch.setattr(runner, "prepare", lambda *args: copy.deepcopy(spec))
    monkeypatch.setattr(runner, "grade_submission", fake_grade)
    options.setdefault("progress", None)
    with ThreadPoolExecutor(max_workers=workers or 2) as executor:
        return runner.grade_class(source, output, course=course, tutorials=[T1],
                                  executor=executor, **options)


def rows(output: Path) -> list[dict]:
    """``grades.csv`` as dictionaries."""
    import csv

    with (output / "grades.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def state(output: Path) -> dict:
    return json.loads((output / "state.json").read_text())
