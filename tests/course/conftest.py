"""The student release, written once per test session (``release_tree``).

It is built in the background like the other artefacts (``tests/artefacts.py``), after every
reference run of the session, whose cached pages it reuses; the tests that use it are marked
``slow`` automatically.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..artefacts import ARTEFACTS
from ..tools import TUTORIALS


def _release() -> Path:
    """``python scripts/course.py release`` into a folder of the session (a build-process function)."""
    from coursebuild import release

    dest = ARTEFACTS.folder("release") / "student-repo"
    release.write(dest)
    return dest


ARTEFACTS.register("release", _release, {"release_tree"}, priority=95,
                   after=tuple(f"reference:{tutorial}" for tutorial in TUTORIALS))


@pytest.fixture(scope="session")
def release_tree() -> Path:
    """The folder of the student repository written by ``release`` (read it, never change it)."""
    return ARTEFACTS.get("release")
