"""The course layout: the one object that knows where everything of the course is and what it is called.

Like nbgrader's ``CourseDirectory``, it is built from ``nbgrader_config.py`` (its
``CourseDirectory`` folders, and the solution and hidden-test delimiters of ``ClearSolutions`` and
``ClearHiddenTests``, with nbgrader's defaults where the file sets none), and every step asks it:
the build and the release (``coursebuild``), the grader (``autograder``), the scripts, the answer
key (``dlnn_reference``) and the tests.  It knows

* the folders: solutions (nbgrader's source folder), student notebooks (its release folder),
  nbgrader's work folders (``class/``: the gradebook, submitted, autograded and feedback folders,
  apart from the grading code in ``autograder/``), the student package and the reference package;
* the tutorials (:meth:`CourseLayout.tutorial_ids`) and, for each, its topic
  (:data:`TUTORIALS`: ``T3_TrainingDeepNetworks`` is ``deep_training``, the name of its checks,
  expected values, reference and helper modules) and those modules; the helper modules several
  tutorials share (:data:`SHARED_HELPERS`);
* nbgrader's markers (:class:`Markers`);
* what the grader stages for a sandboxed kernel and what it hides from it
  (:data:`KERNEL_PACKAGES`, :data:`MASKED_PACKAGES`);
* the environment variables a notebook reads (:data:`STATIC_ENV_VAR`, :data:`AUTOGRADE_ENV_VAR`,
  defined in the released :mod:`dlnn_helpers.course`, since the student package needs them too).

It lives outside the build tool (``coursebuild``) and the grader, so that the answer key can ask it
without importing either; it is instructor-side and never part of the student release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from dlnn_helpers.course import AUTOGRADE_ENV_VAR, STATIC_ENV_VAR

__all__ = [
    "AUTOGRADE_ENV_VAR", "CONFIG_NAME", "INSTRUCTOR_PACKAGES", "KERNEL_PACKAGES", "MASKED_PACKAGES",
    "REPOSITORY", "ROOT", "SHARED_HELPERS", "STATIC_ENV_VAR", "TUTORIALS",
    "CourseLayout", "Markers", "Tutorial", "course_layout", "repository_path", "release_folder",
    "solution_path", "source_folder", "student_path", "tutorial_ids",
]

ROOT = Path(__file__).resolve().parent.parent
"""The instructor's repository (this package sits at its top)."""

CONFIG_NAME = "nbgrader_config.py"

REPOSITORY = "https://github.com/dlnn-course/dlnn-course"
"""The instructor's Git repository of the course (private: the solutions, hidden tests, reference
answers, grader and build).  Written here, outside the student package, so that the student release
never names it (``release`` refuses a tree that does); students use
:data:`dlnn_helpers.course.STUDENT_REPOSITORY`."""

STUDENT_PACKAGE = "dlnn_helpers"
"""The student package: released, imported by every notebook."""

REFERENCE_PACKAGE = "dlnn_reference"
"""The answer key: instructor only."""

KERNEL_PACKAGES = (STUDENT_PACKAGE,)
"""What the grader stages for a sandboxed kernel (a read-only copy it imports)."""

INSTRUCTOR_PACKAGES = (REFERENCE_PACKAGE,)
"""Instructor-only packages (the reference answers): never importable in a sandboxed kernel."""

MASKED_PACKAGES = (*INSTRUCTOR_PACKAGES, *KERNEL_PACKAGES)
"""Packages whose installed copies are hidden from a sandboxed kernel where a folder it sees holds
them (the kernel imports the staged copies of :data:`KERNEL_PACKAGES` only, whose expected data the
checks watch)."""


@dataclass(frozen=True)
class Tutorial:
    """One tutorial and the names it has across the course.

    The tutorial id (``T3_TrainingDeepNetworks``) names its notebooks and its claims tests
    ``tests/claims/test_<id>_claims.py``; the topic (``deep_training``) names everything else: its
    check module ``dlnn_helpers/checks/<topic>.py``, its shipped expected values
    ``dlnn_helpers/checks/expected/<topic>.json``, its reference ``dlnn_reference/<topic>.py``, its
    check tests ``tests/checks/test_<topic>_checks.py``, and its helper modules, each
    ``dlnn_helpers/<topic>.py`` or ``dlnn_helpers/<topic>_<what>.py`` and tested in
    ``tests/helpers/test_<module>.py``.
    """

    id: str
    topic: str
    helpers: tuple[str, ...]
    """The modules of the student package written for this tutorial (each named after the topic)."""
    references: tuple[str, ...] = ()
    """Reference modules besides ``dlnn_reference/<topic>.py`` (each named after the topic)."""
    uses: tuple[str, ...] = ()
    """Helper modules of earlier tutorials that this tutorial's notebook imports too."""

    @property
    def number(self) -> str:
        """``T3``."""
        return self.id.split("_", 1)[0]


TUTORIALS: tuple[Tutorial, ...] = (
    Tutorial("T1_DeepLinearNetworks", "deep_linear",
             ("deep_linear_data", "deep_linear_nets", "deep_linear_plots")),
    Tutorial("T2_Optimisation", "optimisation",
             ("optimisation_surface", "optimisation_demos", "optimisation_data")),
    Tutorial("T3_TrainingDeepNetworks", "deep_training",
             ("deep_training_data", "deep_training", "deep_training_optimisers"), ("deep_training_rules",)),
    Tutorial("T4_WeightInitialisation", "initialisation", ("initialisation",),
             uses=("deep_training_data", "deep_training")),
    Tutorial("T5_MultilayerPerceptrons", "mlp",
             ("mlp_activations", "mlp_backprop", "mlp_regression", "mlp_data")),
    Tutorial("T6_ReLUFeatures", "relu_features", ("relu_features",)),
)
"""Every tutorial of the course with its topic and helper modules, in course order."""

SHARED_HELPERS: tuple[str, ...] = ("course", "run_sharing", "utils", "widgets")
"""The modules of the student package that serve several tutorials (or the course itself): the
course's facts and environment, the site build's run sharing, seeds and threads, the widget
mechanism.  Every other module of ``dlnn_helpers`` is one tutorial's helper."""


@dataclass(frozen=True)
class Markers:
    """nbgrader's delimiters as the course writes them: a line that is exactly ``### BEGIN SOLUTION``.

    nbgrader's ``ClearSolutions`` removes what lies between the solution delimiters, its
    ``ClearHiddenTests`` what lies between the hidden-test delimiters; the course writes each as a
    comment line of its own, ``###`` and the delimiter.
    """

    begin_solution: str = "### BEGIN SOLUTION"
    end_solution: str = "### END SOLUTION"
    begin_hidden_tests: str = "### BEGIN HIDDEN TESTS"
    end_hidden_tests: str = "### END HIDDEN TESTS"

    COMMENT = "### "
    NBGRADER_DEFAULTS = {
        "begin_solution": ("ClearSolutions", "begin_solution_delimeter", "BEGIN SOLUTION"),
        "end_solution": ("ClearSolutions", "end_solution_delimeter", "END SOLUTION"),
        "begin_hidden_tests": ("ClearHiddenTests", "begin_test_delimeter", "BEGIN HIDDEN TESTS"),
        "end_hidden_tests": ("ClearHiddenTests", "end_test_delimeter", "END HIDDEN TESTS"),
    }
    """Field -> (nbgrader class, its trait, nbgrader's default): where the delimiter is set."""

    @property
    def solution(self) -> tuple[str, str]:
        return self.begin_solution, self.end_solution

    @property
    def hidden_tests(self) -> tuple[str, str]:
        return self.begin_hidden_tests, self.end_hidden_tests

    def is_solution_marker(self, line: str) -> bool:
        """Whether ``line`` (stripped) is a solution delimiter."""
        return line.strip() in self.solution

    def between(self, source: str, begin: str, end: str) -> list[str]:
        """The stripped lines of ``source`` between the delimiter lines ``begin`` and ``end``."""
        lines, inside = [], False
        for line in source.splitlines():
            text = line.strip()
            if text == begin:
                inside = True
            elif text == end:
                inside = False
            elif inside:
                lines.append(text)
        return lines


@cache
def _config(path: Path) -> dict[str, dict[str, str]]:
    from traitlets.config.loader import PyFileConfigLoader

    if not path.is_file():
        raise FileNotFoundError(f"no nbgrader configuration at {path}")
    loaded = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    return {section: {key: str(value) for key, value in loaded[section].items()}
            for section in loaded if hasattr(loaded[section], "items")}


@dataclass(frozen=True)
class CourseLayout:
    """The folders, tutorials, markers and names of the course at :attr:`root`.

    Build it with :func:`course_layout` (cached per root), which reads ``root/nbgrader_config.py``.
    """

    root: Path
    source: Path
    """nbgrader's source folder: the solution notebooks (``solutions/``)."""
    release: Path
    """nbgrader's release folder: the student notebooks (``tutorials/``)."""
    submitted: Path
    """nbgrader's work folders (``class/submitted``, ``class/autograded``, ``class/feedback``),
    apart from the grading code (``autograder/``)."""
    autograded: Path
    feedback: Path
    db_url: str = ""
    """nbgrader's gradebook (``sqlite:///…/class/gradebook.db``)."""
    markers: Markers = field(default_factory=Markers)
    tutorials: tuple[Tutorial, ...] = TUTORIALS

    @classmethod
    def from_config(cls, root: Path = ROOT) -> CourseLayout:
        """The layout of the course at ``root``, read from its ``nbgrader_config.py``.

        Raises
        ------
        FileNotFoundError
            When ``root`` holds no ``nbgrader_config.py``.
        """
        root = Path(root)
        config = _config(root / CONFIG_NAME)
        folders = config.get("CourseDirectory", {})

        def folder(name: str, default: str) -> Path:
            return root / folders.get(name, default)

        markers = {
            name: Markers.COMMENT + config.get(section, {}).get(trait, default)
            for name, (section, trait, default) in Markers.NBGRADER_DEFAULTS.items()
        }
        return cls(
            root=root,
            source=folder("source_directory", "source"),
            release=folder("release_directory", "release"),
            submitted=folder("submitted_directory", "submitted"),
            autograded=folder("autograded_directory", "autograded"),
            feedback=folder("feedback_directory", "feedback"),
            db_url=folders.get("db_url", f"sqlite:///{root / 'gradebook.db'}"),
            markers=Markers(**markers),
        )

    # -------------------------------------------------------------------------------- notebooks

    def tutorial_ids(self) -> list[str]:
        """Names of the tutorials: folders of the source folder holding a notebook of the same name.

        Sorted by name, which is the course order (``T1_…`` to ``T6_…``).
        """
        return sorted(
            p.parent.name for p in self.source.glob("*/*.ipynb") if p.stem == p.parent.name
        )

    def solution_path(self, tutorial: str) -> Path:
        """``solutions/<ID>/<ID>.ipynb``."""
        return self.source / tutorial / f"{tutorial}.ipynb"

    def student_path(self, tutorial: str) -> Path:
        """``tutorials/<ID>/<ID>.ipynb``."""
        return self.release / tutorial / f"{tutorial}.ipynb"

    def repository_path(self, path: Path) -> str:
        """``path`` as written inside the repository (``tutorials/<ID>/<ID>.ipynb``)."""
        return Path(path).relative_to(self.root).as_posix()

    # -------------------------------------------------------------------------------- packages

    @property
    def student_package(self) -> Path:
        """The student package's folder (``dlnn_helpers/``)."""
        return self.root / STUDENT_PACKAGE

    @property
    def reference_package(self) -> Path:
        """The answer key's folder (``dlnn_reference/``)."""
        return self.root / REFERENCE_PACKAGE

    @property
    def work(self) -> Path:
        """nbgrader's work folder: the gradebook and the submitted, autograded and feedback folders
        (``class/``; the grading code lives apart, in ``autograder/``)."""
        return self.submitted.parent

    @property
    def site_pages(self) -> Path:
        """The site's generated tutorial pages (``book/``, listed in ``_toc.yml``)."""
        return self.root / "book"

    @property
    def build(self) -> Path:
        """Build outputs (``_build/``: reference runs, the site)."""
        return self.root / "_build"

    # -------------------------------------------------------------------------------- names

    def tutorial(self, name: str) -> Tutorial:
        """The tutorial of an id (``T3_TrainingDeepNetworks``) or of a topic (``deep_training``).

        Raises
        ------
        KeyError
            When no tutorial of the course has that id or topic.
        """
        for tutorial in self.tutorials:
            if name in (tutorial.id, tutorial.topic):
                return tutorial
        raise KeyError(f"{name!r} is neither a tutorial nor a topic of the course "
                       f"({', '.join(t.id for t in self.tutorials)})")

    def topic(self, tutorial: str) -> str:
        """``deep_training`` for ``T3_TrainingDeepNetworks``."""
        return self.tutorial(tutorial).topic


@cache
def course_layout(root: Path = ROOT) -> CourseLayout:
    """The layout of the course at ``root`` (default: this repository), read once."""
    return CourseLayout.from_config(Path(root))


# The same questions as functions of the course root (``root`` defaults to this repository).


def source_folder(root: Path = ROOT) -> Path:
    """nbgrader's source folder of the course at ``root``: the solution notebooks (``solutions/``)."""
    return course_layout(root).source


def release_folder(root: Path = ROOT) -> Path:
    """nbgrader's release folder of the course at ``root``: the student notebooks (``tutorials/``)."""
    return course_layout(root).release


def tutorial_ids(root: Path = ROOT) -> list[str]:
    """The tutorials of the course at ``root`` (see :meth:`CourseLayout.tutorial_ids`)."""
    return course_layout(root).tutorial_ids()


def solution_path(tutorial: str, root: Path = ROOT) -> Path:
    """``solutions/<ID>/<ID>.ipynb``."""
    return course_layout(root).solution_path(tutorial)


def student_path(tutorial: str, root: Path = ROOT) -> Path:
    """``tutorials/<ID>/<ID>.ipynb``."""
    return course_layout(root).student_path(tutorial)


def repository_path(path: Path, root: Path = ROOT) -> str:
    """``path`` as written inside the repository (``tutorials/<ID>/<ID>.ipynb``)."""
    return course_layout(root).repository_path(path)
