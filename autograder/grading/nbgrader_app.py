"""nbgrader run in the grader's own process: its commands, and the stamp of a new gradebook.

Every grading into a fresh output folder registers the tutorials in a new gradebook with nbgrader's
``generate_assignment``.  Run as ``python -m nbgrader`` that costs a new interpreter importing
nbgrader (about 1.5 CPU seconds per tutorial), and nbgrader's :class:`~nbgrader.api.Gradebook`
stamps every new gradebook with the head of its own migrations by asking ``alembic heads`` in yet
another new interpreter (``nbgrader.api.get_alembic_version``: 1.3 CPU seconds, 3-4 on a loaded
machine).  Here both happen in the grader's process: :func:`run_nbgrader` starts nbgrader's
application as nbgrader's own test suite does (``nbgrader.tests.run_nbgrader``), and
:func:`alembic_head` reads the head from nbgrader's migration folder with alembic's
:class:`~alembic.script.ScriptDirectory` (what ``alembic heads`` prints, without its process).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import threading
import traceback
from pathlib import Path

import nbgrader.api
from nbgrader.dbutil import ALEMBIC_DIR

_ONE_AT_A_TIME = threading.Lock()
"""nbgrader's application is a process-wide singleton that works in the current folder."""

NBGRADERS_OWN_HEAD = nbgrader.api.get_alembic_version
"""nbgrader's own way to the head: ``alembic heads`` in a new process (kept for the tests)."""


@functools.cache
def alembic_head() -> str:
    """The head revision of nbgrader's gradebook migrations, read in this process.

    The answer depends only on the installed nbgrader (its ``alembic/versions`` folder), so it is
    read once per process.

    Returns
    -------
    str
        The revision id that ``alembic heads`` prints first for nbgrader's migrations (e.g.
        ``"50a4d84c131a"``).

    Raises
    ------
    RuntimeError
        When nbgrader's migrations have no single head (a broken nbgrader install): a gradebook
        stamped with one of several heads could not be upgraded by nbgrader later.
    """
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(ALEMBIC_DIR).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"nbgrader's gradebook migrations in {ALEMBIC_DIR} have {len(heads)} "
                           f"heads ({', '.join(heads) or 'none'}), not one: reinstall nbgrader")
    return heads[0]


# A new gradebook (nbgrader.api.Gradebook on an empty database) is stamped with alembic_head(),
# here and in the generate_assignment that run_nbgrader runs in this process.
nbgrader.api.get_alembic_version = alembic_head


def run_nbgrader(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the command ``nbgrader ARGS`` in the course at ``root``, in this process.

    What a separate ``python -m nbgrader ARGS`` run in ``root`` gave, kept: a fresh nbgrader
    application for every command (the singleton is reset after it), configured only by its
    arguments and the configuration files the command reads (``root/nbgrader_config.py`` and
    Jupyter's configuration folders: the working folder is ``root`` while it runs); nothing it
    prints or logs reaches this process's stdout or stderr (both, and its log, are captured and
    returned, as the subprocess's were); the working folder, ``sys.path`` and the environment are
    restored after it.  Commands run one at a time (a lock): nothing else of this process should
    depend on the working folder meanwhile (the grader uses absolute paths).

    Parameters
    ----------
    root : Path
        The course folder (holds ``nbgrader_config.py``).
    *args : str
        The command's arguments, e.g. ``"generate_assignment", "T1", "--force"``.
    env : dict of str to str, optional
        Variables set while the command runs (for nbgrader and the kernels it starts), as a
        subprocess's environment would be.

    Returns
    -------
    tuple[int, str]
        The command's exit status and everything it printed or logged (an exception nbgrader
        did not handle: status 1 and its traceback, as the command would end).
    """
    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    with _ONE_AT_A_TIME:
        saved_env, saved_path, saved_cwd = dict(os.environ), list(sys.path), os.getcwd()
        captured = io.StringIO()
        app = None
        try:
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                os.environ.update(env or {})
                os.chdir(root)
                app = NbGraderApp.instance()
                app.initialize(list(args))
                app.start()
            status = 0
        except NoStart:
            status = 0
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except Exception:  # noqa: BLE001 - as the command would: its traceback, status 1
            captured.write(traceback.format_exc())
            status = 1
        finally:
            if app is not None:
                app.reset()
            os.chdir(saved_cwd)
            sys.path[:] = saved_path
            os.environ.clear()
            os.environ.update(saved_env)
        return status, captured.getvalue()
