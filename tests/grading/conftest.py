"""One prepared and calibrated grading environment per test session, shared by every grading test.

Preparing a course for grading registers every tutorial in a gradebook (nbgrader
``generate_assignment``) and calibrates it: every reference solution is graded once, in a sandboxed
kernel.  That executes every solution notebook, so it is done once per session
(:func:`grading_env`); each test grades in its own copy of the prepared output folder
(:meth:`GradingEnv.output`), which reuses the gradebook and the calibrated specs as they are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.grading.runner import CALIBRATION_ENV, grade_class
from autograder.grading.sandbox import SandboxSettings
from autograder.grading.spec import relocate
from courselayout import course_layout

from ..artefacts import ARTEFACTS
from ..tools import ROOT, copy_course

# The tests keep their calibrations apart from the machine's (~/.cache): each session starts
# with none, so a test that expects a calibration gets one.
os.environ[CALIBRATION_ENV] = tempfile.mkdtemp(prefix="dlnn-test-calibration-")


def sandbox_settings() -> SandboxSettings:
    """The limits of the grading tests (generous enough for a loaded 2-core machine)."""
    return SandboxSettings(cell_timeout=20, notebook_timeout=90, processes=64, hide=[str(ROOT)])


@dataclass
class GradingEnv:
    """A private copy of the course, prepared and calibrated for every tutorial."""

    course: Path
    prepared: Path
    """An output folder holding only the gradebook and the calibrated specs (``cache/``)."""
    tutorials: list[str]

    def output(self, target: Path) -> Path:
        """A fresh output folder for one grading run, with the prepared gradebook and specs."""
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.prepared / "gradebook.db", target / "gradebook.db")
        shutil.copytree(self.prepared / "cache", target / "cache")
        relocate(target / "cache", f"sqlite:///{target.resolve() / 'gradebook.db'}")
        return target


def build_grading_env(base: Path) -> GradingEnv:
    """Prepare (``generate_assignment``) and calibrate the course once, in a copy under ``base``."""
    course = base / "course"
    course.mkdir()
    copy_course(course)
    empty = base / "no-submissions"
    empty.mkdir()
    prepared = base / "prepared"
    grade_class(empty, prepared, course=course, workers=2, settings=sandbox_settings(),
                progress=lambda line: None, prepare_all=True)
    for stale in ("state.json", "grades.csv", "report.html"):
        (prepared / stale).unlink(missing_ok=True)
    return GradingEnv(course, prepared, course_layout(course).tutorial_ids())


# Built in the background as soon as a selected test needs it (tests/artefacts.py).
def _grading_env() -> GradingEnv:
    return build_grading_env(ARTEFACTS.folder("grading-env"))


ARTEFACTS.register("grading_env", _grading_env, {"grading_env"}, priority=10)


@pytest.fixture(scope="session")
def grading_env() -> GradingEnv:
    """The course prepared (``generate_assignment``) and calibrated once per test session."""
    return ARTEFACTS.get("grading_env")


def pytest_collection_modifyitems(config, items):
    """Tests that grade in the shared environment run notebooks: ``grading`` and ``slow``."""
    for item in items:
        if "grading_env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.grading)
            item.add_marker(pytest.mark.slow)
