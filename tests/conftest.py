"""Session fixtures: every expensive artefact is built once per test run and shared.

* ``reference_run(tutorial)``: the solution notebook executed once (full run, static widgets) —
  the site's reference run, also used by the notebook and claims tests;
* ``site_editions``: both editions of the course site, built from those runs;
* ``generated_course``: one ``nbgrader generate_assignment`` of the whole course, in a private copy;
* ``autograded_course``: that copy after one ``nbgrader autograde`` of the solution and of the
  untouched student notebook of every tutorial.

Every test that uses one of them is marked ``slow`` automatically.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import nbformat
import pytest

from .tools import TUTORIALS, copy_course, course, nbgrader


class _ReferenceRuns:
    """Each solution notebook executed at most once per session (thread-safe, on demand).

    The first request starts every tutorial's run, two notebooks at a time (one kernel each), so
    that the slow T3 overlaps with the others.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict = {}
        self.seconds: dict[str, float] = {}

    def _run(self, tutorial: str) -> nbformat.NotebookNode:
        start = time.perf_counter()
        nb = course.reference_notebook(tutorial, fresh=True)
        self.seconds[tutorial] = time.perf_counter() - start
        return nb

    def __call__(self, tutorial: str) -> nbformat.NotebookNode:
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if not self._futures:
                self._pool = ThreadPoolExecutor(max_workers=2)
                order = sorted(TUTORIALS, key=lambda t: t != "T3_TrainingDeepNetworks")  # longest first
                self._futures = {t: self._pool.submit(self._run, t) for t in order}
        return self._futures[tutorial].result()


@pytest.fixture(scope="session")
def reference_run() -> Callable[[str], nbformat.NotebookNode]:
    """``reference_run(tutorial)``: the executed solution notebook, run once per test session."""
    return _ReferenceRuns()


@pytest.fixture(scope="session")
def site_editions(reference_run) -> dict:
    """Build the student and the instructor edition (warnings are errors); return their folders.

    The value maps each edition to its HTML folder; ``"seconds"`` maps it to its build time.  The
    pages come from this session's reference runs (``reference_notebook`` finds them cached).
    """
    for tutorial in TUTORIALS:
        reference_run(tutorial)
    built: dict = {"seconds": {}}
    for edition in course.EDITIONS:
        start = time.perf_counter()
        assert course.cmd_site(edition) == 0, f"the {edition} edition failed to build"
        built["seconds"][edition] = time.perf_counter() - start
        built[edition] = course.edition_output(edition)
    return built


# Tests that use these fixtures execute notebooks or build the site: the `slow` tier.
SLOW_FIXTURES = {"reference_run", "site_editions", "generated_course", "autograded_course"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def generated_course(tmp_path_factory):
    """A private copy of the course after one ``nbgrader generate_assignment`` of every tutorial
    (student notebooks in its ``tutorials/``, assignments in its gradebook)."""
    copy = copy_course(tmp_path_factory.mktemp("course"))
    course.generate(copy, TUTORIALS)
    return copy


@pytest.fixture(scope="session")
def autograded_course(generated_course):
    """``generated_course`` after ``nbgrader autograde`` of two submissions of every tutorial:
    ``reference`` (the solution notebook) and ``untouched`` (the student notebook as released).

    nbgrader runs them as in grading (``NBGRADER_EXECUTION`` set: heavy demonstrations shrink).
    """
    root = generated_course
    for tutorial in TUTORIALS:
        sources = {
            "reference": course.solution_path(tutorial),
            "untouched": root / "tutorials" / tutorial / f"{tutorial}.ipynb",
        }
        for student, source in sources.items():
            target = root / "autograder" / "submitted" / student / tutorial
            target.mkdir(parents=True)
            (target / f"{tutorial}.ipynb").write_bytes(source.read_bytes())
        nbgrader(root, "autograde", tutorial, "--force", "--create", "--log-level=ERROR")
    return root
