"""Class downloads as Canvas, Moodle, Google Classroom/Drive and Colab name them (issue 19, point 4).

The parsing layer (:mod:`autograder.grading.inputs.submissions`, :mod:`~autograder.grading.inputs.lms_names`,
:mod:`~autograder.grading.inputs.roster`) on a small class written in every platform's shape, as a folder
and as a zip, with and without a roster; the runner with a worker that runs no kernel
(:mod:`.fake_grading`) on every shape; and one real grading run of a class that mixes the shapes.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path, PurePosixPath

import nbformat
import pytest

from autograder.grading.cli import main
from autograder.grading.inputs.lms_names import name_of
from autograder.grading.inputs.roster import Roster
from autograder.grading.inputs.submissions import UNKNOWN, collect
from autograder.grading.runner import grade_class

from . import fake_grading as fake
from . import lms_class
from .lms_class import SHAPES, STRAY, STUDENTS, T1

TUTORIALS = [T1, "T2_Optimisation"]


def _content(student, version) -> bytes:
    return f"{student.student}:{version}".encode()


def _graded(subs):
    """Student -> the file graded for tutorial 1 (not replaced)."""
    chosen = {}
    for sub in subs:
        if sub.tutorial == T1 and not sub.replaced_by:
            assert sub.student not in chosen, f"{sub.student} graded twice"
            chosen[sub.student] = sub
    return chosen


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_platform_shape_gives_one_row_per_roster_student(tmp_path, shape, as_zip):
    source = tmp_path / ("class.zip" if as_zip else "class")
    if not as_zip:
        source.mkdir()
    written = lms_class.write(source, shape, _content, as_zip)
    roster = Roster.load(lms_class.write_roster(tmp_path / "roster.csv"))
    subs = collect(source, TUTORIALS, roster=roster)
    assert sorted(s.name for s in subs) == sorted(written)  # every file listed, none dropped
    graded = _graded(subs)
    ids = {s.student for s in STUDENTS}
    assert ids <= set(graded), (shape, sorted(graded))
    for student in ids:
        assert graded[student].data == f"{student}:new".encode(), (shape, graded[student].name)
        assert graded[student].problem == ""
    stray = [s for s in subs if written[s.name] == STRAY]
    assert len(stray) == 1 and stray[0].student.startswith(UNKNOWN) and stray[0].problem
    assert set(graded) == ids | {stray[0].student}
    replaced = {s.name: s.replaced_by for s in subs if s.replaced_by}
    assert all(written[old] == written[new] for old, new in replaced.items())


@pytest.mark.parametrize("shape", list(SHAPES))
def test_without_a_roster_the_platforms_names_are_the_students(tmp_path, shape):
    source = tmp_path / "class"
    source.mkdir()
    written = lms_class.write(source, shape, _content, False)
    graded = _graded(collect(source, TUTORIALS))
    named = [s for s in graded if not s.startswith(UNKNOWN)]
    # a Moodle file of someone not in the class names that someone; the others name nobody
    assert len(named) == len(STUDENTS) + shape.startswith("moodle"), sorted(graded)
    by_data = {sub.data.decode().split(":")[0]: student for student, sub in graded.items()
               if not student.startswith(UNKNOWN) and not sub.data.endswith(b":stray")}
    assert set(by_data) == {s.student for s in STUDENTS}
    expected = {"canvas": lambda s: s.sortable, "colab-folders": lambda s: s.student}.get(
        shape, lambda s: s.name.replace(" ", "_"))
    for s in STUDENTS:
        assert by_data[s.student] == expected(s), (shape, by_data)
    assert sum(1 for sub in collect(source, TUTORIALS) if written[sub.name] == STRAY) == 1


@pytest.mark.parametrize(("path", "student", "ids", "lms", "late", "attempt"), [
    (f"smithjohn_12345_67890_{T1}.ipynb", "smithjohn", ("12345",), "canvas", False, 0),
    (f"smithjohn_LATE_12345_67890_{T1}-1.ipynb", "smithjohn", ("12345",), "canvas", True, 1),
    (f"John Smith_123456_assignsubmission_file_/{T1}.ipynb", "John Smith", ("123456",), "moodle",
     False, 0),
    (f"John Smith_123456_assignsubmission_file_{T1}.ipynb", "John Smith", ("123456",), "moodle",
     False, 0),
    (f"Participant_998_assignsubmission_file_/Copy of {T1}.ipynb", "Participant", ("998",),
     "moodle", False, 0),
    (f"John Smith - Copy of {T1}.ipynb", "John Smith", (), "classroom", False, 0),
    (f"{T1}-20241105T101500Z-001/{T1}/Ann Lee - {T1} (1).ipynb", "Ann Lee", (), "classroom",
     False, 1),
    (f"Copy of {T1} (1).ipynb", "", (), "plain", False, 1),
    (f"ada/Copy of {T1}.ipynb", "ada", (), "folder", False, 0),
    (f"ada_late_{T1}.ipynb", "ada", (), "plain", True, 0),
    (f"{T1}-dan.ipynb", "dan", (), "plain", False, 0),
])
def test_each_platforms_name_shape_is_read(path, student, ids, lms, late, attempt):
    named = name_of(PurePosixPath(path), T1)
    assert (named.student, named.ids, named.lms, named.late, named.attempt) == (
        student, ids, lms, late, attempt)


def test_a_wrapping_folder_is_no_student_but_one_students_folder_is(tmp_path):
    wrapped = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(wrapped, "w") as archive:
        for student in ("ada", "ben", "chloe"):
            archive.writestr(f"T1 submissions/{student}/{T1}.ipynb", student)
    subs = collect(wrapped, TUTORIALS)
    assert sorted(s.student for s in subs) == ["ada", "ben", "chloe"]
    assert not any(s.replaced_by for s in subs)
    alone = tmp_path / "alone"
    (alone / "ada").mkdir(parents=True)
    (alone / "ada" / f"{T1}.ipynb").write_text("1")
    (alone / "ada" / "T2_Optimisation.ipynb").write_text("2")
    assert {(s.student, s.tutorial) for s in collect(alone, TUTORIALS)} == {
        ("ada", T1), ("ada", "T2_Optimisation")}


def test_canvas_resubmission_counter_decides_when_times_are_equal(tmp_path):
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        when = (2024, 11, 5, 10, 0, 0)
        zf.writestr(zipfile.ZipInfo(f"smithjohn_LATE_12345_67891_{T1}-2.ipynb", when), "third")
        zf.writestr(zipfile.ZipInfo(f"smithjohn_12345_67890_{T1}.ipynb", when), "first")
        zf.writestr(zipfile.ZipInfo(f"smithjohn_LATE_12345_67891_{T1}-1.ipynb", when), "second")
    graded = _graded(collect(archive, TUTORIALS))
    assert list(graded) == ["smithjohn"] and graded["smithjohn"].data == b"third"
    assert graded["smithjohn"].late


def test_two_students_of_one_canvas_name_stay_apart_and_the_roster_tells_them_apart(tmp_path):
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"smithjohn_111_1_{T1}.ipynb", "one")
        zf.writestr(f"smithjohn_222_2_{T1}.ipynb", "two")
    graded = _graded(collect(archive, TUTORIALS))
    assert len(graded) == 2 and {s.data for s in graded.values()} == {b"one", b"two"}
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text("student,name,canvas_id\njs1,John Smith,111\njs2,John Smith,222\n")
    graded = _graded(collect(archive, TUTORIALS, roster=Roster.load(roster_file)))
    assert {k: v.data for k, v in graded.items()} == {"js1": b"one", "js2": b"two"}
    roster_file.write_text("student,name\njs1,John Smith\njs2,John Smith\n")  # no ids: ambiguous
    subs = collect(archive, TUTORIALS, roster=Roster.load(roster_file))
    assert all("fits several students" in s.problem for s in subs)
    assert len(_graded(subs)) == 2  # both listed, neither given to a student


@pytest.mark.parametrize(("text", "reason"), [
    ("name,email\nAda,a@x\n", "no 'student' column"),
    ("student,canvas_id\nada,1\nben,1\n", "same canvas_id"),
    ("student\nada\nada\n", "same student"),
])
def test_a_roster_that_cannot_be_right_is_refused_with_the_reason(tmp_path, text, reason):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=reason):
        Roster.load(path)


@pytest.mark.grading
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_graded_once_per_student_with_the_right_score(tmp_path, monkeypatch, shape):
    """The runner (worker without a kernel): one row per roster student with the score of the
    newest file (the older file scores 0), the stray file a row of its own."""
    def content(student, version):
        return fake.notebook_bytes(**({} if version == "new" else {"score": "zero"}))

    source = tmp_path / "class.zip"
    lms_class.write(source, shape, content, True)
    roster = Roster.load(lms_class.write_roster(tmp_path / "roster.csv"))
    fake.run(monkeypatch, source, tmp_path / "out", roster=roster)
    rows = fake.rows(tmp_path / "out")
    by_student = {r["student"]: r for r in rows}
    assert len(by_student) == len(rows) == len(STUDENTS) + 1
    for s in STUDENTS:
        assert by_student[s.student]["status"] == "graded"
        assert by_student[s.student]["score"] == "9", (shape, by_student[s.student])
    stray = [r for r in rows if r["student"].startswith(UNKNOWN)]
    assert len(stray) == 1 and stray[0]["status"] == "rejected" and stray[0]["problem"]


def test_the_command_refuses_a_bad_roster_before_grading(tmp_path, capsys):
    (tmp_path / "roster.csv").write_text("name\nAda\n")
    (tmp_path / "in").mkdir()
    status = main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--roster",
                   str(tmp_path / "roster.csv"), "--quiet"])
    assert status == 2 and "no 'student' column" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _mixed_class(target: Path) -> dict[str, float]:
    """Four students, each downloaded from another platform, in one zip; student -> score."""
    from autograder.grading import synthetic

    kinds = {
        "ada": dict.fromkeys(synthetic.EXERCISES, "correct"),
        "ben": {"ex_initializer": "correct", "ex_net_svd": "wrong", "ex_net_rsm": "correct"},
        "chloe": dict.fromkeys(synthetic.EXERCISES, "wrong"),
        "dmitri": {"ex_net_rsm": "alternative", "linear_regression": "alternative"},
    }
    by_id = {s.student: s for s in STUDENTS}
    shapes = {"ada": lms_class.canvas, "ben": lms_class.canvas, "chloe": lms_class.moodle_folders,
              "dmitri": lms_class.classroom}
    with zipfile.ZipFile(target, "w") as archive:
        for student, shape in shapes.items():
            for name, version in shape(by_id[student]):
                answers = (synthetic.answers(**kinds[student]) if version == "new"
                           else synthetic.answers())
                info = zipfile.ZipInfo(name, (2024, 11, 5, 10, 0 if version == "old" else 5, 0))
                archive.writestr(info, nbformat.writes(synthetic.filled(answers)))
    passed = {student: [e for e, k in kinds[student].items() if k in ("correct", "alternative")]
              for student in kinds}
    return {student: sum(synthetic.scores(*p).values()) for student, p in passed.items()}


def test_a_class_from_several_platforms_is_graded_once_per_student(grading_env, tmp_path):
    """One real grading run (sandboxed kernels) over Canvas, Moodle and Classroom files at once."""
    from .conftest import sandbox_settings

    source = tmp_path / "mixed.zip"
    expected = _mixed_class(source)
    roster = Roster.load(lms_class.write_roster(tmp_path / "roster.csv"))
    output = grading_env.output(tmp_path / "out")
    grade_class(source, output, course=grading_env.course, tutorials=[T1], workers=2,
                settings=sandbox_settings(), roster=roster, progress=None)
    with (output / "grades.csv").open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(r["student"] for r in rows) == sorted(expected)
    for row in rows:
        assert row["status"] == "graded", row
        assert float(row["score"]) == expected[row["student"]], row
    report = (output / "report.html").read_text()
    assert report.count("replaced") >= 2  # ben's first Canvas file, dmitri's first Drive copy
