"""Hidden shortcuts and echoed hidden inputs, through the grader (one grading run for the module).

One ``grade_class`` run, in the session's prepared grading environment, grades:

* the hidden shortcuts of :mod:`tests.grading.hidden_shortcuts` (optimisers, initialisers,
  autograd; names built at run time, a thread, a process, profiling switched off, a private entry
  point bound at import), packed into a few submissions whose other cells are honest: every case
  is refused (scored 0, "Shortcuts refused") or flagged (score stands, "Flagged for review" with
  its line) as the corpus says, the honest cells keep full marks, and no flag reaches the feedback;
* one submission per tutorial whose every exercise answers the visible check calls correctly and,
  called by a hidden check call, raises an error that echoes its arguments and the call's settings:
  the feedback says which test failed with the first line of the error and no hidden input, while
  the instructor's rows keep the full text.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder.grading.judge.static_look import look
from autograder.grading.outputs import feedback
from autograder.grading.protocol.cells import defined_names, parse_test_cell
from autograder.grading.runner import grade_class
from autograder.grading.synthetic import filled, solution_sources
from autograder.grading.worker import hidden_calls

from ..tools import ROOT
from .conftest import sandbox_settings
from .hidden_shortcuts import HIDDEN, submissions

pytestmark = [pytest.mark.grading, pytest.mark.slow]

TUTORIALS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb")
                   if p.stem == p.parent.name)

ECHO = '''import sys as _echo_sys


def _echo_where():
    """(test cell, call index, settings) of the recorder's frame above, or None."""
    frame = _echo_sys._getframe(1)
    while frame is not None:
        names = frame.f_locals
        if frame.f_code.co_name == "record" and "index" in names and "cell" in names:
            return names["cell"], names["index"], names.get("settings")
        frame = frame.f_back
    return None


def _echo_check(args, kwargs):
    where = _echo_where()
    if where is not None and where[1] >= _ECHO_HIDDEN.get(where[0], 10**9):
        raise ValueError(f"echo: settings={where[2]!r} kwargs={kwargs!r} args={args!r}")


def _echoed(thing):
    if isinstance(thing, type):
        class Echoed(thing):
            def __init__(self, *args, **kwargs):
                _echo_check(args, kwargs)
                super().__init__(*args, **kwargs)

        Echoed.__name__, Echoed.__qualname__ = thing.__name__, thing.__qualname__
        return Echoed

    def echoed(*args, **kwargs):
        _echo_check(args, kwargs)
        return thing(*args, **kwargs)

    echoed.__name__ = thing.__name__
    return echoed

'''


def _first_hidden(tutorial: str) -> dict[str, int]:
    """Test grade id -> index of its first hidden check call (from the solution notebook)."""
    notebook = nbformat.read(ROOT / "solutions" / tutorial / f"{tutorial}.ipynb", as_version=4)
    found = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            hidden = hidden_calls(cell.source)
            if hidden:
                found[meta["grade_id"]] = min(hidden)
    return found


def _echoing(tutorial: str) -> dict[str, str]:
    """The reference answers, each exercise wrapped to echo its inputs on a hidden call."""
    answers = {}
    table = f"_ECHO_HIDDEN = {_first_hidden(tutorial)!r}\n"
    for grade_id, source in solution_sources(tutorial).items():
        names = defined_names(source)
        if not names:
            answers[grade_id] = source
            continue
        wraps = "\n".join(f"{name} = _echoed({name})" for name in names)
        answers[grade_id] = f"{ECHO}{table}\n{source}\n\n{wraps}\n"
    return answers


@pytest.fixture(scope="module")
def graded(grading_env, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("hidden-grading")
    inputs = base / "in"
    packed = submissions()
    for student, tutorial, answers, _ in packed:
        (inputs / student).mkdir(parents=True)
        nbformat.write(filled(answers, tutorial), inputs / student / f"{tutorial}.ipynb")
    for tutorial in TUTORIALS:
        student = f"echo-{tutorial[:2]}"
        (inputs / student).mkdir(parents=True)
        nbformat.write(filled(_echoing(tutorial), tutorial), inputs / student / f"{tutorial}.ipynb")
    output = grading_env.output(base / "out")
    result = grade_class(inputs, output, course=grading_env.course, workers=2,
                         settings=sandbox_settings(), progress=None)
    rows = {(r["student"], r["tutorial"]): r for r in result.rows}
    return {"output": output, "rows": rows, "packed": packed}


def _points(output: Path, tutorial: str) -> dict[str, float]:
    spec = json.loads((output / "cache" / f"{tutorial}.json").read_text())
    return {t["grade_id"]: float(t["points"]) for t in spec["tests"]}


def _verdict_cell(page: str, test: str) -> str:
    rows = [part for part in page.split("<tr>") if f"<td>{test}</td>" in part]
    assert len(rows) == 1, test
    return html.unescape(rows[0])


def test_every_hidden_shortcut_is_refused_or_flagged_as_the_corpus_says(graded):
    output, rows = graded["output"], graded["rows"]
    report = html.unescape((output / "report.html").read_text())
    flagged_part = report.split("<h2>Flagged for review</h2>")[1].split("<h2>")[0]
    outcomes, problems = {}, []
    for student, tutorial, _, cases in graded["packed"]:
        row = rows[(student, tutorial)]
        assert row["status"] == "graded", row["message"]
        points = _points(output, tutorial)
        page = (output / "feedback" / student / f"{tutorial}.html").read_text()
        for case in cases:
            refused = case.test in row["shortcuts"] and row["scores"][case.test] == 0
            why = row["review"].get(case.test, "")
            flagged = all(f"line {line}: " in why for line in case.lines) and case.cell in why
            outcomes[case.name] = "refused" if refused else "flagged" if flagged else "missed"
            if outcomes[case.name] != case.outcome or not flagged:
                problems.append((case.name, outcomes[case.name], row["verdicts"][case.test][:300],
                                 why[:300]))
            if case.outcome == "flagged" and row["scores"][case.test] != points[case.test]:
                problems.append((case.name, "a flag changed the score", row["verdicts"][case.test]))
            if f"<td>{student}</td><td>{tutorial}</td><td>{case.test}</td>" not in flagged_part:
                problems.append((case.name, "not in report.html's Flagged for review"))
            shown = html.unescape(page)
            assert not [f.reason for f in look(case.source, case.refused) if f.reason in shown]
        honest = set(points) - {case.test for case in cases}
        for test in honest:
            if row["scores"][test] != points[test]:
                problems.append((student, test, "honest cell lost points", row["verdicts"][test]))
        assert "Flagged" not in page and "private internals" not in page
    assert problems == []
    assert set(outcomes) == {case.name for case in HIDDEN}


def test_feedback_names_the_failed_hidden_test_without_its_inputs(graded):
    output, rows = graded["output"], graded["rows"]
    reached = []
    for tutorial in TUTORIALS:
        student = f"echo-{tutorial[:2]}"
        row = rows[(student, tutorial)]
        assert row["status"] == "graded", row["message"]
        page = (output / "feedback" / student / f"{tutorial}.html").read_text()
        told = page.split("<h2>Your code, as graded</h2>")[0]  # the code is the student's own
        spec = json.loads((output / "cache" / f"{tutorial}.json").read_text())
        for test in spec["tests"]:
            calls = parse_test_cell(test["source"]) or []
            hidden = [calls[i] for i in sorted(hidden_calls(test["source"])) if i < len(calls)]
            full = row["verdicts"][test["grade_id"]]
            shown = _verdict_cell(page, test["grade_id"]).split("<pre>")[1].split("</pre>")[0]
            if "echo: settings=" not in full:
                continue
            reached.append(test["grade_id"])
            # The instructor keeps the whole error; the student reads the test and its first line.
            first = hidden[0]  # the echo raises on the first hidden call
            assert f"settings={first.settings!r}" in full, full[:300]
            assert shown.startswith(f"{test['grade_id']} failed on a hidden test"), shown
            assert "raised ValueError: echo: settings=" in shown
            assert not re.search(r"\d", shown.replace(test["grade_id"], "")), shown
            assert all(str(a) not in shown for a in first.args if not isinstance(a, str))
            for call in hidden:
                for key, value in call.settings.items():
                    for leak in (f"{key}={value!r}", f"'{key}': {value!r}", repr(call.settings)):
                        assert leak not in shown and html.escape(leak) not in told, leak
    assert len(reached) >= 15, reached  # the echo reached the hidden calls of most tests


def test_an_answer_that_reads_its_callers_frames_is_flagged_but_not_told(graded):
    output, rows = graded["output"], graded["rows"]
    for tutorial in TUTORIALS:
        row = rows[(f"echo-{tutorial[:2]}", tutorial)]
        assert row["review"] and all("sys._getframe" in why for why in row["review"].values())
        page = (output / "feedback" / f"echo-{tutorial[:2]}" / f"{tutorial}.html").read_text()
        assert "reads the frames of its callers" not in page
        assert feedback.HIDDEN_VALUE in page
