"""Helpers shared by the course, site and grading tests (not a test module)."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def nbgrader(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course at ``root`` (``env``: more variables for it and its
    kernels); fail loudly with its output."""
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=root, capture_output=True, text=True, timeout=1800, env=course.tool_env(**(env or {})),
    )
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


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
