"""The course layout: tutorial IDs and folders, read from ``nbgrader_config.py``.

Like nbgrader's ``CourseDirectory``, everything else (the build script, the site, the grader, the
tests) asks this module where the solution and student notebooks live instead of writing the folder
names again.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "nbgrader_config.py"

REPOSITORY = "https://github.com/dlnn-course/dlnn-course"
"""The instructor's Git repository of the course (private: the solutions, hidden tests, reference
answers, grader and build).  Written here, outside the student package, so that the student release
never names it (``release`` refuses a tree that does); students use
:data:`dlnn_helpers.course.STUDENT_REPOSITORY`."""


@cache
def course_directory(config: Path = CONFIG) -> dict[str, str]:
    """The ``CourseDirectory`` settings of an nbgrader configuration file, as plain strings.

    Raises
    ------
    FileNotFoundError
        When ``config`` does not exist.
    """
    from traitlets.config.loader import PyFileConfigLoader

    if not config.is_file():
        raise FileNotFoundError(f"no nbgrader configuration at {config}")
    loaded = PyFileConfigLoader(config.name, path=str(config.parent)).load_config()
    return {key: str(value) for key, value in loaded.get("CourseDirectory", {}).items()}


def _setting(root: Path, name: str, default: str) -> str:
    return course_directory(Path(root) / CONFIG.name).get(name, default)


def source_folder(root: Path = ROOT) -> Path:
    """nbgrader's source folder of the course at ``root``: the solution notebooks (``solutions/``)."""
    return Path(root) / _setting(root, "source_directory", "source")


def release_folder(root: Path = ROOT) -> Path:
    """nbgrader's release folder of the course at ``root``: the student notebooks (``tutorials/``)."""
    return Path(root) / _setting(root, "release_directory", "release")


def tutorial_ids(root: Path = ROOT) -> list[str]:
    """Names of the tutorials: folders of the source folder holding a notebook of the same name.

    Sorted by name, which is the course order (``T1_…`` to ``T6_…``).
    """
    return sorted(
        p.parent.name for p in source_folder(root).glob("*/*.ipynb") if p.stem == p.parent.name
    )


def solution_path(tutorial: str, root: Path = ROOT) -> Path:
    """``solutions/<ID>/<ID>.ipynb``."""
    return source_folder(root) / tutorial / f"{tutorial}.ipynb"


def student_path(tutorial: str, root: Path = ROOT) -> Path:
    """``tutorials/<ID>/<ID>.ipynb``."""
    return release_folder(root) / tutorial / f"{tutorial}.ipynb"


def repository_path(path: Path, root: Path = ROOT) -> str:
    """``path`` as written inside the repository (``tutorials/<ID>/<ID>.ipynb``)."""
    return path.relative_to(root).as_posix()
