"""Hand grading closes the loop and grades go back to the LMS (issue 19, points 5 and 6).

The grader runs with a worker that runs no kernel (:mod:`.fake_grading`); the hand marks are
written with nbgrader's own API exactly as its formgrader's handlers write them
(``Grade.manual_score``, ``needs_manual_grade``, ``Comment.manual_comment``); then ``python -m
autograder grades`` merges them, ``export`` writes Canvas's and Moodle's import files, and a test
reads those back.  A resubmission after hand marking flags its answers for marking again.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest
from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning

from autograder.grading.cli import main
from autograder.grading.outputs import formgrade, handgrades

from . import fake_grading as fake
from .fake_grading import T1

pytestmark = pytest.mark.grading
COMMENT = "Good reasoning <script>window.pwned = 1</script> & a typo"


def _class(inputs: Path, **versions: str) -> None:
    for student, version in versions.items():
        (inputs / student).mkdir(parents=True, exist_ok=True)
        (inputs / student / f"{T1}.ipynb").write_bytes(fake.notebook_bytes(version=version))


def _mark(output: Path, student: str, scores: dict[str, float | None],
          comments: dict[str, str] = ()) -> None:
    """What nbgrader's formgrader does when the instructor types a score or a comment
    (``GradeHandler.put``, ``CommentHandler.put`` in nbgrader/server_extensions/formgrader)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        gradebook = Gradebook(f"sqlite:///{output / 'gradebook.db'}")
        try:
            for name, score in scores.items():
                grade = gradebook.find_grade(name, T1, T1, student)
                grade.manual_score = score
                grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
            for name, text in dict(comments).items():
                comment = gradebook.find_comment(name, T1, T1, student)
                comment.manual_comment = text
            gradebook.db.commit()
        finally:
            gradebook.close()


def _grades(output: Path) -> dict[str, dict]:
    return {row["student"]: row for row in fake.rows(output)}


def _written(output: Path) -> dict[str, float]:
    """The written answers of tutorial 1 and their points (from the gradebook)."""
    gradebook = Gradebook(f"sqlite:///{output / 'gradebook.db'}")
    try:
        notebook = gradebook.find_notebook(T1, T1)
        return {cell.name: float(cell.max_score) for cell in notebook.grade_cells
                if cell.cell_type == "markdown"}
    finally:
        gradebook.close()


def _roster(path: Path) -> Path:
    path.write_text("student,name,canvas_id,sis_user_id,sis_login_id,section,email,idnumber\n"
                    "alice,\"Liddell, Alice\",9001,S1,alice01,A,alice@uni.example,S1\n"
                    "bob,Bob Marley,9002,S2,bob02,B,bob@uni.example,S2\n"
                    "carol,Carol Danvers,9003,S3,carol03,A,carol@uni.example,S3\n")
    return path


def _read(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_hand_marks_reach_grades_feedback_and_the_lms_and_a_resubmission_asks_again(
        tmp_path, monkeypatch, capsys):
    inputs, output = tmp_path / "in", tmp_path / "out"
    _class(inputs, alice="1", bob="1")
    fake.run(monkeypatch, inputs, output)
    written = _written(output)
    assert len(written) >= 2 and sum(written.values()) == 4
    first, *others = sorted(written)
    rows = _grades(output)
    assert rows["alice"]["manual_score"] == "" and rows["alice"]["total"] == "9"
    assert rows["alice"]["hand_grading"].startswith("waiting: ")
    assert rows["alice"]["total_max"] == "13"

    # alice fully marked (one autograded test overridden by hand, comments); bob half-marked
    _mark(output, "alice", {**written, "test_ex_net_svd": 1.0},
          {first: COMMENT, "ex_net_svd": "U and V swapped: 1 point"})
    _mark(output, "bob", {first: written[first]})
    assert main(["grades", "-o", str(output)]) == 0
    rows = _grades(output)
    assert rows["alice"]["manual_score"] == "4" and rows["alice"]["score"] == "9"
    assert rows["alice"]["total"] == str(9 - 3 + 1 + 4) and rows["alice"]["hand_grading"] == "done"
    assert rows["bob"]["manual_score"] == f"{written[first]:g}"
    assert rows["bob"]["hand_grading"].startswith("waiting: ")
    assert set(rows["bob"]["hand_grading"][9:].split(", ")) == set(others)
    page = (output / "feedback" / "alice" / f"{T1}.html").read_text()
    assert "Marked by hand" in page and "Total: 11 / 13" in page
    assert "Good reasoning &lt;script&gt;window.pwned = 1&lt;/script&gt; &amp; a typo" in page
    assert "<script>" not in page and "U and V swapped: 1 point" in page
    assert page.count(handgrades.START) == 1
    assert main(["grades", "-o", str(output)]) == 0  # again: the block is replaced, not added
    assert (output / "feedback" / "alice" / f"{T1}.html").read_text() == page

    # the LMS files: refused while bob waits for marks, then exported and read back
    roster, canvas, moodle = _roster(tmp_path / "roster.csv"), tmp_path / "c.csv", tmp_path / "m.csv"
    export = ["export", "-o", str(output), "--roster", str(roster), "--canvas", str(canvas),
              "--moodle", str(moodle), "--canvas-assignment", f"{T1}=4321"]
    capsys.readouterr()
    assert main(export) == 2
    assert "bob" in capsys.readouterr().err and not canvas.exists() and not moodle.exists()
    _mark(output, "bob", dict.fromkeys(others, 0.5))
    assert main(export) == 0
    bob_total = 9 + written[first] + 0.5 * len(others)
    canvas_rows = _read(canvas)
    assert list(canvas_rows[0]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                                    f"{T1} (4321)"]
    assert [(r["Student"], r["ID"], r["SIS User ID"], r["SIS Login ID"], r["Section"],
             r[f"{T1} (4321)"]) for r in canvas_rows] == [
        ("Liddell, Alice", "9001", "S1", "alice01", "A", "11"),
        ("Bob Marley", "9002", "S2", "bob02", "B", f"{bob_total:g}"),
        ("Carol Danvers", "9003", "S3", "carol03", "A", "")]  # carol submitted nothing
    moodle_rows = _read(moodle)
    assert list(moodle_rows[0]) == ["Email address", "ID number", "Full name", T1]
    assert {r["Email address"]: r[T1] for r in moodle_rows} == {
        "alice@uni.example": "11", "bob@uni.example": f"{bob_total:g}", "carol@uni.example": ""}

    # alice resubmits: her written answers need marking again, and the report says so
    _class(inputs, alice="2")
    fake.run(monkeypatch, inputs, output)
    rows = _grades(output)
    again = rows["alice"]["hand_grading"]
    assert again.startswith("again: ") and set(again[7:].split(", ")) == set(written)
    assert rows["alice"]["manual_score"] == "" and rows["alice"]["total"] == "7"  # override kept
    assert rows["bob"]["hand_grading"] == "done"
    report = (output / "report.html").read_text()
    assert "resubmitted after hand marking" in report
    page = (output / "feedback" / "alice" / f"{T1}.html").read_text()
    assert "to be marked again (you resubmitted)" in page
    assert main(export) == 2  # alice's answers wait again
    _mark(output, "alice", dict.fromkeys(written, 1.0))
    fake.run(monkeypatch, inputs, output)  # the same files: nothing flagged again
    assert _grades(output)["alice"]["hand_grading"] == "done"
    assert _grades(output)["alice"]["total"] == str(9 - 3 + 1 + len(written))
    assert "resubmitted after hand marking" not in (output / "report.html").read_text()


def test_export_refuses_students_outside_the_roster_and_missing_ids(tmp_path, monkeypatch, capsys):
    inputs, output = tmp_path / "in", tmp_path / "out"
    _class(inputs, alice="1", zoe="1")
    fake.run(monkeypatch, inputs, output)
    for student in ("alice", "zoe"):
        _mark(output, student, dict.fromkeys(_written(output), 1.0))
    roster = _roster(tmp_path / "roster.csv")
    export = ["export", "-o", str(output), "--roster", str(roster), "--canvas",
              str(tmp_path / "c.csv")]
    assert main(export) == 2
    assert "zoe" in capsys.readouterr().err and not (tmp_path / "c.csv").exists()
    assert main([*export, "--partial"]) == 0
    assert "left out: zoe" in capsys.readouterr().out
    assert [r[T1] for r in _read(tmp_path / "c.csv")] == [f"{9 + len(_written(output)):g}", "", ""]
    (tmp_path / "no-ids.csv").write_text("student,name\nalice,Alice\n")
    assert main(["export", "-o", str(output), "--roster", str(tmp_path / "no-ids.csv"),
                 "--canvas", str(tmp_path / "c2.csv"), "--partial"]) == 2
    assert "canvas_id" in capsys.readouterr().err


def test_the_formgrader_is_configured_on_the_output_folder_or_refused(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="grade the class into it first"):
        formgrade.write_config(tmp_path)
    inputs, output = tmp_path / "in", tmp_path / "out"
    _class(inputs, alice="1")
    fake.run(monkeypatch, inputs, output)
    config = formgrade.write_config(output)
    text = config.read_text()
    assert f"c.CourseDirectory.root = {str(output.resolve())!r}" in text
    assert f"sqlite:///{output.resolve() / 'gradebook.db'}" in text
    command = formgrade.server_command(output, 9999, False)
    assert f"--ServerApp.jpserver_extensions={formgrade.EXTENSION}=True" in command
    assert "--ServerApp.ip=127.0.0.1" in command
