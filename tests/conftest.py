"""Session fixtures: every expensive artefact is built once per test run and shared.

* ``reference_run(tutorial)``: the solution notebook executed once (full run, static widgets) —
  the site's reference run, also used by the notebook and claims tests;
* ``site_editions``: both editions of the course site, built from those runs;
* ``generated_course(tutorial)``: one ``nbgrader generate_assignment`` of each tutorial, in a
  private copy of the course;
* ``autograded_course(tutorial)``: that copy after one ``nbgrader autograde`` of the solution and
  of the untouched student notebook;
* ``grading_env`` (``tests/grading/conftest.py``): the grading command's prepared and calibrated
  environment.

They are built in the background (``tests/artefacts.py``) as soon as the tests that need them are
known; the modules that use none of them run first.  Every test that uses one of them is marked
``slow`` automatically.

The tests run in two processes (pytest-xdist, ``-n auto --dist loadfile`` in ``pyproject.toml``:
each test module in one process, so that a module's fixtures are made once); the two share one
artefact folder, so every artefact is still built once per session, in one build process per
worker.  ``-n 0`` runs everything in one process (with two build processes), as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import nbformat
import pytest
import torch

from courselayout import course_layout
from dlnn_helpers.deep_training import RECORD_ENV_VAR
from dlnn_reference.deep_training import RUN_TUTORIALS

from .artefacts import ARTEFACTS, SHARED_VARIABLE
from .tools import TUTORIALS, captured_output, copy_course, course, nbgrader

# This process and every process it starts (build processes, kernels, nbgrader, the grader)
# compute on one thread each unless the caller's environment says otherwise: while the tests run, two
# build processes keep both cores busy (``tests/artefacts.py``), and two OpenMP threads on a busy core
# wait for each other, spinning (tutorial 1's training run in the claims tests: 3 s on one thread,
# 25 s on two under that load).  The course's long runs already train on one thread
# (``dlnn_helpers.deep_training.DEFAULT_THREADS``, ``torch_threads(1)`` in the other helpers), as the
# grader's kernels do; a test that is about thread counts sets them itself.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

MAX_WORKERS = 2
"""Test processes of ``-n auto``: two cores' worth (every worker imports torch and runs kernels;
more workers than cores only add memory and waiting)."""


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: at most :data:`MAX_WORKERS` test processes, one per core."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def _xdist_workers(config) -> int:
    return int(getattr(config, "workerinput", {}).get("workercount", 0))


def pytest_configure(config):
    """The process that starts pytest-xdist's workers makes the folder they share artefacts in;
    a worker builds its share of them in one build process of its own."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        os.environ[SHARED_VARIABLE] = config._dlnn_shared = tempfile.mkdtemp(
            prefix="dlnn-test-artefacts-")
    elif _xdist_workers(config) > 1 and os.environ.get(SHARED_VARIABLE):
        ARTEFACTS.shared = Path(os.environ[SHARED_VARIABLE])
        ARTEFACTS.workers = max(1, ARTEFACTS.workers // _xdist_workers(config))


def pytest_unconfigure(config):
    shared = getattr(config, "_dlnn_shared", None)
    if shared:
        shutil.rmtree(shared, ignore_errors=True)


LONGEST_FIRST = ["T3_TrainingDeepNetworks", "T6_ReLUFeatures"]
BUILD_ORDER = sorted(TUTORIALS, key=lambda t: (t not in LONGEST_FIRST, t))  # longest runs first


def recorded_runs_log(tutorial: str) -> Path:
    """Where the reference run of ``tutorial`` records its training runs (T3 and T4, whose runs the
    student notebooks replay): the record ``precomputed_runs.json`` is compared with."""
    return ARTEFACTS.root() / f"recorded-runs-{tutorial}.jsonl"


def _reference(tutorial: str) -> nbformat.NotebookNode:
    """The solution notebook executed (in a build process of its own, so the variable set here
    reaches this run's kernels only)."""
    if tutorial in RUN_TUTORIALS:
        os.environ[RECORD_ENV_VAR] = str(recorded_runs_log(tutorial))
    return course.reference_notebook(tutorial, fresh=True)


for _rank, _tutorial in enumerate(BUILD_ORDER):
    ARTEFACTS.register(
        f"reference:{_tutorial}", partial(_reference, _tutorial),
        {"reference_run", "site_editions"}, priority=0 if _rank == 0 else 20 + _rank, tutorial=_tutorial,
    )


def _course(tutorial: str) -> Path:
    """A private copy of the course for one tutorial: ``generate_assignment``, then nbgrader's
    autograde of the solution (``reference``) and the untouched student notebook (``untouched``).

    One copy (and gradebook) per tutorial, so that the tutorials are built in parallel.
    """
    root = copy_course(ARTEFACTS.folder(f"course-{tutorial}"))
    with captured_output():  # the build's generate step, quiet as a command's output
        course.generate(root, [tutorial])
    sources = {
        "reference": course.solution_path(tutorial),
        "untouched": root / "tutorials" / tutorial / f"{tutorial}.ipynb",
    }
    for student, source in sources.items():
        target = course_layout(root).submitted / student / tutorial
        target.mkdir(parents=True)
        (target / f"{tutorial}.ipynb").write_bytes(source.read_bytes())
    # one thread per kernel, as the grader's kernels have (autograder/grading/worker.py)
    nbgrader(root, "autograde", tutorial, "--force", "--create", "--log-level=ERROR",
             env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return root


for _rank, _tutorial in enumerate(BUILD_ORDER):
    ARTEFACTS.register(
        f"course:{_tutorial}", partial(_course, _tutorial),
        {"generated_course", "autograded_course"}, priority=16 + 2 * _rank, tutorial=_tutorial,
    )


def _site() -> dict:
    """Both editions, built once every reference run is done (``after``)."""
    for edition in course.EDITIONS:
        assert course.cmd_site(edition) == 0, f"the {edition} edition failed to build"
    return {edition: course.edition_output(edition) for edition in course.EDITIONS}


ARTEFACTS.register("site", _site, {"site_editions"}, priority=90,
                   after=tuple(f"reference:{tutorial}" for tutorial in TUTORIALS))


def _fixtures_of(item) -> set[str]:
    return set(getattr(item, "fixturenames", ()))


def _slow_fixtures() -> set[str]:
    return set().union(*(a.fixtures for a in ARTEFACTS.registry.values()))


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need an artefact ``slow``; run whole modules that need none first."""
    slow = _slow_fixtures()
    slow_modules = set()
    for item in items:
        if slow & _fixtures_of(item):
            item.add_marker(pytest.mark.slow)
            slow_modules.add(item.module.__name__)
    items.sort(key=lambda item: item.module.__name__ in slow_modules)  # stable: order kept inside


def _tutorial_of(item) -> str | None:
    """The tutorial a test is about: its ``tutorial`` parameter, or its module's ``TUTORIAL``."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("tutorial") in TUTORIALS:
        return callspec.params["tutorial"]
    return getattr(item.module, "TUTORIAL", None)


def pytest_collection_finish(session):
    """Start building every artefact that a selected test needs (nothing when only collecting).

    A test about one tutorial (``-k T1_...``) queues that tutorial's builds only; an artefact it
    reaches otherwise is built when asked for.
    """
    if session.config.option.collectonly:
        return
    ARTEFACTS.prefetch([(_fixtures_of(item), _tutorial_of(item)) for item in session.items])


def pytest_sessionfinish(session, exitstatus):
    ARTEFACTS.close()


@pytest.fixture(scope="session")
def reference_run() -> Callable[[str], nbformat.NotebookNode]:
    """``reference_run(tutorial)``: the executed solution notebook, run once per test session."""
    return lambda tutorial: ARTEFACTS.get(f"reference:{tutorial}")


@pytest.fixture(scope="session")
def site_editions() -> dict:
    """Both editions of the site (warnings are errors): each edition's HTML folder.  The pages
    come from this session's reference runs."""
    return ARTEFACTS.get("site")


@pytest.fixture(scope="session")
def generated_course() -> Callable[[str], Path]:
    """``generated_course(tutorial)``: a private copy of the course after one ``nbgrader
    generate_assignment`` of that tutorial (its student notebook in ``tutorials/<ID>``)."""
    return lambda tutorial: ARTEFACTS.get(f"course:{tutorial}")


@pytest.fixture(scope="session")
def autograded_course() -> Callable[[str], Path]:
    """``autograded_course(tutorial)``: that copy after ``nbgrader autograde`` of two submissions:
    ``reference`` (the solution notebook) and ``untouched`` (the released notebook).

    nbgrader runs them as in grading (``NBGRADER_EXECUTION`` set: heavy demonstrations shrink).
    """
    return lambda tutorial: ARTEFACTS.get(f"course:{tutorial}")
