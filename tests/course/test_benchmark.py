"""``scripts/benchmark_notebooks.py`` runs (on a one-cell notebook: the tiny setting)."""

from __future__ import annotations

import subprocess
import sys

import nbformat

from ..tools import ROOT, course


def test_the_notebook_benchmark_times_a_notebook(tmp_path):
    notebook = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]),
                   notebook)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_notebooks.py"), "--notebook",
         str(notebook), "--repeat", "2", "--timeout", "60"],
        capture_output=True, text=True, timeout=300, env=course.tool_env(), cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("machine:") and "repeat=2" in lines[0]
    name, median, fastest = lines[-1].split()
    assert name == "tiny" and 0 <= float(fastest) <= float(median) < 120


def test_the_notebook_benchmark_refuses_an_unknown_tutorial():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_notebooks.py"), "T9_Nothing"],
        capture_output=True, text=True, timeout=120, env=course.tool_env(),
    )
    assert done.returncode == 2 and "no such tutorial: T9_Nothing" in done.stderr
