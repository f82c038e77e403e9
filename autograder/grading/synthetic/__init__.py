"""Synthetic submissions for the demo class, the benchmark and the grading tests (no test imports).

Every answer comes from one place, :mod:`.answer_bank` (every tutorial's reference, alternative,
wrong and library answers).  :func:`filled` puts answers into a tutorial's student notebook;
for tutorial 1, :data:`CORRECT`, :data:`ALTERNATIVE` and :data:`WRONG` are the bank's answers of
that kind, :func:`answers` picks a kind per exercise and :func:`scores` says what such a notebook
must score; :func:`write_demo_class` writes the README's demo class from them.
:func:`copy_course` copies what grading needs into a private folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from courselayout import CONFIG_NAME, ROOT, course_layout

from . import answer_bank
from .answer_bank import T1, solution_sources

_SOURCE = course_layout().solution_path(T1).is_file()
T1_TESTS = answer_bank.autograded_tests(T1) if _SOURCE else {}
"""Tutorial 1's autograded tests and their points (read from its solution notebook)."""
EXERCISES = answer_bank.exercises(T1) if _SOURCE else {}
"""Tutorial 1's exercise (solution cell) -> the test that checks it."""
ALL = tuple(EXERCISES)
STUB = "raise NotImplementedError()"


def copy_course(target: Path, root: Path = ROOT) -> Path:
    """Copy what grading needs (nbgrader config, solutions, tutorials) into ``target``."""
    layout = course_layout(root)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / CONFIG_NAME, target / CONFIG_NAME)
    for folder in (layout.source, layout.release):
        shutil.copytree(folder, target / folder.relative_to(root))
    (target / layout.work.relative_to(root)).mkdir(exist_ok=True)
    return target


def student_notebook(tutorial: str = T1) -> nbformat.NotebookNode:
    """The released (student) notebook of ``tutorial``."""
    return nbformat.read(course_layout().student_path(tutorial), as_version=4)


def filled(answers: dict[str, str], tutorial: str = T1) -> nbformat.NotebookNode:
    """The student notebook with the given solution cells replaced (others left as stubs)."""
    nb = student_notebook(tutorial)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


CORRECT = solution_sources() if _SOURCE else {}
"""Tutorial 1's reference answers (:func:`answer_bank.reference`)."""
ALTERNATIVE = answer_bank.ALTERNATIVE[T1]
"""Tutorial 1's correct answers written apart from the reference (:data:`answer_bank.ALTERNATIVE`)."""
WRONG = answer_bank.WRONG[T1]
"""Tutorial 1's common mistakes (:data:`answer_bank.WRONG`)."""


def answers(**kinds: str) -> dict[str, str]:
    """Answers by exercise: 'correct', 'alternative', 'wrong' or 'stub' (default)."""
    table = {"correct": CORRECT, "alternative": ALTERNATIVE, "wrong": WRONG}
    chosen = {}
    for exercise in EXERCISES:
        kind = kinds.get(exercise, "stub")
        chosen[exercise] = STUB if kind == "stub" else table[kind][exercise]
    return chosen


def scores(*passed: str) -> dict[str, float]:
    """What tutorial 1 scores when exactly the exercises ``passed`` are right."""
    right = {EXERCISES[p] for p in passed}
    return {test: (points if test in right else 0.0) for test, points in T1_TESTS.items()}


DEMO_CLASS = ROOT / "autograder" / "demo_class"
"""The demo class of the README (``python -m autograder autograder/demo_class``)."""

DEMO_STUDENTS = {
    "ada/T1_DeepLinearNetworks.ipynb": answers(ex_initializer="correct", ex_net_svd="correct",
                                               ex_net_rsm="correct", linear_regression="correct"),
    "ben/T1_DeepLinearNetworks.ipynb": answers(ex_initializer="correct", ex_net_svd="wrong",
                                               ex_net_rsm="correct"),
    "chloe_T1_DeepLinearNetworks.ipynb": answers(**{e: "wrong" for e in EXERCISES}),
    "dmitri/T1_DeepLinearNetworks/T1_DeepLinearNetworks.ipynb": None,  # untouched
    "eli/T1_DeepLinearNetworks.ipynb": answers(**{e: "alternative" for e in EXERCISES}),
}
"""The generated demo submissions (fatima's truncated upload is written by hand)."""


def write_demo_class(folder: Path = DEMO_CLASS) -> list[Path]:
    """Write the demo submissions from the current student notebook; return the files written."""
    written = []
    for name, chosen in DEMO_STUDENTS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nb = student_notebook() if chosen is None else filled(chosen)
        nbformat.write(nb, path)
        written.append(path)
    return written
