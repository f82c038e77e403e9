"""The grading command on a synthetic class: exact grades, attacks contained, bad files reported.

The class (:mod:`tests.grading.grading_class`) is graded once, with two worker processes, in the
session's prepared and calibrated grading environment (``grading_env``, ``conftest.py``); every test
below asserts something about that one run (and about two re-runs).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import uuid
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.grading.runner import grade_class
from autograder.grading.sandbox import FIRST_UID, UID_RANGE, privileged
from autograder.grading.sandbox.staging import _slot_folder
from courselayout import course_layout

from ..artefacts import ARTEFACTS
from ..tools import ROOT
from .conftest import sandbox_settings
from .grading_class import ALL, T1, T1_TESTS, Expected, Targets, _answers, build_class, filled

pytestmark = [pytest.mark.grading, pytest.mark.slow]


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


class _Listener:
    """A TCP server on the grader's loopback that records every connection it gets."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def _grade_the_class(grading_env) -> dict:
    """Grade the synthetic class twice (the second run must change nothing) in the shared
    environment; built in the background as soon as a test of this module is selected."""
    base = ARTEFACTS.folder("grading-class")
    course = grading_env.course
    inputs, output = base / "submissions", grading_env.output(base / "output")
    inputs.mkdir()
    marker = uuid.uuid4().hex
    listener = _Listener()
    targets = Targets(course, output, inputs, marker, listener.port)
    targets.written = [
        course / "pwned", output / "pwned", inputs / "pwned", ROOT / f"pwned-{marker}",
        Path("/tmp") / f"pwned-{marker}", Path.home() / f"pwned-{marker}",
    ]
    tutorials = grading_env.tutorials
    expected = build_class(inputs, targets, tutorials, privileged())
    before = {"course": _tree_digest(course), "inputs": _tree_digest(inputs)}
    settings = sandbox_settings()
    lines: list[str] = []
    try:
        first = grade_class(inputs, output, course=course, workers=2, settings=settings,
                            progress=lines.append)
    finally:
        listener.close()
    csv_first = (output / "grades.csv").read_bytes()
    second_lines: list[str] = []
    second = grade_class(inputs, output, course=course, workers=2, settings=settings,
                         progress=second_lines.append)
    csv_second = (output / "grades.csv").read_bytes()
    return {
        "course": course, "inputs": inputs, "output": output, "expected": expected,
        "targets": targets, "connections": listener.connections, "before": before, "lines": lines,
        "first": first, "second": second, "second_lines": second_lines,
        "csv_first": csv_first, "csv_second": csv_second, "settings": settings,
        "tutorials": tutorials,
    }


ARTEFACTS.register("graded_class", _grade_the_class, {"graded"}, priority=15,
                   needs=("grading_env",))


@pytest.fixture(scope="module")
def graded(grading_env) -> dict:
    """The synthetic class graded twice; what each test below asserts about."""
    return ARTEFACTS.get("graded_class")


def _rows(output: Path) -> list[dict]:
    with (output / "grades.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _reference_score(graded, tutorial: str) -> tuple[float, float]:
    """(what the reference solution scores, the maximum) from the grader's calibration."""
    spec = json.loads((graded["output"] / "cache" / f"{tutorial}.json").read_text())
    failing = {p.split(":")[0] for p in spec["reference_problems"]}
    maximum = sum(t["points"] for t in spec["tests"])
    return maximum - sum(t["points"] for t in spec["tests"] if t["grade_id"] in failing), maximum


def _points(graded, tutorial: str) -> dict[str, float]:
    """Test grade id -> points of ``tutorial`` (from the grader's spec)."""
    spec = json.loads((graded["output"] / "cache" / f"{tutorial}.json").read_text())
    return {t["grade_id"]: float(t["points"]) for t in spec["tests"]}


def test_the_class_is_large_and_covers_every_tutorial(graded):
    expected = graded["expected"]
    assert len(expected) >= 30
    assert {e.tutorial for e in expected} >= set(graded["tutorials"])
    cheating = {e.tutorial for e in expected if e.refused and e.flagged}
    assert cheating >= set(graded["tutorials"])  # a cheating submission per tutorial


def test_every_cheat_scores_zero_with_the_checks_words_and_a_flag(graded):
    """The cheating corpus: refused where it runs or in its text, said plainly, flagged."""
    output = graded["output"]
    report = (output / "report.html").read_text()
    rows = {(r["student"], r["tutorial"]): r for r in _rows(output)}
    failures = []
    for e in graded["expected"]:
        if not e.refused:
            continue
        page = (output / "feedback" / e.student / f"{e.tutorial}.html").read_text()
        row = rows[(e.student, e.tutorial)]
        flagged_csv = set(filter(None, row["shortcuts"].split(";")))
        for test, fragment in e.refused.items():
            cells = [part for part in page.split("<tr>") if f"<td>{test}</td>" in part]
            if not (cells and fragment in cells[0].replace("&#x27;", "'")):
                failures.append((e.student, e.tutorial, test, fragment,
                                 cells[0][-400:] if cells else "no row"))
        if flagged_csv != e.flagged:
            failures.append((e.student, e.tutorial, "grades.csv shortcuts", sorted(e.flagged),
                             sorted(flagged_csv)))
        for test in e.flagged:
            lines = [line for line in report.split("<tr>") if "shortcut" in line
                     and f"<td>{e.student}</td><td>{e.tutorial}</td><td>{test}</td>" in line]
            if not lines:
                failures.append((e.student, e.tutorial, test, "no flag in report.html"))
    assert failures == []


def test_every_submission_appears_exactly_once_with_its_exact_grade(graded):
    rows = _rows(graded["output"])
    by_key = {}
    for row in rows:
        key = (row["student"], row["tutorial"])
        assert key not in by_key, f"{key} appears twice in grades.csv"
        by_key[key] = row
    expected: list[Expected] = graded["expected"]
    assert set(by_key) == {(e.student, e.tutorial) for e in expected}
    wrong = []  # every submission whose grade is not the expected one (all named at once)
    for e in expected:
        row = by_key[(e.student, e.tutorial)]
        scores = {k: float(v) for k, v in (
            item.split("=") for item in row["exercises"].split(";") if item)}
        if "*" in e.scores:  # another tutorial: full marks (answers written apart) or zero
            _, maximum = _reference_score(graded, e.tutorial)
            points = _points(graded, e.tutorial)
            assert set(e.refused) <= set(points), (e.student, e.tutorial)
            full = e.scores["*"] == "full"
            want = {t: p if full and t not in e.refused else 0.0 for t, p in points.items()}
            assert float(row["max_score"]) == maximum > 0
        else:
            want = e.scores
            if e.tutorial == T1:
                assert float(row["max_score"]) == sum(T1_TESTS.values())
        if (row["status"] != e.status or scores != want
                or float(row["score"]) != float(sum(want.values()))):
            wrong.append((e.student, e.tutorial, row["status"],
                          {t: (scores.get(t), w) for t, w in want.items() if scores.get(t) != w},
                          row["problem"][:200]))
    assert wrong == []
    assert _reference_score(graded, T1) == (9, 9)


def test_bad_files_and_oddities_get_a_clear_line_in_the_report(graded):
    report = (graded["output"] / "report.html").read_text()
    for e in graded["expected"]:
        if e.note:
            rows = [line for line in report.split("<tr>") if f"<td>{e.student}</td>" in line]
            assert any(e.note in line for line in rows), (e.student, e.note)
    assert "replaced" in report and "resubmitted" in report


def test_attacks_change_nothing_outside_their_sandbox(graded):
    assert _tree_digest(graded["course"]) == graded["before"]["course"]
    assert _tree_digest(graded["inputs"]) == graded["before"]["inputs"]
    for path in graded["targets"].written:
        assert not path.exists(), f"a notebook wrote {path}"
    assert graded["connections"] == 0
    # The repository's own gradebook never sees the synthetic class (other tools may write it).
    path = course_layout(ROOT).work / "gradebook.db"
    if path.exists():
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            students = {row[0] for row in db.execute("SELECT id FROM student")}
        assert not students & {e.student for e in graded["expected"]}
    assert _orphaned_sandbox_users() == [], "processes of sandbox users survived grading"


def _sandbox_users() -> set[int]:
    users = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True, check=True)
    return {int(u) for u in users.stdout.split() if FIRST_UID <= int(u) < FIRST_UID + UID_RANGE}


def _orphaned_sandbox_users() -> list[int]:
    """The sandbox users that have processes although no job holds their slot.

    A job holds its slot (a lock) until it has killed every process of its user, so a process of
    a user whose slot is free outlived its job.  Another grader of this machine (the other test
    process, grading at the same time) holds the slots of its own users: their processes are
    alive by right.  The slot is held here while its user's processes are looked at again, so
    that no job can take it in between.
    """
    orphans = []
    for uid in sorted(_sandbox_users()):
        descriptor = os.open(_slot_folder() / str(uid - FIRST_UID), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if uid in _sandbox_users():
                    orphans.append(uid)
        finally:
            os.close(descriptor)
    return orphans


def test_the_sandbox_is_what_the_report_says(graded):
    report = (graded["output"] / "report.html").read_text()
    if privileged():
        assert "unprivileged user" in report and "without network" in report
    else:
        assert "no root rights" in report
    assert "forked" not in report  # the fork bomb's output stays in its own notebook


def test_feedback_never_shows_hidden_tests(graded):
    output = graded["output"]
    solution = nbformat.read(ROOT / "solutions" / T1 / f"{T1}.ipynb", as_version=4)
    hidden = [line.strip() for cell in solution.cells for line in cell.source.splitlines()
              if line.startswith("check_") and "seed=" in line]
    assert len(hidden) >= 8
    pages = list((output / "feedback").rglob("*.html"))
    graded_students = {(r["student"], r["tutorial"]) for r in graded["first"].rows
                       if r["tutorial"] != "unknown"}
    assert len(pages) == len(graded_students)
    for page in pages:
        text = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in text
        for line in hidden:
            assert line not in text, (page, line)
    correct = (output / "feedback" / "correct" / f"{T1}.html").read_text()
    assert "9 / 9" in correct and "is correct" in correct
    wrong = (output / "feedback" / "wrong" / f"{T1}.html").read_text()
    assert "0 / 9" in wrong and "Vh" in wrong  # the check's diagnosis of the mistake


def test_the_gradebook_holds_the_same_grades(graded):
    db = f"sqlite:///{graded['output'] / 'gradebook.db'}"
    rows = {(r["student"], r["tutorial"]): r for r in graded["first"].rows}
    with Gradebook(db) as gb:
        for e in graded["expected"]:
            if e.tutorial != T1 or e.status != "graded":
                continue
            notebook = gb.find_submission_notebook(T1, T1, e.student)
            scores = {g.name: g.auto_score for g in notebook.grades if g.name in T1_TESTS}
            assert scores == e.scores, e.student
            assert rows[(e.student, T1)]["score"] == e.total
            manual = [g for g in notebook.grades if g.name not in T1_TESTS]
            assert manual and all(g.needs_manual_grade for g in manual)


def test_progress_is_shown_and_a_second_run_changes_nothing(graded):
    jobs = [line for line in graded["lines"] if line.startswith("[")]
    named_badly = [line for line in graded["lines"] if line.startswith("  rejected")]
    assert len(jobs) + len(named_badly) == len(graded["first"].graded_now) > 40
    assert len(named_badly) == 1  # Untitled.ipynb: no tutorial in its name
    failed = [(r.student, r.tutorial, r.message) for r in graded["first"].graded_now if r.status == "error"]
    assert failed == []  # an error row is graded again by the next run
    assert graded["second"].graded_now == []
    assert graded["csv_first"] == graded["csv_second"]


def test_a_resubmission_in_a_later_run_replaces_the_earlier_grade(graded, tmp_path):
    inputs, output = tmp_path / "later", graded["output"]
    inputs.mkdir()
    (inputs / "untouched").mkdir()
    notebook = filled(_answers(**dict.fromkeys(ALL, "correct")))
    nbformat.write(notebook, inputs / "untouched" / f"{T1}.ipynb")
    shutil.copy(graded["inputs"] / "correct" / f"{T1}.ipynb", inputs / f"correct_{T1}.ipynb")
    later = grade_class(inputs, output, course=graded["course"], tutorials=[T1], workers=1,
                        settings=graded["settings"], progress=None)
    assert [r.student for r in later.graded_now] == ["untouched"]
    rows = [r for r in _rows(output) if r["student"] == "untouched" and r["tutorial"] == T1]
    assert len(rows) == 1 and float(rows[0]["score"]) == 9
