"""A copy of the course with one tiny tutorial more, for tests of the grader's mechanism.

Preparing, calibrating and grading the course's real tutorials executes their notebooks and
judges their checks against the reference.  What the calibration cache and the preparation do does
not depend on what a tutorial teaches: :func:`tiny_course` copies the course as it is (its six
tutorials stay, so "only the tutorial graded is prepared" is still asked of a course of several
tutorials) and adds :data:`TINY`, one exercise and one autograded test cell (a visible and a
hidden part, as the course's test cells are), whose notebook runs in a fraction of a second.
:func:`tiny_submission` is a student's notebook of it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from courselayout import course_layout

from ..tools import copy_course

TINY = "T0_TinyTutorial"
"""The tiny tutorial's id (sorted before the course's own: ``T0_`` < ``T1_``)."""
POINTS = 2
ANSWER = "def double(x):\n    return 2 * x"
WRONG = "def double(x):\n    return x + 2"
"""Right for ``x = 2`` (the visible test), wrong for the hidden one."""
_TEST = ("assert double(2) == 4, 'double(2) should be 4'\n"
         "### BEGIN HIDDEN TESTS\n"
         "assert double(5) == 10, 'double(5) should be 10'\n"
         "### END HIDDEN TESTS")


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: int = 0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _notebook(answer: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                  "name": "python3"}, "language_info": {"name": "python"}}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A tiny tutorial\n\nWrite `double(x)`: twice `x`."),
        nbformat.v4.new_code_cell(answer, metadata=_meta("ex_double", grade=False, solution=True,
                                                         locked=False)),
        nbformat.v4.new_code_cell(_TEST, metadata=_meta("test_double", grade=True, solution=False,
                                                        locked=True, points=POINTS)),
    ]
    return nb


def tiny_course(target: Path) -> Path:
    """Copy the course into ``target`` (created) and add :data:`TINY` to its solutions."""
    target.mkdir(parents=True, exist_ok=True)
    copy_course(target)
    solution = course_layout(target).solution_path(TINY)
    solution.parent.mkdir(parents=True)
    body = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
    nbformat.write(_notebook(body), solution)
    return target


def tiny_submission(path: Path, answer: str = ANSWER) -> Path:
    """Write a student's notebook of :data:`TINY` answering ``answer`` at ``path``."""
    nb = _notebook(answer)
    nb.cells[2].source = _TEST.split("### BEGIN HIDDEN TESTS")[0].strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
