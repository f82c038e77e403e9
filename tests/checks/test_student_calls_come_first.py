"""Every check calls the student's code for all its settings before it needs a reference value.

The grader's sandboxed kernel holds the student package only: there :func:`expected` raises
``ReferenceUnavailable`` for a hidden test's settings, and a student call that the check would
have made after it is missing from the recording the grader replays.  Each check call of every test
cell (the hidden ones included) is run with the solution's answers twice, counting the calls of the
solution's code: as in the kernel (shipped values only) and with the reference live.  The counts
must agree.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any

import pytest

from dlnn_helpers import checks
from dlnn_helpers.checks import _expected
from dlnn_helpers.checks._expected import ReferenceUnavailable

from .exercises import TestCall, exercises

_, NAMESPACES, CALLS = exercises()


def _count_solution_calls(call: TestCall) -> tuple[int, str]:
    """Run ``call`` with the solution's answers; count how often the solution's code is entered."""
    namespace: dict[str, Any] = dict(NAMESPACES[call.tutorial])
    namespace.update(vars(checks))
    prefix = f"{call.tutorial}:"
    count = 0
    previous = sys.getprofile()

    def profile(frame, event, arg):
        nonlocal count
        if event == "call" and frame.f_code.co_filename.startswith(prefix):
            count += 1
        if previous is not None:
            previous(frame, event, arg)

    outcome = "passed"
    sys.setprofile(profile)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            eval(call.call, namespace)  # noqa: S307 - the course's own test line
    except ReferenceUnavailable:
        outcome = "reference unavailable"
    finally:
        sys.setprofile(previous)
    return count, outcome


def test_every_test_cell_has_hidden_calls():
    assert len({(c.tutorial, c.grade_id) for c in CALLS}) == 27
    assert len(CALLS) > 50


@pytest.mark.parametrize("call", CALLS, ids=str)
def test_the_student_code_runs_before_any_reference_value(call):
    with _expected.shipped_only():
        in_kernel, outcome = _count_solution_calls(call)
    with _expected.live_only():
        live, live_outcome = _count_solution_calls(call)
    assert live_outcome == "passed"
    assert live > 0, "the check never called the solution's code"
    assert in_kernel == live, (
        f"without the reference the check called the solution {in_kernel} times ({outcome}), "
        f"with it {live} times: every student call must come before the first expected()"
    )
