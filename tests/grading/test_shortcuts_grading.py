"""Refused shortcuts across the kernel boundary, in the text, and in what the grader writes.

A tiny check written as the course's checks are (the student's code inside a
:func:`~dlnn_helpers.checks._shortcuts.student_code` window, then the expected value, which the
student package cannot compute for this setting) is run by the recorder in this process, as the
sandboxed kernel runs it (:func:`_expected.shipped_only`: no reference there), and the recording is
judged as the grading worker judges it (the reference computes the value live).  Then the text scan
of the submitted code, the instructor-only package's absence from the kernel, the fingerprint, and
the flags in ``report.html``, ``grades.csv`` and the feedback page.
"""

from __future__ import annotations

import csv
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import dlnn_helpers.checks as checks
from autograder.grading import sandbox, spec, worker
from autograder.grading.inside import recorder
from autograder.grading.judge import shortcuts
from autograder.grading.judge.replay import judge, load_records
from autograder.grading.model import Verdict
from autograder.grading.outputs import report
from autograder.grading.protocol import records
from dlnn_helpers.checks import _expected, _shortcuts
from dlnn_helpers.checks._shortcuts import student_code

CHECK = "check_tiny_optimiser"
EXERCISE = "TinyOptimiser"
REFUSED = ("torch.optim",)
SGD_MESSAGE = "TinyOptimiser uses torch.optim.SGD: the exercise is to write the update yourself"


def check_tiny_optimiser(Optimiser, seed: int = 0, lr: float = 0.1) -> str:
    """One SGD step of ``Optimiser`` on a seeded parameter (a course check in miniature)."""
    torch.manual_seed(seed)
    start = torch.randn(3)
    param = torch.nn.Parameter(start.clone())
    with student_code(EXERCISE, REFUSED) as window:
        optimiser = Optimiser([param], lr=lr)
        param.grad = torch.ones(3)
        optimiser.step()
    window.verdict()
    exp = _expected.expected(CHECK, seed=seed, lr=lr)
    if not torch.allclose(param.detach(), exp["correct"]):
        raise checks._core.CheckFailure(f"{EXERCISE}.step() does not take one gradient step")
    return f"{EXERCISE} is correct."


def _tiny_expected(seed: int, lr: float) -> dict:
    torch.manual_seed(seed)
    return {"correct": torch.randn(3) - lr}


@pytest.fixture
def tiny(monkeypatch):
    """The tiny check, findable by the recorder and the judge; its reference only on this side."""
    monkeypatch.setattr(checks, CHECK, check_tiny_optimiser, raising=False)
    monkeypatch.setitem(_shortcuts.DECLARED, CHECK, (EXERCISE, REFUSED))
    reference = _expected._reference_function  # dlnn_reference's registry, on this side only
    monkeypatch.setattr(_expected, "_reference_function",
                        lambda check: _tiny_expected if check == CHECK else reference(check))
    return CHECK


def _call(seed: int = 3) -> records.CheckCall:
    return records.CheckCall(CHECK, EXERCISE, {"seed": seed})


def _answer(source: str) -> type:
    namespace = {"torch": torch, "__name__": "__main__"}
    exec(textwrap.dedent(source), namespace)  # noqa: S102 - the test's own answers
    return namespace[EXERCISE]


def _record_and_judge(tmp_path: Path, monkeypatch, source: str) -> tuple[Verdict, records.CallRecord]:
    """Record one call as the kernel does (no reference: shipped values only), then judge it."""
    monkeypatch.setattr(recorder, "_FOLDER", str(tmp_path))
    monkeypatch.setattr(recorder, "_CELLS", {})
    answer = _answer(source)
    call = _call()
    with _expected.shipped_only():
        recorder.record("test_tiny", 0, CHECK, answer, dict(call.settings), (), {}, call.students)
    loaded = load_records(tmp_path, "test_tiny")
    assert loaded
    return judge([call], loaded), loaded.calls[0]


def _said(found: list[str]) -> str:
    """What a window of the tiny check says when it found ``found``."""
    return _shortcuts.Window(EXERCISE, REFUSED, list(found)).message()


HONEST = """
class TinyOptimiser:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr
    def step(self):
        with torch.no_grad():
            for p in self.params:
                p -= self.lr * p.grad
"""

SUBCLASS = """
class TinyOptimiser(torch.optim.SGD):
    pass
"""

BY_STRING = """
class TinyOptimiser:
    def __init__(self, params, lr):
        library = getattr(torch, "op" + "tim")
        self.inner = getattr(library, "S" + "GD")(params, lr=lr)
    def step(self):
        self.inner.step()
"""

READS_ANSWERS = """
import glob, os
import dlnn_helpers.checks as _c

class TinyOptimiser:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr
        for path in glob.glob(os.path.join(_c.__path__[0], "expected", "*.json")):
            open(path).read()
    def step(self):
        with torch.no_grad():
            for p in self.params:
                p -= self.lr * p.grad
"""

SILENCES_THE_WATCH = """
from dlnn_helpers.checks import _shortcuts as _s

class TinyOptimiser(torch.optim.SGD):
    def __init__(self, params, lr):
        _s.REPORTER = None
        super().__init__(params, lr=lr)
"""

NESTED_WINDOWS = """
from dlnn_helpers.checks import _shortcuts as _s

class TinyOptimiser(torch.optim.SGD):
    def __init__(self, params, lr):
        for _ in range(3):
            with _s.student_code("decoy"):
                pass
        super().__init__(params, lr=lr)
"""


def test_an_honest_answer_passes_though_the_kernel_could_not_judge_it(tiny, tmp_path, monkeypatch):
    verdict, record = _record_and_judge(tmp_path, monkeypatch, HONEST)
    assert "judged by the course's grader" in record.kernel_message  # ReferenceUnavailable
    assert record.windows == [[]]
    assert verdict.passed and verdict.message == "TinyOptimiser is correct."
    assert not verdict.shortcut


@pytest.mark.parametrize("source", [SUBCLASS, BY_STRING], ids=["subclass", "getattr"])
def test_a_refused_routine_found_in_the_kernel_fails_the_replayed_check(tiny, tmp_path, monkeypatch,
                                                                        source):
    verdict, record = _record_and_judge(tmp_path, monkeypatch, source)
    assert len(record.windows) == 1 and "torch.optim.SGD" in record.windows[0]
    said = _said(record.windows[0])
    assert said.startswith("TinyOptimiser uses torch.optim")
    assert said in record.kernel_message  # the kernel's check said it too (information only)
    assert not verdict.passed
    assert verdict.message == said == verdict.shortcut


def test_reading_the_shipped_answers_inside_the_answer_is_refused(tiny, tmp_path, monkeypatch):
    verdict, record = _record_and_judge(tmp_path, monkeypatch, READS_ANSWERS)
    assert record.windows == [[_shortcuts.COURSE_ANSWERS]]
    assert not verdict.passed
    assert "TinyOptimiser reads the course's expected answers" in verdict.shortcut


def test_silencing_the_watch_in_the_kernel_fails(tiny, tmp_path, monkeypatch):
    verdict, record = _record_and_judge(tmp_path, monkeypatch, SILENCES_THE_WATCH)
    assert record.windows == []
    assert not verdict.passed and "interfered" in verdict.message


def test_windows_the_answer_opens_itself_do_not_shift_the_findings(tiny, tmp_path, monkeypatch):
    verdict, record = _record_and_judge(tmp_path, monkeypatch, NESTED_WINDOWS)
    assert len(record.windows) == 1 and "torch.optim.SGD" in record.windows[0]
    assert verdict.message == verdict.shortcut == _said(record.windows[0])


def test_recorded_findings_are_bounded_and_typed_on_load():
    item = {"students": [{"name": "f", "kind": "function"}],
            "windows": [["torch.optim.SGD", 7, "x" * 1000, *(["y"] * 100)], "not a list", {"a": 1}]
            + [[]] * (records.MAX_WINDOWS + 10)}
    record = records._call_record(item)
    assert len(record.windows) == records.MAX_WINDOWS
    first = record.windows[0]
    assert first[0] == "torch.optim.SGD" and len(first) <= records.MAX_FOUND
    assert all(isinstance(x, str) and len(x) <= records.MAX_FOUND_CHARS for x in first)
    assert record.windows[1] == record.windows[2] == []
    assert records._call_record({"students": [], "windows": "torch.optim"}).windows == []


# ------------------------------------------------------------------------------------------------
# The text
# ------------------------------------------------------------------------------------------------


def test_the_text_scan_reads_code_not_comments_or_strings():
    refused = ("torch.optim", "autograd", "torch.nn.init", "lstsq")
    quiet = '''
# torch.optim.Adam would do it, but the exercise is to write it
"""Not torch.autograd.grad: by hand (x.backward() is refused)."""
label = "np.linalg.lstsq"
def f(x):
    return x  # nn.init.kaiming_normal_(w)
'''
    assert shortcuts.find(quiet, refused) == []
    loud = '''
def f(model, x, y):
    solution = np.linalg.lstsq(x, y, rcond=None)[0]
    opt = torch.optim.Adam(model.parameters())
    loss(model(x)).backward()
    nn.init.kaiming_normal_(model.weight)
    %timeit f(1)
'''
    found = shortcuts.find(loud, refused)
    assert ("lstsq", "np.linalg.lstsq") in found
    assert ("torch.optim", "torch.optim.Adam") in found
    assert ("torch.nn.init", "nn.init.kaiming_normal_") in found
    assert any(routine == "autograd" for routine, _ in found)
    assert shortcuts.find("def f(:\n  torch.optim.SGD  # broken", refused) == [
        ("torch.optim", "torch.optim.SGD")]


def test_the_text_scan_reads_only_the_cells_that_define_the_exercise(tiny):
    call = _call()
    names = {"ex_tiny": [EXERCISE], "ex_other": ["helper"]}
    clean = {"ex_tiny": HONEST, "ex_other": "def helper():\n    return torch.optim.SGD"}
    assert shortcuts.scan([call], clean, names) == ""
    dirty = {"ex_tiny": HONEST + "\n    def unused(self):\n        return torch.optim.SGD\n"}
    said = shortcuts.scan([call], dirty, names)
    assert said == ("TinyOptimiser uses torch.optim.SGD: the exercise is to write the update "
                    "yourself" + shortcuts.FOUND_IN_TEXT)


def test_a_text_hit_scores_the_test_zero_with_the_same_words():
    text = "X uses torch.optim.SGD: the exercise is to write the update yourself (found ...)"
    passed = worker._with_text_shortcut(Verdict(True, "X is correct."), text)
    assert not passed.passed and passed.message == passed.shortcut == text
    wrong = worker._with_text_shortcut(Verdict(False, "X is wrong."), text)
    assert not wrong.passed and wrong.message.startswith("X is wrong.") and wrong.shortcut == text
    refused = Verdict(False, "X uses torch.optim.SGD: ...", shortcut="X uses torch.optim.SGD: ...")
    assert worker._with_text_shortcut(refused, text) is refused
    assert worker._with_text_shortcut(Verdict(True, "ok"), "").passed


def test_every_course_check_that_refuses_names_known_routines():
    for check, (exercise, refused) in shortcuts.declared().items():
        assert exercise and all(r in _shortcuts.ROUTINES for r in refused), check
        assert all(_shortcuts.ROUTINES[r].patterns for r in refused), check


# ------------------------------------------------------------------------------------------------
# The kernel has the student package only; the judge has the references
# ------------------------------------------------------------------------------------------------


def _needs_sandbox() -> None:
    """Skip where kernels see the host (no bubblewrap, not root); in CI (``CI=true``) fail."""
    found = sandbox.controls()
    if found.sandboxed:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"no sandbox on this CI machine ({found.bwrap_problem})")
    pytest.skip(f"no sandbox on this machine: {found.bwrap_problem} (the grader reports it)")


@pytest.mark.grading
def test_the_kernel_imports_the_student_package_but_not_the_references():
    _needs_sandbox()
    code = textwrap.dedent("""
    import importlib, json
    out = {}
    for name in ("dlnn_helpers.checks", "dlnn_reference", "dlnn_reference.shipped"):
        try:
            out[name] = str(importlib.import_module(name).__file__)
        except ImportError as exc:
            out[name] = "ImportError: " + str(exc)
    print(json.dumps(out))
    """)
    import json

    with sandbox.Box(sandbox.SandboxSettings()) as box:
        done = box.run(code, timeout=120)
    assert done.returncode == 0, done.stdout
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["dlnn_helpers.checks"].startswith(sandbox.LIB_INSIDE + "/dlnn_helpers/")
    assert seen["dlnn_reference"] == "ImportError: No module named 'dlnn_reference'"
    assert seen["dlnn_reference.shipped"].startswith("ImportError")


def test_an_installed_copy_of_the_references_in_a_bound_folder_is_hidden(tmp_path, monkeypatch):
    env = tmp_path / "venv"
    installed = env / "lib" / "python3" / "site-packages"
    for name in ("dlnn_reference", "dlnn_helpers"):
        (installed / name).mkdir(parents=True)
    monkeypatch.setattr(sandbox.jail, "_installed_folder", lambda name: str(installed / name))
    binds = [("/usr/lib", "/usr/lib", "ro"), (str(env), sandbox.ENV_INSIDE, "ro")]
    hidden = sandbox.masks(binds, "/empty")
    inside = f"{sandbox.ENV_INSIDE}/lib/python3/site-packages"
    assert hidden == [("/empty", f"{inside}/dlnn_reference", "ro"),
                      ("/empty", f"{inside}/dlnn_helpers", "ro")]
    monkeypatch.setattr(sandbox.jail, "_installed_folder", lambda name: "/work/checkout/" + name)
    assert sandbox.masks(binds, "/empty") == []  # an editable install: nothing bound to hide


def test_the_fingerprint_covers_the_references(tmp_path, monkeypatch):
    sources = spec.verdict_sources()
    assert any(p.parent.name == "dlnn_reference" and p.name == "__init__.py" for p in sources)
    assert any(p.parent.name == "_shortcuts.py" or p.name == "_shortcuts.py" for p in sources)
    course = tmp_path / "course"
    (course / "solutions" / "T1").mkdir(parents=True)
    (course / "solutions" / "T1" / "T1.ipynb").write_text("{}")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    before = spec._fingerprint(course, "T1")
    reference = next(p for p in sources if p.parent.name == "dlnn_reference")
    corrected = tmp_path / "dlnn_reference" / reference.name
    corrected.parent.mkdir()
    corrected.write_bytes(reference.read_bytes() + b"\n# a corrected reference\n")
    monkeypatch.setattr(spec, "verdict_sources",
                        lambda: [corrected if p == reference else p for p in sources])
    assert spec._fingerprint(course, "T1") != before


# ------------------------------------------------------------------------------------------------
# What the grader writes
# ------------------------------------------------------------------------------------------------


def test_the_report_the_csv_and_the_feedback_flag_a_refused_shortcut(tmp_path):
    from autograder.grading.outputs import feedback

    said = SGD_MESSAGE
    row = {"student": "ann", "tutorial": "T2", "status": "graded", "score": 0.0, "max_score": 2.0,
           "manual_max": 0.0, "file": "ann/T2.ipynb", "scores": {"test_tiny": 0.0}, "notes": [],
           "message": "", "verdicts": {"test_tiny": said}, "in_process": [], "review": {},
           "shortcuts": {"test_tiny": said}}
    honest = {**row, "student": "bob", "score": 2.0, "scores": {"test_tiny": 2.0},
              "verdicts": {"test_tiny": "ok"}, "shortcuts": {}}
    report.write_report(tmp_path / "report.html", [row, honest], {"T2": {"test_tiny": 2.0}}, [],
                        {"sandbox": "test"})
    page = (tmp_path / "report.html").read_text()
    assert "Shortcuts refused" in page and report.SHORTCUT_FLAG in page
    assert "<td>ann</td>" in page and said in page and "<td>bob</td><td>T2</td><td>test_tiny" not in page
    report.write_grades([row, honest], tmp_path / "grades.csv")
    with (tmp_path / "grades.csv").open(newline="") as stream:
        rows = {r["student"]: r for r in csv.DictReader(stream)}
    assert rows["ann"]["shortcuts"] == "test_tiny" and rows["bob"]["shortcuts"] == ""
    test = spec.TestCell("test_tiny", 2.0, "check_tiny_optimiser(TinyOptimiser)", "", None)
    tutorial = spec.TutorialSpec("T2", {}, [test], {}, {})
    result = worker.Result("ann", "T2", "ann/T2.ipynb", "0" * 64, "graded",
                           scores={"test_tiny": 0.0}, maxima={"test_tiny": 2.0},
                           verdicts={"test_tiny": said}, shortcuts={"test_tiny": said})
    page = feedback.render(result, tutorial, None)
    assert feedback.SHORTCUT_FLAG in page and said in page


# ------------------------------------------------------------------------------------------------
# The recorder's own use of autograd is not the student's
# ------------------------------------------------------------------------------------------------


def check_tiny_forward(forward, seed: int = 0) -> str:
    """A forward pass whose exercise refuses autograd (its returned tensor carries a graph)."""
    torch.manual_seed(seed)
    x = torch.randn(4, 3, requires_grad=True)
    with student_code("ex_forward", ("autograd",)) as window:
        y = forward(x)
    window.verdict()
    exp = _expected.expected("check_tiny_forward", seed=seed)
    if not torch.allclose(y.detach(), exp["correct"]):
        raise checks._core.CheckFailure("ex_forward does not double its input")
    return "ex_forward is correct."


def _forward_expected(seed: int) -> dict:
    torch.manual_seed(seed)
    return {"correct": 2 * torch.randn(4, 3)}


def _judge_forward(tmp_path, monkeypatch, forward) -> tuple[Verdict, records.CallRecord]:
    monkeypatch.setattr(checks, "check_tiny_forward", check_tiny_forward, raising=False)
    reference = _expected._reference_function
    monkeypatch.setattr(_expected, "_reference_function",
                        lambda check: _forward_expected if check == "check_tiny_forward"
                        else reference(check))
    monkeypatch.setattr(recorder, "_FOLDER", str(tmp_path))
    monkeypatch.setattr(recorder, "_CELLS", {})
    call = records.CheckCall("check_tiny_forward", "ex_forward", {"seed": 2})
    with _expected.shipped_only():
        recorder.record("test_forward", 0, call.check, forward, dict(call.settings), (), {},
                        call.students)
    loaded = load_records(tmp_path, "test_forward")
    return judge([call], loaded), loaded.calls[0]


def test_the_recorders_gradients_of_a_returned_graph_are_not_the_students(tmp_path, monkeypatch):
    def ex_forward(x):
        return 2 * x

    verdict, record = _judge_forward(tmp_path, monkeypatch, ex_forward)
    assert record.events[0].returned.get("grads")  # the recorder did run autograd on it
    assert record.windows == [[]]
    assert verdict.passed, verdict.message


def test_autograd_inside_a_forward_that_refuses_it_is_caught(tmp_path, monkeypatch):
    def ex_forward(x):
        y = 2 * x
        y.sum().backward(retain_graph=True)
        return y

    verdict, record = _judge_forward(tmp_path, monkeypatch, ex_forward)
    assert record.windows[0][0].startswith("autograd")
    assert verdict.shortcut.startswith("ex_forward uses autograd (.backward, torch.autograd.grad")


@pytest.mark.grading
def test_an_installed_copy_is_empty_inside_the_sandbox(monkeypatch):
    """End to end: a package folder inside the bound environment appears empty to the kernel."""
    _needs_sandbox()
    import json
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    stand_in = site / "pip"  # any installed package plays dlnn_reference installed without -e
    assert (stand_in / "__init__.py").is_file()
    monkeypatch.setattr(sandbox.jail, "_installed_folder",
                        lambda name: str(stand_in.resolve()) if name == "dlnn_reference" else None)
    inside = f"{sandbox.ENV_INSIDE}/{stand_in.resolve().relative_to(Path(sys.prefix).resolve())}"
    code = f"import json, os\nprint(json.dumps(sorted(os.listdir({inside!r}))))\n"
    with sandbox.Box(sandbox.SandboxSettings()) as box:
        done = box.run(code, timeout=120)
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
