"""Facts about the course itself: where it lives and in which environment a notebook runs.

:data:`STUDENT_REPOSITORY` is the public repository of the course: the student notebooks, this
package and the course site.  The Colab badge and the Colab install cell of every notebook point
there (students open the tutorials there, and the package installs from there).
"""

from __future__ import annotations

import os
import sys

STUDENT_REPOSITORY = "https://github.com/dlnn-course/dlnn-course-student"
"""The public Git repository of the course: Colab opens the notebooks and installs this package
from here."""

BRANCH = "main"

STATIC_ENV_VAR = "DLNN_STATIC_WIDGETS"
"""When this environment variable is set to 1, widgets draw one static figure instead.

The site build sets it, so that the published pages show every figure without widget JavaScript.
"""


def colab_url(notebook_path: str) -> str:
    """Return the "Open in Colab" address of a notebook given by its path inside the student repository."""
    owner_repo = STUDENT_REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{BRANCH}/{notebook_path}"


def pip_requirement() -> str:
    """Return the pip requirement that installs this package from the student repository."""
    return f"dlnn-course @ git+{STUDENT_REPOSITORY}@{BRANCH}"


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


AUTOGRADE_ENV_VAR = "NBGRADER_EXECUTION"
"""nbgrader sets this environment variable while it executes a notebook (autograde, validate)."""


def static_figures() -> bool:
    """True when widgets must draw static figures instead of interactive controls.

    That is when :data:`STATIC_ENV_VAR` is 1 (the site build, the notebook tests) or while nbgrader
    executes the notebook (:data:`AUTOGRADE_ENV_VAR`).  Nobody can move a slider there, and
    executing widget code without a front end can stall the kernel (nbclient issue #312).
    """
    return os.environ.get(STATIC_ENV_VAR, "") == "1" or bool(os.environ.get(AUTOGRADE_ENV_VAR))
