"""Every check calls the student's code for all its settings before it needs a reference value.

The grader's sandboxed kernel holds the student package only: there :func:`expected` raises
``ReferenceUnavailable`` for a hidden test's settings, and a student call that the check would
have made after it is missing from the recording the grader replays.  Each check call of every test
cell (the hidden ones included) is run with the solution's answers twice, counting the calls of the
solution's code: as in the kernel (shipped values only) and with the reference live.  The counts
must agree.  And every check whose expected values the reference computes
(``dlnn_reference.EXPECTED``) is called by hidden tests that the kernel cannot judge (it raises
``ReferenceUnavailable`` there, after the student's code ran): the hidden settings' values are not
shipped, and the grader judges them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import sys
from typing import Any

import pytest

import dlnn_reference
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


@functools.cache
def _run(call: TestCall, mode: str) -> tuple[int, str]:
    """:func:`_count_solution_calls` as in the kernel (``shipped``) or with the reference live."""
    with _expected.shipped_only() if mode == "shipped" else _expected.live_only():
        return _count_solution_calls(call)


def _check_of(call: TestCall) -> str:
    return call.call.partition("(")[0]


def test_every_registered_check_has_hidden_calls():
    """Every check of the registry is called by the test cells, the self-check call and more."""
    by_check = {name: [c for c in CALLS if _check_of(c) == name] for name in checks.CHECKS}
    assert {_check_of(c) for c in CALLS} == set(checks.CHECKS)
    assert all(len(calls) > 1 for calls in by_check.values()), by_check
    assert len(CALLS) > 50


@pytest.mark.parametrize("call", CALLS, ids=str)
def test_the_student_code_runs_before_any_reference_value(call):
    in_kernel, outcome = _run(call, "shipped")
    live, live_outcome = _run(call, "live")
    assert live_outcome == "passed"
    assert live > 0, "the check never called the solution's code"
    assert in_kernel == live, (
        f"without the reference the check called the solution {in_kernel} times ({outcome}), "
        f"with it {live} times: every student call must come before the first expected()"
    )


@pytest.mark.parametrize("check", sorted(dlnn_reference.EXPECTED))
def test_hidden_settings_are_judged_by_the_grader(check):
    """Some hidden call of the check stops in the kernel (its values are not shipped) and passes
    with the reference live; the calls-first test above shows that it stopped after every call of
    the student's code."""
    calls = [c for c in CALLS if _check_of(c) == check]
    outcomes = {c.call: _run(c, "shipped")[1] for c in calls}
    assert "reference unavailable" in outcomes.values(), outcomes
    assert all(_run(c, "live")[1] == "passed" for c in calls)
