"""Every script of ``scripts/`` runs, with tiny settings (``scripts/benchmark*.py``: ``test_benchmark.py``).

``scripts/course.py`` is the instructor's command line (``dlnn-course``, ``coursebuild.cli``): each
step answers ``--help``, and the quick steps run for real here (``sync --check``, ``expected
--check`` in ``test_generated.py``, ``release`` refusing a folder that is no release); the long
steps (``generate``, ``execute``, ``site``, ``release``, ``grade``) run in the course, site and
grading tests.  ``scripts/headless_runs.py`` executes a two-cell notebook with a widget.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import nbformat
import pytest

from coursebuild import cli

from ..tools import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

SCRIPT = ROOT / "scripts" / "course.py"


def _run(*args: str, cwd=None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_the_command_is_declared_in_pyproject_and_is_the_scripts():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"dlnn-course": "coursebuild.cli:main"}
    module, function = scripts["dlnn-course"].split(":")
    assert getattr(__import__(module, fromlist=[function]), function) is cli.main
    assert "from coursebuild.cli import main" in SCRIPT.read_text()


def test_every_step_answers_help(capsys):
    steps = {"all", "build", "expected", "sync", "generate", "execute", "site", "release"}
    for step in sorted(steps):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([step, "--help"])
        assert exit_info.value.code == 0, step
        assert f"dlnn-course {'all' if step == 'build' else step}" in capsys.readouterr().out
    for step in cli.GRADING:  # the grader's own parser answers
        with pytest.raises(SystemExit) as exit_info:
            cli.main([step, "--help"])
        assert exit_info.value.code == 0, step
        assert "python -m autograder" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["publish"])
    assert exit_info.value.code == 2


@pytest.mark.slow  # a fresh interpreter or kernel: seconds
def test_the_script_runs_a_step_from_another_folder(tmp_path):
    done = _run(str(SCRIPT), "sync", "--check", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    (tmp_path / "notes.txt").write_text("mine")  # a folder that is no release: refused at once
    done = _run(str(SCRIPT), "release", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1 and "holds no earlier release" in done.stderr
    done = _run("-m", "coursebuild", "grade", "--help")
    assert done.returncode == 0 and "submissions" in done.stdout and done.stderr == ""


@pytest.mark.slow
def test_headless_runs_executes_a_notebook_and_reports_it(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import ipywidgets\nslider = ipywidgets.IntSlider(3)\nslider"),
        nbformat.v4.new_code_cell("print(slider.value * 2)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    done = _run(str(ROOT / "scripts" / "headless_runs.py"), "--notebook", str(path), "--runs", "1",
                "--cell-timeout", "60", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run  1: ok" in done.stdout and "1 interactive widgets displayed" in done.stdout
    assert "tiny: 1 ok, 0 hung, 0 failed" in done.stdout
    # A failing notebook: the same script's main (in this process: the command's start-up and its
    # exit status are proven above), which counts the failure and answers 1.
    (tmp_path / "broken.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1 / 0")], metadata=nb.metadata)))
    spec = importlib.util.spec_from_file_location("headless_runs", ROOT / "scripts" / "headless_runs.py")
    headless_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(headless_runs)
    capsys.readouterr()
    assert headless_runs.main(["--notebook", str(tmp_path / "broken.ipynb"), "--runs", "1"]) == 1
    assert "broken: 0 ok, 0 hung, 1 failed" in capsys.readouterr().out
