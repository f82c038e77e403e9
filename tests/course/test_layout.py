"""The course layout is read from nbgrader_config.py, the one place that names the folders."""

from __future__ import annotations

import shutil

import pytest

from coursebuild import layout

from ..tools import ROOT


def test_layout_follows_the_repository_configuration():
    assert layout.source_folder() == ROOT / "solutions"
    assert layout.release_folder() == ROOT / "tutorials"
    ids = layout.tutorial_ids()
    assert ids[0] == "T1_DeepLinearNetworks" and ids == sorted(ids) and len(ids) >= 6
    for tutorial in ids:
        assert layout.solution_path(tutorial).is_file()
        written = layout.repository_path(layout.student_path(tutorial))
        assert written == f"tutorials/{tutorial}/{tutorial}.ipynb"


def test_layout_follows_a_renamed_configuration(tmp_path):
    config = (ROOT / "nbgrader_config.py").read_text()
    config = config.replace('source_directory = "solutions"', 'source_directory = "instructor"')
    (tmp_path / "nbgrader_config.py").write_text(config)
    (tmp_path / "instructor" / "T9_Extra").mkdir(parents=True)
    target = tmp_path / "instructor" / "T9_Extra" / "T9_Extra.ipynb"
    shutil.copy(layout.solution_path("T1_DeepLinearNetworks"), target)
    (tmp_path / "instructor" / "notes").mkdir()
    (tmp_path / "instructor" / "notes" / "draft.ipynb").write_text("{}")  # not named like its folder
    assert layout.source_folder(tmp_path) == tmp_path / "instructor"
    assert layout.tutorial_ids(tmp_path) == ["T9_Extra"]
    assert layout.solution_path("T9_Extra", tmp_path).is_file()


def test_a_missing_configuration_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no nbgrader configuration"):
        layout.source_folder(tmp_path)


def test_the_build_script_runs_the_package_from_any_folder(tmp_path):
    # scripts/course.py is the README's entry point; it must find coursebuild from anywhere.
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "course.py"), "sync", "--check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
