"""Right or refused: the grader on a bare machine, and on a machine where it cannot grade.

* **A bare machine**: the grader as root, no bubblewrap on ``PATH``, its Python environment inside
  a folder other users cannot enter (mode 0700, like pyenv under ``/root``).  The job's user must
  still reach the interpreter (the grader builds the sandbox's root itself) and the demo class's
  right answers score full marks, with the protection in force said in the report.
* **A broken environment**: a kernel that cannot start (a memory limit too small for Python).  The
  reference solutions then cannot score full marks, so the run refuses with the reason and a fix,
  exits with status 4, and writes no grade, no feedback and no report.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.grading import cli

from ..tools import ROOT, copy_course

pytestmark = [pytest.mark.grading, pytest.mark.slow]

TUTORIAL = "T1_DeepLinearNetworks"
DEMO = ROOT / "autograder" / "demo_class"


def _class(folder: Path, students: list[str]) -> Path:
    """A class of demo submissions (``<student>/T1_DeepLinearNetworks.ipynb``)."""
    for student in students:
        (folder / student).mkdir(parents=True)
        shutil.copy(DEMO / student / f"{TUTORIAL}.ipynb", folder / student / f"{TUTORIAL}.ipynb")
    return folder


def _path_without(folder: Path, hidden: set[str]) -> str:
    """A ``PATH`` of one folder linking every program of ``PATH`` but ``hidden``."""
    folder.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = folder / name
            if name not in hidden and not os.path.lexists(link):
                link.symlink_to(os.path.join(directory, name))
    return str(folder)


# A stand-alone launcher: in a mount namespace of its own (nothing is seen by the host), it puts
# the grader's environment at LOCKED/env, inside a folder of mode 0700 owned by root, and runs the
# grader with that environment's interpreter: sys.prefix is then a folder no other user may enter.
LAUNCHER = textwrap.dedent('''
    import ctypes, ctypes.util, os, sys
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    locked, env, *argv = sys.argv[1:]
    def check(result, what):
        if result != 0:
            raise OSError(ctypes.get_errno(), what)
    check(libc.unshare(0x00020000), "unshare")
    check(libc.mount(b"none", b"/", None, ctypes.c_ulong(16384 | (1 << 18)), None), "private")
    check(libc.mount(b"tmpfs", locked.encode(), b"tmpfs", ctypes.c_ulong(0), b"mode=0700"), "tmpfs")
    os.mkdir(os.path.join(locked, "env"))
    check(libc.mount(env.encode(), os.path.join(locked, "env").encode(), None,
                     ctypes.c_ulong(4096 | 16384), None), "bind")
    python = os.path.join(locked, "env", "bin", "python")
    os.execv(python, [python, *argv])
''')


@pytest.mark.skipif(os.geteuid() != 0, reason="the bare-machine grading test runs as root")
@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the grader must run in a virtual "
                    "environment (README) for this test to lock it away")
def test_root_without_bubblewrap_and_a_private_interpreter_grades_right(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    copy_course(course)
    submissions = _class(tmp_path / "class", ["ada", "ben"])
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    output = tmp_path / "out"
    env = {**os.environ, "PATH": _path_without(tmp_path / "bin", {"bwrap"})}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(launcher), str(locked), os.path.realpath(sys.prefix),
         "-m", "autograder", str(submissions), "-o", str(output), "-t", TUTORIAL,
         "--course", str(course), "-w", "1", "--cell-timeout", "60"],
        capture_output=True, text=True, timeout=900, env=env, cwd=ROOT, check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "bubblewrap (bwrap) is not installed" in said  # the weaker protection is said
    with (output / "grades.csv").open(newline="", encoding="utf-8") as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    assert (rows["ada"]["status"], float(rows["ada"]["score"])) == ("graded", 9.0), said
    assert (rows["ben"]["status"], float(rows["ben"]["score"])) == ("graded", 4.0), said
    report = (output / "report.html").read_text()
    assert "the grader built the sandbox itself" in report
    assert "own unprivileged user" in report


def test_a_kernel_that_cannot_start_is_refused_with_the_reason_and_no_grade(tmp_path, capsys):
    course = tmp_path / "course"
    course.mkdir()
    copy_course(course)
    submissions = _class(tmp_path / "class", ["ada"])
    output = tmp_path / "out"
    status = cli.main([str(submissions), "-o", str(output), "-t", TUTORIAL, "--course",
                       str(course), "-w", "1", "--memory-gib", "0.03", "--quiet"])
    err = capsys.readouterr().err
    assert status == 4, err
    assert "refusing to grade" in err and "No grade and no feedback were written" in err
    assert f"{TUTORIAL}: its reference solution scored 0/9" in err
    assert "the kernel" in err and "Fix:" in err and "--memory-gib" in err
    assert "Sandbox on this machine:" in err
    for written in ("grades.csv", "report.html", "state.json", "feedback", "autograded"):
        assert not (output / written).exists(), f"{written} was written by a refused run"
    # Nothing wrong was kept: the next run checks the reference solutions again.
    assert not any(p.read_text().count('"calibrated": true') for p in (output / "cache").glob("*.json"))
