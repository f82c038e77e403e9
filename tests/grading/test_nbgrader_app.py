"""nbgrader in the grader's process: the gradebook stamp and nbgrader's commands."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from pathlib import Path

import nbformat
import nbgrader.api
import pytest

from autograder.grading import nbgrader_app
from courselayout import course_layout

from ..tools import ROOT

TUTORIAL = "T0_Tiny"


@pytest.mark.grading
def test_the_head_read_in_process_is_the_one_nbgraders_alembic_prints(monkeypatch):
    scripts = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
    monkeypatch.setenv("PATH", scripts + os.pathsep + os.environ.get("PATH", ""))
    assert nbgrader_app.alembic_head() == nbgrader_app.NBGRADERS_OWN_HEAD()


def test_a_new_gradebook_is_stamped_with_the_head_without_a_new_process(tmp_path, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError(f"a new process was started: {args}")

    monkeypatch.setattr(nbgrader.api.sp, "check_output", no_process)
    database = tmp_path / "gradebook.db"
    with nbgrader.api.Gradebook(f"sqlite:///{database}"):
        pass
    with sqlite3.connect(database) as db:
        stamped = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert stamped == [(nbgrader_app.alembic_head(),)]


def _course(root: Path) -> Path:
    """A course with nbgrader's configuration and one tiny tutorial (a solution and a test cell)."""
    root.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    folder = course_layout(root).source / TUTORIAL
    folder.mkdir(parents=True)
    solution = nbformat.v4.new_code_cell(
        "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION")
    solution.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                     "grade_id": "double", "schema_version": 3}
    test = nbformat.v4.new_code_cell("assert double(2) == 4")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": "test_double", "points": 1, "schema_version": 3}
    nbformat.write(nbformat.v4.new_notebook(cells=[solution, test]), folder / f"{TUTORIAL}.ipynb")
    course_layout(root).work.mkdir()
    return root


@pytest.mark.grading
def test_nbgrader_runs_in_this_process_with_its_output_captured(tmp_path, capfd):
    course = _course(tmp_path / "course")
    database = tmp_path / "gradebook.db"
    before = (os.getcwd(), list(sys.path), dict(os.environ))

    status, output = nbgrader_app.run_nbgrader(
        course, "generate_assignment", TUTORIAL, "--force", "--log-level=ERROR",
        f"--CourseDirectory.db_url=sqlite:///{database}")
    assert (status, output) == (0, "")
    release = nbformat.read(course / "tutorials" / TUTORIAL / f"{TUTORIAL}.ipynb", as_version=4)
    assert "return 2 * x" not in release.cells[0].source  # nbgrader cleared the solution
    with nbgrader.api.Gradebook(f"sqlite:///{database}") as gb:
        cells = gb.find_notebook(TUTORIAL, TUTORIAL).grade_cells
        assert [(c.name, c.max_score) for c in cells] == [("test_double", 1.0)]

    # A command nbgrader refuses: its status and its reason come back, nothing is printed.
    status, output = nbgrader_app.run_nbgrader(course, "generate_assignment", "T9_Missing",
                                               "--log-level=ERROR")
    assert status == 1
    assert "No notebooks were matched" in output and "T9_Missing" in output
    assert capfd.readouterr() == ("", "")
    assert (os.getcwd(), list(sys.path), dict(os.environ)) == before


def test_an_exception_nbgrader_does_not_handle_comes_back_as_a_failed_command(tmp_path, monkeypatch,
                                                                              capfd):
    from nbgrader.apps import NbGraderApp

    def broken(self):
        raise OSError("the disk is full")

    monkeypatch.setattr(NbGraderApp, "start", broken)
    before = (os.getcwd(), list(sys.path))
    status, output = nbgrader_app.run_nbgrader(tmp_path, "generate_assignment", TUTORIAL)
    assert status == 1
    assert "OSError: the disk is full" in output
    assert capfd.readouterr() == ("", "")
    assert (os.getcwd(), list(sys.path)) == before
    assert NbGraderApp.initialized() is False  # the next command gets a fresh application
