"""The grader's parts, without a kernel: file names, zip input, bad files, test cells, replay."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path, PurePosixPath

import nbformat
import pytest
import torch

from autograder.grading.inputs.submissions import UNKNOWN, collect, identify
from autograder.grading.inside import recorder
from autograder.grading.judge.replay import judge, load_records
from autograder.grading.model import Rejected
from autograder.grading.notebook import read_submission
from autograder.grading.outputs.feedback import REDACTED, redact
from autograder.grading.protocol.calls import recorder_source
from autograder.grading.protocol.cells import parse_test_cell

from ..tools import ROOT
from .grading_class import T1

TUTORIALS = [T1, "T2_Optimisation"]


@pytest.mark.parametrize(("path", "student", "tutorial"), [
    (f"alice/{T1}/{T1}.ipynb", "alice", T1),
    (f"bob/{T1}.ipynb", "bob", T1),
    (f"carol_{T1}.ipynb", "carol", T1),
    (f"{T1}-dan.ipynb", "dan", T1),
    (f"eve/{T1} (1).ipynb", "eve", T1),
    (f"hana_Copy of {T1}.ipynb", "hana", T1),
    (f"Copy of {T1} - ivan.ipynb", "ivan", T1),
    (f"copyland_{T1}.ipynb", "copyland", T1),
    ("frank/T2_Optimisation.ipynb", "frank", "T2_Optimisation"),
    ("gina/Untitled.ipynb", "gina", UNKNOWN),
])
def test_student_and_tutorial_come_from_the_path(path, student, tutorial):
    found_student, found_tutorial, problem = identify(PurePosixPath(path), TUTORIALS)
    assert (found_student, found_tutorial) == (student, tutorial)
    assert bool(problem) == (tutorial == UNKNOWN)


def test_a_zip_is_read_like_a_folder_and_the_latest_resubmission_wins(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(f"alice/{T1}.ipynb", (2024, 1, 1, 10, 0, 0)), "old")
        zf.writestr(zipfile.ZipInfo(f"alice_{T1}.ipynb", (2024, 1, 2, 10, 0, 0)), "new")
        zf.writestr(zipfile.ZipInfo(f"__MACOSX/alice/._{T1}.ipynb", (2024, 1, 1, 0, 0, 0)), "x")
        zf.writestr(zipfile.ZipInfo("bob/notes.txt", (2024, 1, 1, 0, 0, 0)), "hello")
    found = collect(archive, TUTORIALS)
    assert sorted(s.name for s in found) == sorted(
        [f"alice/{T1}.ipynb", f"alice_{T1}.ipynb", "bob/notes.txt"]
    )
    by_name = {s.name: s for s in found}
    assert by_name[f"alice/{T1}.ipynb"].replaced_by == f"alice_{T1}.ipynb"
    assert by_name[f"alice_{T1}.ipynb"].replaced_by == ""
    assert by_name[f"alice_{T1}.ipynb"].data == b"new"
    assert "not a notebook" in by_name["bob/notes.txt"].problem


def test_missing_or_unreadable_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        collect(tmp_path / "nothing", TUTORIALS)
    (tmp_path / "class.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        collect(tmp_path / "class.zip", TUTORIALS)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"\xff\xfe\x00garbage", "not text"),
    (b"{oops", "not valid JSON"),
    (b'{"cells": 3}', "not a Jupyter notebook"),
    (b'{"cells": [], "nbformat": 3}', "not supported"),
    (b'{"cells": [{"cell_type": "widget"}], "nbformat": 4}', "not a code, markdown"),
    (b'{"cells": [{"cell_type": "code", "source": 5}], "nbformat": 4}', "not text"),
])
def test_bad_files_are_rejected_with_their_reason(data, reason):
    with pytest.raises(Rejected, match=reason):
        read_submission(data, None)


def _test_cells():
    nb = nbformat.read(ROOT / "solutions" / T1 / f"{T1}.ipynb", as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
    }


def test_the_course_test_cells_parse_into_check_calls():
    cells = _test_cells()
    assert len(cells) == 4
    calls = parse_test_cell(cells["test_ex_initializer"])
    assert [c.check for c in calls] == ["check_initializer"] * 3
    assert calls[1].settings == {"seed": 7, "dims": (64, 500, 90), "gamma": 0.7}
    assert "seed': 7" in recorder_source("test_ex_initializer", calls)
    assert parse_test_cell('check_b(f, "zero", seed=2)')[0].args == ("zero",)
    assert parse_test_cell("x = 1\ncheck_a(f)") is None
    assert parse_test_cell("check_a(f, seed=SEED)") is None
    assert parse_test_cell("print('hi')") is None


def _record(tmp_path, monkeypatch, func, cell="test_ex_net_rsm"):
    monkeypatch.setattr(recorder, "_FOLDER", str(tmp_path))
    calls = parse_test_cell(_test_cells()[cell])
    for index, call in enumerate(calls):
        recorder.record(cell, index, call.check, func, call.settings, call.args)
    return calls, load_records(tmp_path, cell)


def test_a_recorded_correct_answer_passes_when_judged_outside(tmp_path, monkeypatch):
    calls, records = _record(tmp_path, monkeypatch, lambda h: h @ h.T)
    verdict = judge(calls, records)
    assert verdict.passed, verdict.message
    assert verdict.message.count("is correct") == len(calls)


def test_a_recorded_wrong_or_lying_answer_fails_when_judged_outside(tmp_path, monkeypatch):
    calls, records = _record(tmp_path, monkeypatch, lambda h: h.T @ h)
    verdict = judge(calls, records)
    assert not verdict.passed and "Hᵀ H" in verdict.message

    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True

    calls, records = _record(tmp_path, monkeypatch,
                             lambda h: torch.zeros(h.shape[0], h.shape[0]).as_subclass(Liar))
    verdict = judge(calls, records)
    assert not verdict.passed and "torch.Tensor" in verdict.message


def test_an_in_place_answer_is_replayed_onto_the_checks_own_model(tmp_path, monkeypatch):
    def initializer(model, gamma):
        for weight in model.parameters():
            n_out, n_in = weight.shape
            torch.nn.init.normal_(weight, 0.0, gamma / (n_in + n_out) ** 0.5)

    calls, records = _record(tmp_path, monkeypatch, initializer, "test_ex_initializer")
    assert judge(calls, records).passed
    calls, records = _record(tmp_path, monkeypatch, lambda model, gamma: None,
                             "test_ex_initializer")
    verdict = judge(calls, records)
    assert not verdict.passed and "did not change the weight" in verdict.message


def test_a_forged_recording_is_never_unpickled(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "exploited",))

    (tmp_path / "test_x.pt").write_bytes(pickle.dumps([Exploit()]))
    assert not load_records(tmp_path, "test_x")  # refused, with a reason
    assert not (tmp_path / "exploited").exists()
    (tmp_path / "test_y.pt").symlink_to(tmp_path / "test_x.pt")
    assert not load_records(tmp_path, "test_y")
    missing = judge(parse_test_cell("check_net_rsm(f)"), None)
    assert not missing.passed and "did not run" in missing.message


def test_feedback_text_is_redacted():
    line = "check_net_rsm(ex_net_rsm, seed=4, shape=(12, 12))"
    assert redact(f"oops: {line}", [line]) == f"oops: {REDACTED}"
