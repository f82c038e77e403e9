"""The call between kernel and judge: the staged modules' names and the code run for a test cell.

The grader stages its modules that run inside the sandbox next to the student package, each under
a top-level name of its own (:data:`STAGED`: the recorder, its record model, the warm
interpreter), puts ``import _dlnn_grading_recorder`` first in the notebook (:func:`preamble`) and
runs, in place of each test cell, :func:`recorder_source`: one
``_dlnn_grading_recorder.record(...)`` per check call, which records (and judges nothing).  The
recorder (:mod:`autograder.grading.inside.recorder`) receives exactly these arguments; the judge
reads what it wrote with :mod:`.records`.
"""

from __future__ import annotations

from pathlib import Path

from .records import CheckCall

PREFIX = "_dlnn_grading_"
"""The names of the grader's staged modules start with it (no student module does)."""
RECORDER_MODULE = PREFIX + "recorder"
RECORDS_MODULE = PREFIX + "records"
ZYGOTE_MODULE = PREFIX + "zygote"

_GRADING = Path(__file__).resolve().parent.parent
STAGED = {
    RECORDER_MODULE: _GRADING / "inside" / "recorder.py",
    RECORDS_MODULE: _GRADING / "protocol" / "records.py",  # the record model the recorder imports
    ZYGOTE_MODULE: _GRADING / "inside" / "zygote.py",  # the warm interpreter of a slot
}
"""Staged module name -> its file: what runs inside the sandbox, copied next to the student
package (standard library, numpy, torch and the student package only)."""
ENTER_JAIL = _GRADING / "inside" / "enter_jail.py"
"""The stand-alone script that builds a job's jail and starts the kernel (or zygote) in it."""


def preamble() -> str:
    """The code the grader puts first in a graded notebook: the recorder, imported."""
    return f"import {RECORDER_MODULE}"


def recorder_source(cell: str, calls: list[CheckCall]) -> str:
    """The code that runs in the sandbox instead of the test cell (records, judges nothing)."""
    lines = [f"# Test {cell}: recorded here, judged by the grader."]
    for index, call in enumerate(calls):
        others = "{" + ", ".join(f"{k!r}: globals().get({n!r})" for k, n in call.student_kwargs) + "}"
        lines.append(
            f"{RECORDER_MODULE}.record({cell!r}, {index}, {call.check!r}, "
            f"globals().get({call.func!r}), {call.settings!r}, {call.args!r}, {others}, "
            f"{call.students!r})"
        )
    return "\n".join(lines)
