"""``python -m autograder formgrade -o OUTPUT``: nbgrader's formgrader on the grader's gradebook.

nbgrader 0.9 has no ``nbgrader formgrade`` command: the formgrader is a Jupyter Server extension
(``nbgrader.server_extensions.formgrader``) that serves ``/formgrader`` and reads its course
folder from an ``nbgrader_config.py`` in the folder the server starts in.  This module writes that
file into the output folder (:func:`write_config`: the folder is the course root, its
``gradebook.db`` the gradebook, ``autograded/`` what the formgrader shows) and starts
``jupyter server`` there with only the formgrader enabled, on ``127.0.0.1``.

The autograded notebooks it shows were cleaned when the grader wrote them
(:func:`~autograder.grading.outputs.report.neutralise_notebook`): nothing a student wrote runs in the
instructor's browser.  After marking, ``python -m autograder grades -o OUTPUT`` (or the next
grading run) puts the hand marks into ``grades.csv`` and the feedback pages.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG_NAME = "nbgrader_config.py"
EXTENSION = "nbgrader.server_extensions.formgrader"
STUDENT_EXTENSIONS = ("nbgrader.server_extensions.assignment_list",
                      "nbgrader.server_extensions.course_list",
                      "nbgrader.server_extensions.validate_assignment")
_CONFIG = '''"""Written by `python -m autograder formgrade`: nbgrader's formgrader on this output folder."""

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "dlnn-course"
c.CourseDirectory.root = {root!r}
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "nbgrader_feedback"  # feedback/ holds the grader's pages
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.db_url = {db_url!r}
c.Exchange.root = {exchange!r}  # unused; a folder of its own, not /usr/local/share
'''


def write_config(output: Path, db_url: str | None = None) -> Path:
    """Write ``OUTPUT/nbgrader_config.py`` for the formgrader; return its path.

    Raises
    ------
    FileNotFoundError
        When ``output`` holds no gradebook or no autograded notebook (nothing graded yet).
    """
    output = Path(output).resolve()
    db_url = db_url or f"sqlite:///{output / 'gradebook.db'}"
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///"):]).is_file():
        raise FileNotFoundError(
            f"no gradebook in {output}: grade the class into it first "
            f"(python -m autograder SUBMISSIONS -o {output})")
    if not (output / "autograded").is_dir():
        raise FileNotFoundError(
            f"no autograded notebooks in {output}: grade the class into it first "
            f"(python -m autograder SUBMISSIONS -o {output})")
    path = output / CONFIG_NAME
    (output / "exchange").mkdir(mode=0o700, exist_ok=True)
    path.write_text(_CONFIG.format(root=str(output), db_url=db_url,
                                   exchange=str(output / "exchange")), encoding="utf-8")
    return path


def server_command(output: Path, port: int = 8888, open_browser: bool = True,
                   extra: list[str] = ()) -> list[str]:
    """The ``jupyter server`` command line that serves the formgrader of ``output``."""
    return [
        sys.executable, "-m", "jupyter_server",
        f"--ServerApp.root_dir={Path(output).resolve()}",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.open_browser={open_browser}",
        "--ServerApp.default_url=/formgrader",
        # the formgrader; not the students' extensions nbgrader also installs, no terminals
        f"--ServerApp.jpserver_extensions={EXTENSION}=True",
        *(f"--ServerApp.jpserver_extensions={name}=False" for name in STUDENT_EXTENSIONS),
        "--ServerApp.terminals_enabled=False",
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),
        *extra,
    ]


def serve(output: Path, db_url: str | None = None, port: int = 8888, open_browser: bool = True,
          extra: list[str] = ()) -> int:
    """Write the configuration and run the formgrader until interrupted; return its exit status."""
    output = Path(output).resolve()
    write_config(output, db_url)
    command = server_command(output, port, open_browser, extra)
    print(f"formgrader of {output}: http://127.0.0.1:{port}/formgrader (Ctrl-C stops it); then "
          f"python -m autograder grades -o {output}", flush=True)
    env = dict(os.environ)
    scripts = str(Path(sys.executable).parent)  # nbgrader's Gradebook runs `alembic` from PATH
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    try:
        return subprocess.call(command, cwd=output, env=env)
    except KeyboardInterrupt:
        return 0
