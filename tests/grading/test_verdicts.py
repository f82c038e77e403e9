"""Every verdict is computed outside the kernel: recorder -> recording file -> replay into the checks.

These tests run the recorder in this process (as the kernel would) on answers to every exercise of
tutorials 2-6 written apart from the solution notebooks (:mod:`tests.grading.answers`), then judge
the recording file as the grading worker does.  They also try what a notebook can do in its kernel
(replace the checks, the recorder's save, wrap the library optimiser) and what a forged recording
file can do to the loader (inflate, nest, share, block).
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import time
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from autograder.grading import spec
from autograder.grading.inside import recorder
from autograder.grading.judge.replay import judge, load_records
from autograder.grading.protocol import records
from autograder.grading.protocol.cells import parse_test_cell
from autograder.grading.synthetic.answer_bank import ALTERNATIVE as CORRECT
from autograder.grading.synthetic.answer_bank import LIBRARY, T1, T2, T3, T4, WRONG
from dlnn_helpers.checks import _expected

from ..tools import ROOT


def _test_cells(tutorial: str) -> dict[str, str]:
    nb = nbformat.read(ROOT / "solutions" / tutorial / f"{tutorial}.ipynb", as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
        and not c.metadata["nbgrader"].get("solution")
    }


def _namespace(answers: dict[str, str]) -> dict:
    """The answers defined as a notebook defines them (module ``__main__``)."""
    ns = {"torch": torch, "nn": nn, "np": np, "math": math, "__name__": "__main__"}
    for source in answers.values():
        exec(source, ns)  # noqa: S102 - the test's own answers
    return ns


def _record(folder: Path, cell: str, source: str, ns: dict, monkeypatch) -> list:
    """Run the recorder on one test cell as the kernel does; return the parsed calls."""
    monkeypatch.setattr(recorder, "_FOLDER", str(folder))
    monkeypatch.setattr(recorder, "_CELLS", {})
    calls = parse_test_cell(source)
    assert calls is not None, cell
    for index, call in enumerate(calls):
        recorder.record(cell, index, call.check, ns.get(call.func),
                        records.resolve_literal(call.settings), records.resolve_literal(call.args),
                        {k: ns.get(name) for k, name in call.student_kwargs}, call.students)
    return calls


def _grade(tmp_path: Path, tutorial: str, answers: dict[str, str], monkeypatch,
           only: set[str] | None = None) -> dict:
    """Record as the sandboxed kernel does (the student package only: no reference, so a hidden
    setting's expected values are unavailable there), then judge with the references."""
    ns = _namespace(answers)
    verdicts = {}
    for cell, source in _test_cells(tutorial).items():
        if only is not None and cell not in only:
            continue
        with _expected.shipped_only():
            calls = _record(tmp_path, cell, source, ns, monkeypatch)
        verdicts[cell] = judge(calls, load_records(tmp_path, cell))
    return verdicts


@pytest.mark.grading
@pytest.mark.parametrize("tutorial", sorted(set(CORRECT) - {T1}))  # T1's: the synthetic class
def test_answers_written_apart_from_the_solutions_pass_every_check_judged_outside(
        tmp_path, monkeypatch, tutorial):
    verdicts = _grade(tmp_path, tutorial, CORRECT[tutorial], monkeypatch)
    assert verdicts and set(verdicts) == set(_test_cells(tutorial))
    for cell, verdict in verdicts.items():
        assert verdict.passed, (cell, verdict.message)
        assert not verdict.in_process and not verdict.review, cell


@pytest.mark.grading
@pytest.mark.parametrize("tutorial", sorted(set(WRONG) - {T1}))  # T1's: the synthetic class
def test_wrong_classes_and_callbacks_get_the_checks_diagnosis(tmp_path, monkeypatch, tutorial):
    diagnosis = {
        "test_simple_gradient_descent": "not multiplied by the learning rate",
        "test_adam_optimizer": "does not follow the same trajectory",
        "test_gradient_descent": "the gradient is never cleared",
        "test_ResidualSequence": "skip connection",
        "test_Supervise_Kaiming_weights": "this is Glorot's (Xavier's) initialisation",
    }
    answers = {**CORRECT[tutorial], **WRONG[tutorial]}
    wrong_cells = {f"test_{k}" for k in WRONG[tutorial]}
    verdicts = _grade(tmp_path, tutorial, answers, monkeypatch, only=wrong_cells)
    for cell in wrong_cells:
        assert not verdicts[cell].passed, cell
        assert diagnosis[cell] in verdicts[cell].message, (cell, verdicts[cell].message)


@pytest.mark.grading
def test_an_optimiser_that_wraps_torch_optim_is_refused_with_the_checks_words(tmp_path, monkeypatch):
    answers = {**CORRECT[T2], **LIBRARY}
    verdicts = _grade(tmp_path, T2, answers, monkeypatch,
                      only={"test_simple_gradient_descent", "test_adam_optimizer"})
    sgd, adam = verdicts["test_simple_gradient_descent"], verdicts["test_adam_optimizer"]
    assert not sgd.passed and not adam.passed
    assert sgd.shortcut == sgd.message == (
        "SimpleGradientDescent uses torch.optim.SGD: the exercise is to write the update yourself")
    assert adam.shortcut == adam.message == (
        "ADAMOptimizer uses torch.optim.Adam: the exercise is to write the update yourself")


TORCH_SGD_BY_HAND = {"simple_gradient_descent": '''class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.params, self.lr, self.weight_decay = list(parameters), lr, weight_decay

    def step(self):
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    d_p = p.grad if self.weight_decay == 0 else p.grad.add(
                        p, alpha=self.weight_decay)
                    p.add_(d_p, alpha=-self.lr)

    def zero_grad(self):
        for p in self.params:
            p.grad = None'''}


@pytest.mark.grading
def test_torch_optims_arithmetic_written_out_passes_and_is_flagged_for_review(tmp_path, monkeypatch):
    verdicts = _grade(tmp_path, T2, {**CORRECT[T2], **TORCH_SGD_BY_HAND}, monkeypatch,
                      only={"test_simple_gradient_descent"})
    sgd = verdicts["test_simple_gradient_descent"]
    assert sgd.passed and not sgd.shortcut, sgd.message
    assert "bitwise identical to torch.optim.SGD" in sgd.review


STUBS_T2 = {
    "gradient_descent": "def gradient_descent(loss_fn, x, learning_rate, n_steps):\n"
                        "    raise NotImplementedError()",
    "simple_gradient_descent": "class SimpleGradientDescent:\n"
                               "    def __init__(self, parameters, lr=0.1, weight_decay=0.0):\n"
                               "        raise NotImplementedError()",
    "adam_optimizer": "class ADAMOptimizer:\n    def step(self):\n        raise NotImplementedError()",
}


def test_replacing_the_checks_in_the_kernel_turns_no_stub_into_points(tmp_path, monkeypatch):
    """The T2 attack: every check replaced in the kernel; it only changes what is recorded."""
    import dlnn_helpers.checks as checks
    import dlnn_helpers.checks.optimisation as optimisation

    ns = _namespace(STUBS_T2)
    cells = _test_cells(T2)
    recorded = {}
    with monkeypatch.context() as patch:
        for module in (checks, optimisation):
            for name in dir(module):
                if name.startswith("check_"):
                    patch.setattr(module, name, lambda *a, **k: "ok")
        for cell in ("test_gradient_descent", "test_simple_gradient_descent", "test_adam_optimizer"):
            recorded[cell] = _record(tmp_path, cell, cells[cell], ns, patch)
    for cell, calls in recorded.items():
        verdict = judge(calls, load_records(tmp_path, cell))
        assert not verdict.passed, cell
        assert "was not called" in verdict.message, verdict.message


def test_replacing_the_recorders_save_leaves_no_recording_and_no_points(tmp_path, monkeypatch):
    ns = _namespace({**CORRECT[T2]})
    monkeypatch.setattr(records, "save", lambda *a, **k: None)
    calls = _record(tmp_path, "test_gradient_descent", _test_cells(T2)["test_gradient_descent"], ns,
                    monkeypatch)
    verdict = judge(calls, load_records(tmp_path, "test_gradient_descent"))
    assert not verdict.passed and "did not run" in verdict.message


def test_a_check_that_asks_other_inputs_than_the_recording_holds_fails(tmp_path, monkeypatch):
    """A recording made for other inputs (a tampered check in the kernel) does not pass."""
    ns = _namespace(CORRECT[T4])
    calls = _record(tmp_path, "cell", "check_init_weights(ex_he_weights, 'he', shape=(30, 20))", ns,
                    monkeypatch)
    honest = parse_test_cell("check_init_weights(ex_he_weights, 'he', shape=(40, 20))")
    assert judge(calls, load_records(tmp_path, "cell")).passed
    verdict = judge(honest, load_records(tmp_path, "cell"))
    assert not verdict.passed and "does not match" in verdict.message


def test_test_cells_with_two_notebook_functions_or_torch_classes_parse():
    calls = parse_test_cell("check_linear_layer(ex_linear_forward, backward=ex_linear_backward, "
                            "seed=105)\ncheck_mlp(ex_mlp, settings=((10, 7, 2, nn.Tanh),))")
    assert calls[0].students == ["ex_linear_forward", "ex_linear_backward"]
    assert calls[0].settings == {"seed": 105}
    assert records.resolve_literal(calls[1].settings) == {"settings": ((10, 7, 2, nn.Tanh),)}
    assert parse_test_cell("check_a(f, seed=SEED)") is None
    assert parse_test_cell("check_a(f, activation=os.system)") is None
    assert parse_test_cell("check_a(f, activation=nn.Nonexistent)") is None


# ------------------------------------------------------------------------------------------------
# Loading a recording: bounded
# ------------------------------------------------------------------------------------------------


def _torch_file(path: Path, data) -> Path:
    torch.save(data, path)
    return path


def _rejected(tmp_path: Path, cell: str, fragment: str) -> None:
    start = time.perf_counter()
    loaded = load_records(tmp_path, cell)
    assert loaded is not None and not loaded, f"{cell} was accepted"
    assert fragment in loaded.problem, loaded.problem
    assert time.perf_counter() - start < 5
    verdict = judge(parse_test_cell("check_net_rsm(ex_net_rsm)"), loaded)
    assert not verdict.passed and "refused" in verdict.message and fragment in verdict.message


def test_a_recording_that_inflates_is_refused_before_inflating(tmp_path):
    with zipfile.ZipFile(tmp_path / "bomb.pt", "w", zipfile.ZIP_DEFLATED,
                         compresslevel=9) as archive, archive.open("bomb/data.pkl", "w") as entry:
        zeros = bytes(2**20)
        for _ in range(300):  # 300 MiB of zeros in well under 1 MiB
            entry.write(zeros)
    assert (tmp_path / "bomb.pt").stat().st_size < 2**20
    _rejected(tmp_path, "bomb", "inflates to 300 MiB")


def test_a_compressed_or_oversized_recording_is_refused(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "small.pt", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("small/data.pkl", pickle.dumps([1, 2, 3]))
    _rejected(tmp_path, "small", "compressed")
    _torch_file(tmp_path / "big.pt", {"format": records.FORMAT, "meta": "[]", "tensors": [torch.zeros(5000)]})
    monkeypatch.setattr(records, "MAX_FILE_BYTES", 4096)
    _rejected(tmp_path, "big", "limit")


def test_shared_nested_lists_are_refused_without_walking_them(tmp_path):
    """1-2 KB of pickle whose naive walk doubles per level (2**60 visits)."""
    shared: list = []
    for _ in range(60):
        shared = [shared, shared]
    _torch_file(tmp_path / "shared.pt", {"format": records.FORMAT, "meta": shared, "tensors": []})
    assert (tmp_path / "shared.pt").stat().st_size < 8192
    _rejected(tmp_path, "shared", "not in the recorder's format")
    _torch_file(tmp_path / "shared2.pt", [shared])
    _rejected(tmp_path, "shared2", "not in the recorder's format")


def test_deep_large_or_long_descriptions_are_refused(tmp_path):
    _torch_file(tmp_path / "deep.pt", {"format": records.FORMAT, "meta": "[" * 100_000 + "]" * 100_000,
                                       "tensors": []})
    _rejected(tmp_path, "deep", "nested")
    _torch_file(tmp_path / "deep2.pt", {"format": records.FORMAT, "meta": "[" * 100 + "]" * 100,
                                        "tensors": []})
    _rejected(tmp_path, "deep2", "nested deeper than")
    _torch_file(tmp_path / "many.pt", {"format": records.FORMAT, "meta": json.dumps([0] * 600_000),
                                       "tensors": []})
    _rejected(tmp_path, "many", "more than 500000 values")
    _torch_file(tmp_path / "ops.pt", {"format": records.FORMAT, "meta": "[]",
                                      "tensors": list(range(300_000))})
    _rejected(tmp_path, "ops", "operations")


def test_fifos_links_and_forged_pickles_are_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.pt")
    _rejected(tmp_path, "fifo", "not a regular file")
    _torch_file(tmp_path / "real.pt", {"format": records.FORMAT, "meta": "[]", "tensors": []})
    (tmp_path / "link.pt").symlink_to(tmp_path / "real.pt")
    _rejected(tmp_path, "link", "cannot be opened")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/data.pkl", b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    (tmp_path / "forged.pt").write_bytes(buffer.getvalue())
    _rejected(tmp_path, "forged", "cannot be read")
    assert load_records(tmp_path, "absent") is None


def test_judging_has_a_time_limit(tmp_path, monkeypatch):
    ns = _namespace(CORRECT[T3])
    calls = _record(tmp_path, "test_ResidualSequence", _test_cells(T3)["test_ResidualSequence"], ns,
                    monkeypatch)
    monkeypatch.setattr("autograder.grading.judge.replay.JUDGE_SECONDS", -1.0)
    verdict = judge(calls, load_records(tmp_path, "test_ResidualSequence"))
    assert not verdict.passed and "judging took more than" in verdict.message


# ------------------------------------------------------------------------------------------------
# Regrading
# ------------------------------------------------------------------------------------------------


def test_the_fingerprint_covers_the_checks_and_the_grader(tmp_path, monkeypatch):
    sources = spec.verdict_sources()
    names = {f"{p.parent.name}/{p.name}" for p in sources}
    assert {"checks/optimisation.py", "checks/_core.py", "inside/recorder.py",
            "protocol/records.py", "judge/replay.py", "grading/worker.py", "sandbox/jail.py",
            "grading/model.py"} <= names
    assert not {"outputs/report.py", "grading/runner.py"} & names, "presenting results regrades nothing"
    course = tmp_path / "course"
    (course / "solutions" / "T1").mkdir(parents=True)
    (course / "solutions" / "T1" / "T1.ipynb").write_text("{}")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    before = spec._fingerprint(course, "T1")
    assert spec._fingerprint(course, "T1") == before
    check = next(p for p in sources if p.name == "optimisation.py")
    corrected = tmp_path / "checks" / "optimisation.py"
    corrected.parent.mkdir()
    corrected.write_bytes(check.read_bytes() + b"\n# a corrected check\n")
    monkeypatch.setattr(spec, "verdict_sources",
                        lambda: [corrected if p == check else p for p in sources])
    assert spec._fingerprint(course, "T1") != before


def test_a_forged_network_is_rebuilt_only_from_genuine_torch_classes(tmp_path, monkeypatch):
    """A recording that names other classes or attributes rebuilds nothing else."""
    ns = _namespace(CORRECT[T3])
    calls = _record(tmp_path, "test_ex_mlp", _test_cells(T3)["test_ex_mlp"], ns, monkeypatch)
    loaded = load_records(tmp_path, "test_ex_mlp")
    assert judge(calls, loaded).passed
    nodes = [n for record in loaded.calls for n in record.nodes]
    for node in nodes:  # attributes outside the class's own settings are ignored
        node.constants.update({"__class__": "x", "forward": "y", "__dict__": "z"})
    assert judge(calls, loaded).passed
    for node in nodes:
        if node.type_name == "Sigmoid":
            node.torch_class = "os:system"
    verdict = judge(calls, loaded)
    assert not verdict.passed and "Sigmoid()" in verdict.message, verdict.message
