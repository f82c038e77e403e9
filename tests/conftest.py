"""Shared fixtures: the two editions of the course site, built once per test session."""

from __future__ import annotations

import time

import pytest

from .tools import course


@pytest.fixture(scope="session")
def site_editions() -> dict:
    """Build the student and the instructor edition (warnings are errors); return their folders.

    The value maps each edition to its HTML folder; ``"seconds"`` maps it to its build time.
    """
    built: dict = {"seconds": {}}
    for edition in course.EDITIONS:
        start = time.perf_counter()
        assert course.cmd_site(edition) == 0, f"the {edition} edition failed to build"
        built["seconds"][edition] = time.perf_counter() - start
        built[edition] = course.edition_output(edition)
    return built
