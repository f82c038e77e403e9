"""A synthetic class for the grading tests and the benchmark (not a test module).

:func:`build_class` writes one folder of submissions: tutorial 1 answered correctly, partly,
wrongly, not at all, by every attack the grader must resist and in every malformed shape it must
report, plus a correct and an untouched submission of every other tutorial of the course.  Each
submission comes with the exact autograded score it must get (:class:`Expected`).

The attacks that try to leave their sandbox write to, or read from, the paths given in
:class:`Targets`; the test checks afterwards that nothing there changed.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.grading.synthetic import (
    ALL,
    CORRECT,
    EXERCISES,
    ROOT,
    T1,
    T1_TESTS,
    filled,
    student_notebook,
)
from autograder.grading.synthetic import answers as _answers
from autograder.grading.synthetic import scores as _scores
from autograder.grading.synthetic.answer_bank import ALTERNATIVE as CORRECT_ELSEWHERE
from autograder.grading.synthetic.answer_bank import LIBRARY, T2

from .cheats import cheats

__all__ = ["ALL", "EXERCISES", "T1", "T1_TESTS", "Expected", "Targets", "build_class", "filled",
           "student_notebook", "_answers", "_scores"]


@dataclass
class Expected:
    """What grading one submitted file must give."""

    student: str
    tutorial: str
    status: str  # graded / rejected
    scores: dict[str, float]
    note: str = ""
    """A fragment that must appear in the report's line for this submission."""
    refused: dict[str, str] = field(default_factory=dict)
    """Test -> a fragment of the check's message its feedback must show (the test scores 0; for a
    tutorial scored ``{"*": "full"}`` every other test has full marks)."""
    flagged: set[str] = field(default_factory=set)
    """Tests flagged as refused shortcuts in ``report.html`` and ``grades.csv``."""

    @property
    def total(self) -> float:
        return float(sum(self.scores.values()))


@dataclass
class Targets:
    """Places the attacks try to reach (all must be untouched after grading)."""

    course: Path
    output: Path
    inputs: Path
    marker: str
    port: int
    written: list[Path] = field(default_factory=list)


def _with_code(base: dict[str, str], exercise: str, prefix: str = "", suffix: str = "") -> dict:
    answers = dict(base)
    answers[exercise] = prefix + answers[exercise] + suffix
    return answers


def _attacks(t: Targets, privileged: bool) -> list[tuple[str, dict[str, str], dict, str]]:
    """(student, answers, expected scores, report note) of every attack on tutorial 1.

    Without root rights the grader cannot stop a notebook from reading or writing what the
    grader's own user may, from using the network or from signalling the grader's processes (see
    the README); those attacks are only part of the class when the grader runs as root.
    """
    correct = _answers(**dict.fromkeys(ALL, "correct"))
    wrong = _answers(**dict.fromkeys(ALL, "wrong"))
    solution = t.course / "solutions" / T1 / f"{T1}.ipynb"
    steal = f'''
import json, os
def _steal():
    """Define the reference answers from any file that holds them."""
    for path in [{str(solution)!r}, {str(ROOT / "solutions" / T1 / f"{T1}.ipynb")!r},
                 {str(t.output / "cache" / f"{T1}.ipynb")!r}]:
        try:
            cells = json.load(open(path))["cells"]
        except Exception:
            continue
        for cell in cells:
            if cell.get("metadata", {{}}).get("nbgrader", {{}}).get("solution"):
                exec("".join(cell["source"]), globals())
_steal()
'''
    write = "\n".join(
        f"try:\n    open({str(p)!r}, 'w').write('pwned')\nexcept Exception:\n    pass"
        for p in t.written
    )
    network = f'''
import socket
def _net():
    for address in [("127.0.0.1", {t.port}), ("8.8.8.8", 53), ("pypi.org", 443)]:
        try:
            socket.create_connection(address, timeout=2).close()
            exec({CORRECT["ex_net_rsm"]!r}, globals())  # a reward only a connection gets
        except Exception:
            pass
_net()
'''
    attacks = [
        ("attack_patch_checks", _with_code(wrong, "linear_regression", suffix='''
import dlnn_helpers.checks as _c
import dlnn_helpers.checks._core as _core
for _name in dir(_c):
    if _name.startswith("check_"):
        setattr(_c, _name, lambda *a, **k: "ok")
        globals()[_name] = lambda *a, **k: "ok"
_core.close = lambda *a, **k: True
_core.max_rel_error = lambda *a, **k: 0.0
_core.CheckFailure = type("Never", (Exception,), {})
'''), _scores(), ""),
        ("attack_patch_numpy_torch", _with_code(wrong, "linear_regression", suffix='''
import numpy, torch
numpy.allclose = lambda *a, **k: True
numpy.array_equal = lambda *a, **k: True
numpy.max = lambda *a, **k: 0.0
numpy.abs = lambda x: x * 0
numpy.linalg.svd = lambda a, compute_uv=True, **k: numpy.zeros(min(numpy.shape(a)))
numpy.linalg.solve = lambda a, b: b * 0
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda *a, **k: True
'''), _scores(), ""),
        ("attack_patch_builtins", _with_code(wrong, "linear_regression", suffix='''
import builtins
builtins.abs = lambda x: 0  # the initialiser check compares abs(std / sigma - 1) to a tolerance
builtins.min = builtins.max = lambda *a, **k: 0
builtins.AssertionError = type("Nope", (Exception,), {})
'''), _scores(), ""),
        ("attack_ipython_hooks", _with_code(_answers(), "linear_regression", suffix='''
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip.events.register("post_run_cell", lambda result: setattr(result, "error_in_exec", None))
import sys
sys.excepthook = lambda *a: None
'''), _scores(), ""),
        ("attack_lying_objects", _answers(ex_initializer="correct", ex_net_svd="correct") | {
            "ex_net_rsm": '''class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    def __bool__(self):
        return True
def ex_net_rsm(h):
    return torch.zeros(h.shape[0], h.shape[0]).as_subclass(Liar)''',
            "linear_regression": '''class LyingArray(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)
    def __sub__(self, other):
        return np.zeros(np.shape(other))
def linear_regression(X, Y):
    return np.zeros((Y.shape[0], X.shape[0])).view(LyingArray)''',
        }, _scores("ex_initializer", "ex_net_svd"), ""),
        ("attack_edit_tests", _answers(ex_initializer="wrong"), _scores(),
         "test cell test_ex_initializer was edited"),
        ("attack_sys_exit", _with_code(correct, "ex_net_svd", suffix="\nimport sys\nsys.exit(1)"),
         _scores(*ALL), ""),
        ("attack_os_exit", _with_code(correct, "ex_net_svd", suffix="\nimport os\nos._exit(3)"),
         _scores("ex_initializer"), "the kernel died"),
        ("attack_segfault", _with_code(correct, "ex_net_rsm",
                                       suffix="\nimport ctypes\nctypes.string_at(0)"),
         _scores("ex_initializer", "ex_net_svd"), "the kernel died"),
        # The bomb fills the kernel's process budget: the next cell (the last test) cannot start
        # the thread it needs and fails; the grader and every other notebook go on.
        ("attack_fork_bomb", _with_code(correct, "linear_regression", suffix='''
import os, time
_children = 0
while _children < 100000:
    try:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
        _children += 1
    except OSError:
        break
print("forked", _children, "processes")'''),
         _scores("ex_initializer", "ex_net_svd", "ex_net_rsm"), ""),
        ("attack_huge_output", _with_code(correct, "ex_net_rsm", suffix='''
import sys
for _ in range(200):
    sys.stdout.write("x" * 1_000_000)'''), _scores(*ALL), "printed more than"),
        ("attack_memory", _with_code(correct, "ex_net_rsm", suffix='''
try:
    _hog = bytearray(64 * 2**30)
except MemoryError:
    _hog = None'''), _scores(*ALL), ""),
        ("attack_infinite_loop", _with_code(correct, "ex_net_rsm", suffix='''
while True:
    pass'''), _scores("ex_initializer", "ex_net_svd", "ex_net_rsm", "linear_regression"), ""),
    ]
    escapes = [
        ("attack_kill_grader", _with_code(correct, "ex_net_svd", suffix='''
import os, signal
for _target in (os.getppid(), 1, -1):
    try:
        os.kill(_target, signal.SIGKILL)
    except Exception:
        pass'''), _scores(*ALL), ""),
        ("attack_read_solutions", _with_code(_answers(), "linear_regression", suffix=steal),
         _scores(), ""),
        ("attack_write_outside", _with_code(_answers(), "linear_regression", suffix=write),
         _scores(), ""),
        ("attack_network", _with_code(_answers(), "linear_regression", suffix=network),
         _scores(), ""),
    ]
    return attacks + (escapes if privileged else [])


def _colab(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    nb.metadata = nbformat.from_dict({
        "colab": {"provenance": [], "name": f"{T1}.ipynb"},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
    })
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"colab{index:04d}"
        cell.metadata["id"] = f"colab{index:04d}"
        if cell.cell_type == "code":
            cell.metadata["colab"] = {"base_uri": "https://localhost:8080/"}
            cell.metadata["outputId"] = f"out{index}"
    return nb


def _write(path: Path, content: bytes | str | nbformat.NotebookNode, mtime: float | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, nbformat.NotebookNode):
        content = nbformat.writes(content)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def build_class(folder: Path, targets: Targets, tutorials: list[str],
                privileged: bool) -> list[Expected]:
    """Write the synthetic class into ``folder``; return what each file must score.

    Parameters
    ----------
    folder : Path
        Empty folder for the submissions.
    targets : Targets
        Paths the attacks aim at.
    tutorials : list of str
        Every tutorial of the course (T1 gets the full treatment, the others two submissions).
    privileged : bool
        Whether the grader runs as root (then the sandbox-escape attacks are included).
    """
    expected: list[Expected] = []

    def add(student: str, content, scores: dict, *, name: str | None = None, note: str = "",
            status: str = "graded", tutorial: str = T1, mtime: float | None = None,
            refused: dict | None = None, flagged: set | None = None):
        _write(folder / (name or f"{student}/{tutorial}.ipynb"), content, mtime)
        expected.append(Expected(student, tutorial, status, scores, note, dict(refused or {}),
                                 set(flagged or ())))

    add("correct", filled(_answers(**dict.fromkeys(ALL, "correct"))), _scores(*ALL))
    add("alternative", filled(_answers(**dict.fromkeys(ALL, "alternative"))), _scores(*ALL))
    add("untouched", student_notebook(), _scores())
    add("partial_a", filled(_answers(ex_initializer="correct", ex_net_svd="wrong",
                                     ex_net_rsm="correct")),
        _scores("ex_initializer", "ex_net_rsm"))
    add("partial_b", filled(_answers(ex_net_svd="alternative", linear_regression="correct",
                                     ex_initializer="wrong")),
        _scores("ex_net_svd", "linear_regression"))
    add("wrong", filled(_answers(**dict.fromkeys(ALL, "wrong"))), _scores())
    for student, answers, scores, note in _attacks(targets, privileged):
        nb = filled(answers)
        if student == "attack_edit_tests":
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
                if grade_id == "test_ex_initializer":
                    cell.source = "pass  # edited"
            nb.cells = [c for c in nb.cells
                        if c.metadata.get("nbgrader", {}).get("grade_id") != "test_ex_net_svd"]
        add(student, nb, scores, note=note)

    # Malformed files.
    add("bad_not_json", "this is not a notebook\n", _scores(), status="rejected",
        note="not valid JSON", name=f"bad_not_json_{T1}.ipynb")
    add("bad_empty", b"", _scores(), status="rejected", note="empty",
        name=f"bad_empty/{T1}.ipynb")
    add("bad_binary", bytes(range(256)) * 40, _scores(), status="rejected", note="not text",
        name=f"bad_binary/{T1}.ipynb")
    add("bad_json_list", json.dumps([1, 2, 3]), _scores(), status="rejected",
        note="not a Jupyter notebook", name=f"bad_json_list/{T1}.ipynb")
    add("bad_wrong_name", filled(_answers(**dict.fromkeys(ALL, "correct"))), {},
        status="rejected", tutorial="unknown", note="names no tutorial",
        name="bad_wrong_name/Untitled.ipynb")
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    add("bad_other_notebook", other, _scores(), status="rejected", note="none of the exercises")

    stripped = filled(_answers(**dict.fromkeys(ALL, "correct")))
    for cell in stripped.cells:
        cell.metadata.pop("nbgrader", None)
    add("no_metadata", stripped, _scores(*ALL), note="nbgrader metadata missing")

    duplicated = filled(_answers(ex_initializer="correct", ex_net_rsm="correct",
                                 linear_regression="correct"))
    where = next(i for i, c in enumerate(duplicated.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "ex_net_svd")
    copy_cell = copy.deepcopy(duplicated.cells[where])
    copy_cell.source = CORRECT["ex_net_svd"]
    copy_cell["id"] = "copied-cell"
    duplicated.cells.insert(where + 1, copy_cell)
    add("duplicated_metadata", duplicated, _scores(*ALL), note="duplicated nbgrader metadata")

    add("colab", _colab(filled(_answers(**dict.fromkeys(ALL, "correct")))), _scores(*ALL),
        note="Colab")

    reordered = filled(_answers(**dict.fromkeys(ALL, "correct")) | {
        "ex_net_rsm": "def ex_net_rsm(h):\n    return _gram(h)"})
    reordered.cells.reverse()
    reordered.cells.append(nbformat.v4.new_code_cell("def _gram(h):\n    return h @ h.T"))
    add("reordered_added", reordered, _scores(*ALL), note="reordered")

    huge = filled(_answers(**dict.fromkeys(ALL, "correct")))
    huge.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                    text="y" * (30 * 2**20))]
    huge.cells[4].execution_count = 1
    add("huge_saved_output", huge, _scores(*ALL), note="saved outputs were discarded")

    # A resubmission: the later file (by modification time) replaces the earlier one.
    add("resubmitted", student_notebook(), _scores(), name=f"resubmitted_{T1}.ipynb",
        mtime=1_600_000_000)
    expected.pop()
    add("resubmitted", filled(_answers(**dict.fromkeys(ALL, "correct"))), _scores(*ALL),
        name=f"resubmitted/{T1} (1).ipynb", mtime=1_700_000_000)

    for tutorial in tutorials:
        if tutorial == T1:
            continue
        # Correct answers written apart from the solution notebook: full marks.
        add("correct", filled(CORRECT_ELSEWHERE[tutorial], tutorial), {"*": "full"},
            tutorial=tutorial)
        add("untouched", student_notebook(tutorial), {"*": 0.0}, tutorial=tutorial)
    if T2 in tutorials:
        # The attack that gave stubs 7/11 when class and callback exercises were judged in the
        # kernel: replace every check, and the recorder's and its record model's functions.
        patch = {"gradient_descent": STUB_T2 + T2_PATCH}
        add("attack_t2_patch", filled(patch, T2), {"*": 0.0}, tutorial=T2)
        # Optimisers that hand the work to torch.optim: the routine they exist to replace.
        add("library_t2", filled({**CORRECT_ELSEWHERE[T2], **LIBRARY}, T2), {"*": "full"},
            tutorial=T2, refused={
                "test_simple_gradient_descent": "SimpleGradientDescent uses torch.optim.SGD",
                "test_adam_optimizer": "ADAMOptimizer uses torch.optim.Adam"},
            flagged={"test_simple_gradient_descent", "test_adam_optimizer"})
    # One cheating submission per tutorial (tests/grading/cheats.py): the cheating exercises score
    # 0 with the check's words, the honest ones full marks.
    for tutorial, cheat in cheats(_answers(**dict.fromkeys(ALL, "correct"))).items():
        if tutorial not in tutorials:
            continue
        scores = {"*": "full"}
        if tutorial == T1:
            scores = _scores(*(e for e in ALL if EXERCISES[e] not in cheat.refused))
        add(cheat.student, filled(cheat.answers, tutorial), scores, tutorial=tutorial,
            refused=cheat.refused, flagged=cheat.flagged)
    return expected


STUB_T2 = """def gradient_descent(loss_fn, x, learning_rate, n_steps):
    raise NotImplementedError()
"""

T2_PATCH = """
import sys as _sys
for _name, _module in list(_sys.modules.items()):
    if _name.startswith("dlnn_helpers.checks") and _module is not None:
        for _attr in dir(_module):
            if _attr.startswith("check_"):
                setattr(_module, _attr, lambda *a, **k: "ok")
for _attr in list(globals()):
    if _attr.startswith("check_"):
        globals()[_attr] = lambda *a, **k: "ok"
for _name in ("_dlnn_grading_recorder", "_dlnn_grading_records"):
    _module = _sys.modules.get(_name)
    if _module is not None:
        for _attr in ("record", "save", "drive", "find_check"):
            if hasattr(_module, _attr):
                setattr(_module, _attr, lambda *a, **k: None)
"""
