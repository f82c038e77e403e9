"""Calibration and preparation are done once: per content of the course and grader, per sandbox.

Each test grades a one-student class in a private copy of the course with its own calibration
folder, and reads what the grader said it did (its progress lines) and what it kept.  The class's
tutorial is a tiny one added to the copy (:mod:`.tiny_course`): the mechanism is the same for every
tutorial, and the eight runs of its notebook (five students, three reference solutions) cost less
than tutorial 1's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autograder.grading import spec as spec_module
from autograder.grading.runner import calibration_key, grade_class
from courselayout import course_layout

from .conftest import sandbox_settings
from .tiny_course import POINTS, TINY, tiny_course, tiny_submission

pytestmark = [pytest.mark.grading, pytest.mark.slow]
CHECKING = "checking the grader on the reference solutions of"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The course with the tiny tutorial (read only by the tests: each keeps its own output)."""
    return tiny_course(tmp_path_factory.mktemp("calibration") / "course")


def _class(folder: Path) -> Path:
    tiny_submission(folder / "ada" / f"{TINY}.ipynb")
    return folder


def _grade(submissions: Path, output: Path, course: Path, calibration: Path) -> tuple[list[str], dict]:
    lines: list[str] = []
    graded = grade_class(submissions, output, course=course, workers=1, settings=sandbox_settings(),
                         progress=lines.append, calibration_cache=calibration)
    return lines, {(r["student"], r["tutorial"]): r["score"] for r in graded.rows}


def test_calibration_only_for_the_tutorials_graded_and_once_per_content(course, tmp_path, monkeypatch):
    submissions = _class(tmp_path / "class")
    calibration = tmp_path / "calibration"
    generated: list[str] = []
    generate = spec_module._generate

    def counted(course, tutorial, db_url, release):
        generated.append(tutorial)
        return generate(course, tutorial, db_url, release)

    monkeypatch.setattr(spec_module, "_generate", counted)

    # A class with only files of the tiny tutorial: it alone is prepared and calibrated.
    lines, scores = _grade(submissions, tmp_path / "first", course, calibration)
    checked = [line for line in lines if line.startswith(CHECKING)]
    assert checked == [f"{CHECKING} {TINY}"], lines
    assert generated == [TINY], "only the tutorial of the class is prepared"
    assert sorted(p.name for p in (tmp_path / "first" / "cache").glob("*.json")) == [f"{TINY}.json"]
    kept = list(calibration.glob("*.json"))
    assert len(kept) == 1 and kept[0].name.startswith(f"{TINY}-"), kept
    assert scores == {("ada", TINY): float(POINTS)}
    others = [t for t in course_layout(course).tutorial_ids() if t != TINY]
    assert others and not any(t in line for t in others for line in lines if "prepar" in line)

    # Another output folder, nothing changed: nbgrader registers the tutorial in its new
    # gradebook, the calibration is reused.
    lines, again = _grade(submissions, tmp_path / "second", course, calibration)
    assert not [line for line in lines if line.startswith(CHECKING)], lines
    assert any("already checked on this machine" in line and TINY in line for line in lines), lines
    assert again == scores and generated == [TINY, TINY]

    # A copied output folder (gradebook and all): neither nbgrader's preparation nor the
    # calibration runs again.
    shutil.copytree(tmp_path / "second", tmp_path / "copy")
    (tmp_path / "copy" / "state.json").unlink()
    lines, copied = _grade(submissions, tmp_path / "copy", course, calibration)
    assert generated == [TINY, TINY], "the copied gradebook holds the tutorial: no generate_assignment"
    assert not [line for line in lines if line.startswith(CHECKING)], lines
    assert copied == scores

    # A changed file of the course package (a helper the checks import): calibrated again.
    helper = tmp_path / "helper.py"
    helper.write_text("VALUE = 1\n")
    sources = spec_module.verdict_sources
    monkeypatch.setattr(spec_module, "verdict_sources", lambda: [*sources(), helper])
    lines, _ = _grade(submissions, tmp_path / "third", course, calibration)
    assert [line for line in lines if line.startswith(CHECKING)] == [f"{CHECKING} {TINY}"], lines
    helper.write_text("VALUE = 2\n")
    lines, _ = _grade(submissions, tmp_path / "fourth", course, calibration)
    assert [line for line in lines if line.startswith(CHECKING)] == [f"{CHECKING} {TINY}"], lines
    assert len(list(calibration.glob("*.json"))) == 3, "one calibration per content"


def test_the_calibration_key_follows_content_and_sandbox_not_hidden_folders(course, tmp_path):
    spec = spec_module.prepare(course, TINY, f"sqlite:///{tmp_path / 'gradebook.db'}",
                               tmp_path / "cache")
    settings = sandbox_settings()
    key = calibration_key(spec, settings, False)
    settings.hide = [*settings.hide, str(tmp_path / "elsewhere")]
    assert calibration_key(spec, settings, False) == key, "hidden host folders change nothing"
    assert calibration_key(spec, settings, True) != key, "running the demonstrations does"
    settings.memory_bytes //= 2
    assert calibration_key(spec, settings, False) != key, "the sandbox's limits do"
    settings.memory_bytes *= 2
    spec.fingerprint = "0" * 16
    assert calibration_key(spec, settings, False) != key, "the content does"
