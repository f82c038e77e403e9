"""What the student reads about a failure on a hidden check call: the test, no input of it."""

from __future__ import annotations

import re

from autograder.grading import spec, worker
from autograder.grading.model import Verdict
from autograder.grading.outputs import feedback
from autograder.grading.protocol.records import CheckCall

CELL = '''# Autograder test (2 points): the check above, then hidden ones.
check_net_rsm(ex_net_rsm)
### BEGIN HIDDEN TESTS
check_net_rsm(ex_net_rsm, seed=4, shape=(12, 12))
check_net_rsm(ex_net_rsm, 7, mode="tanh")
### END HIDDEN TESTS
check_net_rsm(ex_net_rsm, seed=1)'''


def test_the_hidden_calls_of_a_test_cell_are_found_by_their_place():
    assert worker.hidden_calls(CELL) == {1, 2}
    assert worker.hidden_calls("check_x(f)\ncheck_x(f, seed=2)") == set()
    assert worker.hidden_calls("### BEGIN HIDDEN TESTS\ncheck_x(f, seed=2)") == {0}


def test_a_hidden_failure_shows_the_test_and_the_first_line_without_any_input():
    message = ("ex_net_rsm raised ValueError: echo args=(tensor([[0.1234, 12.5]]),) "
               "{'seed': 4, 'shape': (12, 12)} 12x12 mode tanh\nsecond line: seed=4")
    spellings = feedback.secrets_of(spec.TutorialSpec("T1", {}, [spec.TestCell(
        "test_ex_net_rsm", 2.0, CELL, "", [CheckCall("check_net_rsm", "ex_net_rsm",
                                                     {"seed": 4, "shape": (12, 12)})])], {}, {}))
    shown = feedback.hidden_failure("test_ex_net_rsm", message, ["tanh"], spellings)
    assert shown.startswith("test_ex_net_rsm failed on a hidden test (its inputs are not shown): "
                            "ex_net_rsm raised ValueError: echo args=")
    body = shown.removeprefix("test_ex_net_rsm")
    assert not re.search(r"\d", body) and "tanh" not in body and "second line" not in body
    assert feedback.REDACTED in shown and feedback.HIDDEN_VALUE in shown


def test_only_a_failure_on_a_hidden_call_is_rewritten():
    calls = [CheckCall("check_net_rsm", "ex_net_rsm", {}),
             CheckCall("check_net_rsm", "ex_net_rsm", {"seed": 4}),
             CheckCall("check_net_rsm", "ex_net_rsm", {"mode": "tanh"}, (7,))]
    hidden = {1, 2}
    visible = Verdict(False, "ex_net_rsm is wrong for seed=0", call=0)
    assert worker._shown("t", visible, calls, hidden, []) is None
    assert worker._shown("t", Verdict(True, "ok"), calls, hidden, []) is None
    said = worker._shown("t", Verdict(False, "ex_net_rsm raised: tanh 7", call=2), calls, hidden, [])
    assert said == "t failed on a hidden test (its inputs are not shown): ex_net_rsm raised: … …"


def test_the_feedback_page_shows_the_students_view_and_the_row_keeps_the_full_text():
    test = spec.TestCell("test_ex_net_rsm", 2.0, CELL, "", None)
    tutorial = spec.TutorialSpec("T1", {}, [test], {}, {})
    full = "ex_net_rsm raised ValueError: seed 4"
    result = worker.Result("ann", "T1", "ann/T1.ipynb", "0" * 64, "graded",
                           scores={"test_ex_net_rsm": 0.0}, maxima={"test_ex_net_rsm": 2.0},
                           verdicts={"test_ex_net_rsm": full},
                           shown={"test_ex_net_rsm": feedback.hidden_failure("test_ex_net_rsm", full)})
    page = feedback.render(result, tutorial, None)
    assert "failed on a hidden test" in page and "seed …" in page and full not in page
    assert result.verdicts["test_ex_net_rsm"] == full
