"""dlnn_helpers.course: where the course lives (Colab badge, install requirement) and in which
environment a notebook runs (Colab, the site build, nbgrader)."""

from __future__ import annotations

import sys
import types

from dlnn_helpers import course
from dlnn_helpers.course import STATIC_ENV_VAR


def test_colab_url_and_pip_requirement_point_at_the_student_repository():
    # the address itself is written once, in dlnn_helpers/course.py (test_notebooks checks that)
    path = "tutorials/T1_DeepLinearNetworks/T1_DeepLinearNetworks.ipynb"
    owner_repo = course.STUDENT_REPOSITORY.split("github.com/", 1)[1]
    assert owner_repo.count("/") == 1
    assert course.colab_url(path) == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/{course.BRANCH}/{path}")
    assert course.pip_requirement() == f"dlnn-course @ git+{course.STUDENT_REPOSITORY}@{course.BRANCH}"


def test_in_colab_exactly_when_colab_is_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not course.in_colab()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert course.in_colab()


def test_static_figures_while_autograding(monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not course.static_figures()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert course.static_figures()
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    assert course.static_figures()
    monkeypatch.setenv(STATIC_ENV_VAR, "0")
    assert not course.static_figures()  # only 1 switches the figures to static
