"""Notebooks: they execute, the student versions are generated and in sync, and nbgrader grades them.

Each notebook is executed once per test session, through the session fixtures of ``tests/conftest.py``
(``reference_run``: the full solution run; ``autograded_course``: nbgrader's autograde of the solution
and of the untouched student notebook, in their reduced grading form).

Every test is parametrised over the tutorials found in ``solutions/``, so a new tutorial is covered
as soon as its solution notebook exists.
"""

from __future__ import annotations

import json
import re
import subprocess

import nbformat
import pytest
from nbgrader.api import Gradebook

from courselayout import REPOSITORY, course_layout
from dlnn_helpers.course import STUDENT_REPOSITORY, colab_url, pip_requirement

from ..tools import ROOT, TUTORIALS, course, outputs_text, stderr_outputs


def _self_check_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [
        text
        for cell, text in zip(
            [c for c in nb.cells if c.cell_type == "code"], outputs_text(nb), strict=True
        )
        if "self_check(" in cell.source
    ]


def test_there_is_at_least_one_tutorial():
    assert "T1_DeepLinearNetworks" in TUTORIALS


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_solution_notebook_executes_and_every_self_check_passes(reference_run, tutorial):
    # The session's one full execution of the solution (the site's reference run).
    nb = reference_run(tutorial)
    assert stderr_outputs(nb) == []
    checks = _self_check_outputs(nb)
    assert checks, "a tutorial with graded exercises has self-check cells"
    for text in checks:
        assert "✅" in text and "❌" not in text and "⏳" not in text, text


def _autograded(root, tutorial: str, student: str) -> nbformat.NotebookNode:
    return nbformat.read(course_layout(root).autograded / student / tutorial / f"{tutorial}.ipynb", 4)


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_untouched_student_notebook_runs_without_traceback(autograded_course, tutorial):
    # The released notebook as nbgrader executed it: only the graded test cells may fail.
    nb = _autograded(autograded_course(tutorial), tutorial, "untouched")
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert errors == [], f"{tutorial}: a cell raised before any exercise was done:\n{cell.source}"
    assert stderr_outputs(nb) == []
    checks = _self_check_outputs(nb)
    assert checks
    for text in checks:
        assert "not implemented yet" in text, text
        assert "Traceback" not in text


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_notebooks_open_and_install_from_the_student_repository(tutorial):
    badge, install = course.header_sources(tutorial)
    student = STUDENT_REPOSITORY.removeprefix("https://github.com/")
    for path in (course.solution_path(tutorial), course.student_path(tutorial)):
        nb = nbformat.read(path, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert nb.cells[0].source == badge, path
        assert colab_url(f"tutorials/{tutorial}/{tutorial}.ipynb") in nb.cells[0].source
        assert f"/github/{student}/blob/" in nb.cells[0].source, "Colab opens the student repository"
        assert first_code.source == install, path
        assert pip_requirement() in first_code.source
        assert f"git+{STUDENT_REPOSITORY}@" in first_code.source, "the package installs from there"
        assert 'if "google.colab" in sys.modules' in first_code.source
        text = nbformat.writes(nb)
        assert _address(REPOSITORY).search(text) is None, "no notebook names the instructor's repository"


def _address(url: str) -> re.Pattern:
    """The address ``url`` (without its scheme), not followed by more of a repository name."""
    return re.compile(re.escape(url.removeprefix("https://")) + r"(?![\w.-])")


@pytest.mark.parametrize(("address", "holder"), [(REPOSITORY, "courselayout/__init__.py"),
                                                  (STUDENT_REPOSITORY, "dlnn_helpers/course.py")])
def test_repository_addresses_are_written_in_one_place(address, holder):
    """The private address lives outside the student package; the public one in it."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    holders = [
        f for f in files
        if not f.endswith(".ipynb") and (ROOT / f).is_file()
        and _address(address).search((ROOT / f).read_text(errors="ignore"))
    ]
    assert holders == [holder]


def test_header_cells_are_in_sync():
    assert course.cmd_sync(check=True) == 0


def test_tutorials_are_exactly_what_generate_assignment_produces(generated_course):
    generated, committed = set(), set()
    for tutorial in TUTORIALS:
        copy = generated_course(tutorial)
        fresh = copy / "tutorials" / tutorial / f"{tutorial}.ipynb"
        assert json.loads(fresh.read_text()) == json.loads(course.student_path(tutorial).read_text()), (
            f"tutorials/{tutorial} is stale: run `python scripts/course.py generate` and commit"
        )
        generated |= {p.relative_to(copy / "tutorials") for p in (copy / "tutorials" / tutorial).rglob("*.*")}
        committed |= {p.relative_to(ROOT / "tutorials") for p in (ROOT / "tutorials" / tutorial).rglob("*.*")}
    assert generated == committed
    released = {p.name for p in (ROOT / "tutorials").iterdir() if not p.name.startswith(".")}
    assert released == set(TUTORIALS), "tutorials/ holds exactly one folder per tutorial"


def _scores(copy, tutorial, student):
    db = course_layout(copy).db_url
    with Gradebook(db) as gb:
        notebook = gb.find_submission_notebook(tutorial, tutorial, student)
        return {
            g.name: (g.auto_score, g.max_score, g.cell.cell_type)
            for g in notebook.grades
        }


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_autograde_gives_solution_full_marks_and_untouched_student_zero(autograded_course, tutorial):
    reference = _scores(autograded_course(tutorial), tutorial, "reference")
    untouched = _scores(autograded_course(tutorial), tutorial, "untouched")
    auto = {name for name, (_, _, kind) in reference.items() if kind == "code"}
    manual = {name for name, (_, _, kind) in reference.items() if kind == "markdown"}
    assert auto, "every tutorial has autograded tests"
    assert manual, "the written questions are manually graded answer cells"
    for name in auto:
        score, maximum, _ = reference[name]
        assert maximum > 0 and score == maximum, (name, score, maximum)
        assert untouched[name][0] == 0, (name, untouched[name])
    for name in manual:
        assert reference[name][0] is None  # left for the instructor


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_every_graded_test_cell_has_hidden_tests(tutorial):
    nb = nbformat.read(course.solution_path(tutorial), as_version=4)
    tests = [
        c for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    ]
    assert tests
    for cell in tests:
        assert "### BEGIN HIDDEN TESTS" in cell.source, cell.metadata["nbgrader"]["grade_id"]
        hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1]
        assert hidden.count("check_") >= 2, "the default data and at least one other setting"
    student = nbformat.read(course.student_path(tutorial), as_version=4)
    assert not any("BEGIN HIDDEN TESTS" in c.source for c in student.cells)
    assert not any("BEGIN SOLUTION" in c.source for c in student.cells)


SELF_CHECK_COMMENT = "# Self-check: run this cell after completing the exercise."


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_self_check_cells_are_worded_one_way_and_use_the_public_api(tutorial):
    nb = nbformat.read(course.solution_path(tutorial), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "self_check(" in c.source]
    assert cells
    for cell in cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            continue  # a hidden test cell may mention self_check in a comment
        lines = cell.source.strip().splitlines()
        assert lines[0] == SELF_CHECK_COMMENT, cell.source
        assert all(line.startswith("self_check(") for line in lines[1:]), cell.source
    private = [
        line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
        if re.search(r"\bdlnn_helpers(\.\w+)*\._\w+", line)
    ]
    assert private == [], "notebooks use the public API of dlnn_helpers only"


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_no_cell_prints_a_stray_value(reference_run, tutorial):
    # A bare number as a cell's result (a returned seed, a count) is noise for the reader.
    nb = reference_run(tutorial)
    stray = [
        (index, out["data"]["text/plain"])
        for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.output_type == "execute_result"
        and re.fullmatch(r"-?\d+(\.\d+)?", out.get("data", {}).get("text/plain", "").strip())
    ]
    assert stray == [], f"{tutorial}: cells whose last line returns a bare number: {stray}"
