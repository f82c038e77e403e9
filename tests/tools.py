"""Helpers shared by the course, site and grading tests (not a test module)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat

from coursebuild import build as course
from courselayout import CONFIG_NAME, ROOT, course_layout, tutorial_ids

TUTORIALS = tutorial_ids()


def copy_course(target: Path) -> Path:
    """Copy what nbgrader needs (config, solutions, tutorials) into ``target``; return it."""
    layout = course_layout()
    shutil.copy(ROOT / CONFIG_NAME, target / CONFIG_NAME)
    for folder in (layout.source, layout.release):
        shutil.copytree(folder, target / folder.relative_to(ROOT))
    (target / layout.work.relative_to(ROOT)).mkdir()
    return target


def nbgrader(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run an nbgrader command in the course at ``root`` (``env``: more variables for it and its
    kernels) in this process, as nbgrader's own test suite runs its commands
    (``nbgrader.tests.run_nbgrader``): the stock ``nbgrader`` application, its arguments and the
    course's ``nbgrader_config.py`` (read from the working folder, as the command reads it), without
    a fresh interpreter that imports nbgrader again.  Return its log; fail loudly with its log and
    everything the kernels it started printed.

    It changes the working folder and the environment while it runs: call it from a process that
    does nothing else at the same time (a build process of ``tests/artefacts.py``).
    """
    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    log = io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(course.tool_env(**(env or {})))
    app = NbGraderApp.instance()
    with tempfile.TemporaryFile("w+") as printed, _printing_into(printed):
        try:
            os.chdir(root)
            app.initialize(list(args))
            app.init_logging(logging.StreamHandler, [log], color=False, subapps=True)
            app.start()
            status = 0
        except NoStart:
            status = 0
        except SystemExit as stop:
            status = stop.code
        finally:
            app.reset()
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
        sys.stdout.flush()
        sys.stderr.flush()
        printed.seek(0)
        output = printed.read()
    assert status in (0, None), f"nbgrader {' '.join(args)} failed:\n{log.getvalue()}\n{output}"
    return log.getvalue()


@contextlib.contextmanager
def _printing_into(file) -> Iterator[None]:
    """This process's standard output and error, and those of the processes it starts (kernels),
    into ``file`` (as a command's output is captured)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for descriptor, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, descriptor)
            os.close(copy)


def outputs_text(nb: nbformat.NotebookNode) -> list[str]:
    """The text of every stream and error output, cell by cell."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type == "error":
                parts.append(f"{out.ename}: {out.evalue}")
        texts.append("".join(parts))
    return texts


def stderr_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [
        out.text
        for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.output_type == "stream" and out.name == "stderr"
    ]
