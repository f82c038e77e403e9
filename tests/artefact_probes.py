"""Builds for the tests of the artefact registry (``tests/test_artefacts.py``; not a test module).

They live apart from the test module so that a build process imports nothing heavy to run them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def counted(folder: str, name: str) -> str:
    """A build that leaves a mark for each time it runs."""
    marks = Path(folder)
    (marks / f"{name}-{os.getpid()}-{len(list(marks.iterdir()))}").touch()
    return f"{name} built"


def failing() -> None:
    raise ValueError("the build broke here")


def waiting_for(path: str) -> str:
    """A long build: it ends when ``path`` appears (at most a minute)."""
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "long"
