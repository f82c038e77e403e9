"""The static look at exercise cells (:mod:`autograder.grading.judge.static_look`), on cell sources.

Hidden shortcuts written for these tests are flagged with their line; the honest corpora (every
solution notebook's exercise cells, the demo class, the grading tests' own correct answers, the
synthetic class and the checks' reference answers) are not.  Each exercise whose check refuses
routines tells the student so, and that hidden code is reviewed by a person.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import nbformat
import pytest

from autograder.grading import synthetic
from autograder.grading.judge import shortcuts, static_look
from autograder.grading.judge.static_look import look
from autograder.grading.protocol.cells import defined_names
from autograder.grading.protocol.records import CheckCall
from autograder.grading.synthetic.answer_bank import ALTERNATIVE, T2

from ..tools import ROOT
from .hidden_shortcuts import FAMILIES, HIDDEN, THREAD_ONLY, WAYS

ALL_REFUSED = ("torch.optim", "autograd", "torch.nn.init", "lstsq", "multi_dot", "torch.inner")


def _solution_cells(path: Path) -> list[tuple[str, str]]:
    notebook = nbformat.read(path, as_version=4)
    return [(c.metadata["nbgrader"].get("grade_id", ""), c.source) for c in notebook.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]


def _demo_cells() -> list[tuple[str, str]]:
    cells = []
    for path in sorted((ROOT / "autograder" / "demo_class").rglob("*.ipynb")):
        try:
            json.loads(path.read_text())
        except ValueError:
            continue  # the demo class's damaged file (it is rejected, never graded)
        cells += [(f"{path.name}:{grade_id}", source) for grade_id, source in _solution_cells(path)]
    return cells


def _reference_answers() -> list[tuple[str, str]]:
    """The answer key's reference answers (``dlnn_reference.ANSWERS``, what the checks' tests
    use), one function or class each."""
    import inspect

    import dlnn_reference

    found = {id(a): a for entries in dlnn_reference.ANSWERS.values() for answer, settings in entries
             for a in (answer, *(v for v in settings.values() if callable(v)))}
    return [(a.__qualname__, inspect.getsource(a)) for a in found.values()]


SOLUTIONS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


def _honest_corpora() -> dict[str, list[tuple[str, str]]]:
    corpora = {path.stem: _solution_cells(path) for path in SOLUTIONS}
    corpora["demo class"] = _demo_cells()
    corpora["answer bank"] = [(f"{t}:{k}", v) for t, cells in ALTERNATIVE.items()
                              for k, v in cells.items()]
    corpora["synthetic class"] = [(f"{kind}:{k}", v) for kind in ("CORRECT", "ALTERNATIVE", "WRONG")
                                  for k, v in getattr(synthetic, kind).items()]
    corpora["dlnn_reference"] = _reference_answers()
    return corpora


def test_no_honest_answer_is_flagged():
    corpora = _honest_corpora()
    assert len(SOLUTIONS) == 6 and all(corpora[path.stem] for path in SOLUTIONS)
    assert sum(len(cells) for cells in corpora.values()) >= 100
    flagged = [(corpus, name, f.message()) for corpus, cells in corpora.items()
               for name, source in cells for f in look(source, ALL_REFUSED)]
    assert flagged == []


def test_spelled_names_ordinary_library_use_comments_and_strings_are_not_flagged():
    quiet = '''
import numpy as np
import torch
from torch import nn
# threading.Thread(target=torch.optim.adam.adam); getattr(torch, name); sys.setprofile(None)
note = "eval(x) exec(y) torch._C importlib.import_module('torch')"

def f(model, x):
    weight = getattr(model, "weight")
    setattr(model, "bias", None)
    out = model.eval()(x) @ np.linalg.inv(weight.detach().numpy()).T
    pattern = __import__  # named, not called
    return torch.compile, re.compile, out.__class__.__name__, torch.__version__
'''
    assert look(quiet, ALL_REFUSED) == []


@pytest.mark.parametrize("case", HIDDEN, ids=lambda case: case.name)
def test_every_hidden_shortcut_is_flagged_with_its_line(case):
    findings = look(case.source, case.refused)
    assert findings, case.name
    lines = case.source.splitlines()
    for finding in findings:
        assert finding.message().startswith(f"line {finding.line}: ")
        assert 1 <= finding.line <= len(lines)
    assert {f.line for f in findings} >= set(case.lines), [f.message() for f in findings]
    assert any(WAYS[case.way] in f.reason for f in findings), [f.message() for f in findings]


def test_the_corpus_covers_every_family_and_way():
    assert {(case.family, case.way) for case in HIDDEN} == {
        (family, way) for family in FAMILIES for way in WAYS}


def test_thread_only_answers_are_flagged_though_nothing_else_is():
    for source in THREAD_ONLY:
        assert [f.reason for f in look(source)] and all(
            "thread" in f.reason or "executor" in f.reason for f in look(source))


@pytest.mark.parametrize("source, line, words", [
    ("import importlib as il\nm = il.import_module('torch.' + 'optim')", 2, "import_module"),
    ("from operator import attrgetter as a\nf = a(name)", 2, "attrgetter"),
    ("x = globals()[name]", 1, "globals()"),
    ("x = vars(torch.optim)[name]", 1, "vars()"),
    ("x = torch.optim.__dict__['Ad' + 'am']", 1, "__dict__"),
    ("import torch as t\nc = t._C._EngineBase", 2, "torch._C._EngineBase"),
    ("from torch.autograd import Variable as V\nr = V._execution_engine.run_backward", 2,
     "_execution_engine"),
    ("from torch.optim import _functional as F\nF.adam()", 1, "torch.optim._functional"),
    ("import sys as s\ns.settrace(None)", 2, "sys.settrace"),
    ("import threading as th\nth.setprofile(None)", 1, "threading"),
    ("import os\npid = os.fork()", 2, "os.fork"),
    ("from concurrent.futures import ThreadPoolExecutor as P", 1, "concurrent.futures"),
    ("import asyncio\nasyncio.run(main())", 1, "asyncio"),
    ("exec(code)", 1, "exec"),
    ("f = eval('torch.optim.Ad' + 'am')", 1, "eval"),
    ("code = compile(text, 'x', 'exec')", 1, "compile"),
    ("import torch\nf = torch.optim.adam.adam", 2, "functional form"),
    ("from dlnn_helpers.checks import _shortcuts\n_shortcuts.REPORTER = None", 1, "internals"),
])
def test_each_kind_is_named_in_plain_words(source, line, words):
    refused = ("torch.optim",)
    findings = look(source, refused)
    assert any(f.line == line and words in f.reason for f in findings), [
        f.message() for f in findings]


def test_the_functional_optimiser_is_only_flagged_where_torch_optim_is_refused():
    source = "import torch\nf = torch.optim.sgd.sgd"
    assert look(source, ("torch.optim",)) and look(source, ("autograd",)) == []


def test_code_that_does_not_parse_gives_no_finding_and_magics_are_skipped():
    assert look("def f(:\n    threading.Thread()") == []
    assert look("%timeit f()\n!ls\nx = 1") == []


def test_the_review_names_the_exercise_cell_and_line():
    calls = [CheckCall("check_adam_optimizer", "ADAMOptimizer", {})]
    sources = {"adam_optimizer": "import threading\nclass ADAMOptimizer:\n    pass\n",
               "other": "import threading\ndef helper():\n    pass\n"}
    said = static_look.review(calls, sources, {"adam_optimizer": ["ADAMOptimizer"]},
                              shortcuts.declared())
    assert said == ("ADAMOptimizer (cell adam_optimizer), line 1: starts or manages threads "
                    "(threading)")
    assert static_look.review(calls, {"adam_optimizer": ALTERNATIVE[T2]["adam_optimizer"]},
                              {}, shortcuts.declared()) == ""


# ------------------------------------------------------------------------------------------------
# Students are told the rule
# ------------------------------------------------------------------------------------------------

RULE = "reviewed by a person"


def test_every_exercise_that_refuses_routines_says_so_and_that_hidden_code_is_reviewed():
    """The markdown (or the docstring) just before each refusing exercise's cell tells the rule."""
    refusing = {exercise for exercise, refused in shortcuts.declared().values() if refused}
    assert refusing >= {"linear_regression", "gradient_descent", "SimpleGradientDescent",
                        "ADAMOptimizer", "ex_*_weights", "ex_linear_backward"}
    missing, seen = [], set()
    for path in SOLUTIONS:
        notebook = nbformat.read(path, as_version=4)
        told = ""
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                told += cell.source
                continue
            if not cell.metadata.get("nbgrader", {}).get("solution"):
                continue
            names = defined_names(cell.source)
            for exercise in refusing:
                if any(fnmatch.fnmatch(name, exercise) for name in names):
                    seen.add(exercise)
                    lines = [line for line in (told + cell.source).splitlines() if RULE in line]
                    if not lines:
                        missing.append((path.stem, exercise, names))
            told = ""
    assert seen == refusing
    assert missing == []
