"""Helpers shared by the course, site and grading tests (not a test module)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
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
    kernels) as the build does (:func:`coursebuild.build.nbgrader`: nbgrader's own application, in
    this process), its output and its kernels' captured as a command's would be; fail loudly with
    that output, return it."""
    with captured_output() as printed:
        status = course.nbgrader(root, *args, **(env or {}))
        assert status == 0, f"nbgrader {' '.join(args)} failed"
        return printed()


@contextlib.contextmanager
def captured_output() -> Iterator[Callable[[], str]]:
    """What this process and the processes it starts (kernels) print inside the block, captured
    as a command's output is (file descriptors 1 and 2): yields a function that reads it (inside
    the block).  An error raised inside the block is raised again with that output."""
    with tempfile.TemporaryFile("w+") as file:
        def printed() -> str:
            sys.stdout.flush()
            sys.stderr.flush()
            file.seek(0)
            return file.read()

        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(file.fileno(), 1)
            os.dup2(file.fileno(), 2)
            yield printed
        except Exception as error:
            raise AssertionError(f"{error}\nit printed:\n{printed()}") from error
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
