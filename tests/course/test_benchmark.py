"""``scripts/benchmark_notebooks.py`` and ``scripts/benchmark.py`` run (tiny settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest

from ..tools import ROOT, course


@pytest.mark.slow  # a fresh interpreter or kernel: seconds
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


def test_the_notebook_benchmark_refuses_an_unknown_tutorial(capsys):
    # The script's main in this process (the test above runs the script as a command), before it
    # imports what executes notebooks.
    benchmark_notebooks = _script("benchmark_notebooks")
    with pytest.raises(SystemExit) as exit_info:
        benchmark_notebooks.main(["T9_Nothing"])
    assert exit_info.value.code == 2 and "no such tutorial: T9_Nothing" in capsys.readouterr().err


def _script(name: str):
    """``scripts/<name>.py`` loaded as a module (its ``main`` not run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.grading
def test_the_benchmark_command_measures_everything_with_tiny_settings(tmp_path):
    notebook = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]),
                   notebook)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--notebook",
         str(notebook), "--json", str(tmp_path / "numbers.json")],
        capture_output=True, text=True, timeout=1200, env=course.tool_env(), cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    found = json.loads((tmp_path / "numbers.json").read_text())
    assert found["machine"]["cores"] == os.cpu_count() and len(found["machine"]["load"]) == 3
    assert found["startup"]["fresh_s"] > 0 and found["startup"]["warm_s"] > 0
    (run,) = found["grading"]["runs"]
    assert (run["workers"], run["kernels"], run["students"]) == (1, "warm", 2)
    assert run["scores"] == {"student000": 9.0, "student001": 9.0}  # correct, alternative answers
    assert set(found["reference"]) == set(found["student"]) == {"tiny"}
    for line in ("start-up per submission, fresh kernel", "grading 2 T1 submissions, 1 worker(s)",
                 "untouched student notebook: tiny", "load average before:"):
        assert line in done.stdout, done.stdout


def test_the_benchmark_table_shows_the_cold_build_against_its_goal():
    benchmark = _script("benchmark")
    found = {"build": {"tutorials": ["T1_DeepLinearNetworks", "T2_Optimisation"], "seconds": 123.4,
                       "load": [0.5, 0.4, 0.3]}}
    (row,) = [line for line in benchmark.table(found).splitlines() if "cold build" in line]
    assert "the 2 reference runs" in row and "123.4 s (load 0.5)" in row
    assert f"≤ {benchmark.GOALS['reference_total_s']:.0f} s" in row
