"""Refused shortcuts found in the submitted text (the grader's second look, besides the run).

Each check declares, next to itself, the library routines its exercise exists to replace
(:data:`dlnn_helpers.checks._shortcuts.DECLARED`: check name -> (exercise, refused routines)), and
the catalogue gives the patterns that find each routine in code (``ROUTINES[r].patterns``).  The
checks catch a refused routine *where it runs*, whatever way the code reached it
(:mod:`autograder.grading.judge.replay` hands them what the kernel saw); here the grader also reads the
code of the solution cell(s) that define the exercise, comments and strings left out
(:mod:`tokenize`), so that ``torch.optim.Adam`` named in a branch the checks never run is refused
too.  Either finding scores the test 0 with the same plain words ("ADAMOptimizer uses
torch.optim.Adam: the exercise is to write the update yourself") and flags it in the report.
"""

from __future__ import annotations

import importlib
import io
import pkgutil
import re
import tokenize
from typing import Any

from dlnn_helpers.checks import _shortcuts

from ..protocol.cells import defined_names
from ..protocol.records import CheckCall

FOUND_IN_TEXT = " (found in the submitted code)"


def declared() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every check's declaration (all check modules imported first)."""
    package = importlib.import_module("dlnn_helpers.checks")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(_shortcuts.DECLARED)


def code_only(source: str) -> str:
    """``source`` with its comments and string literals blanked (same lines and columns).

    IPython lines (``%magic``, ``!shell``) are blanked; text that does not tokenize is read as it is,
    without its ``#`` comments.
    """
    lines = [("" if line.lstrip().startswith(("%", "!")) else line)
             for line in source.splitlines(keepends=True)]
    text = "".join(lines)
    blank = [list(line) for line in lines]
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.COMMENT, tokenize.STRING):
                (r0, c0), (r1, c1) = token.start, token.end
                for row in range(r0, r1 + 1):
                    chars = blank[row - 1]
                    start = c0 if row == r0 else 0
                    end = c1 if row == r1 else len(chars)
                    for column in range(start, min(end, len(chars))):
                        if chars[column] != "\n":
                            chars[column] = " "
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return "".join(re.sub(r"#.*", "", line) for line in lines)
    return "".join("".join(chars) for chars in blank)


def _name_around(code: str, start: int, end: int) -> str:
    """The dotted name the match lies in (``torch.optim.Adam`` around ``optim``)."""
    left = start
    while left > 0 and (code[left - 1].isalnum() or code[left - 1] in "_."):
        left -= 1
    right = end
    while right < len(code) and (code[right].isalnum() or code[right] in "_."):
        right += 1
    return code[left:right].strip(".") or code[start:end]


def find(source: str, refused: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(routine, name in the code)`` of every refused routine the code names, in text order."""
    code = code_only(source)
    hits = []
    for routine in refused:
        entry = _shortcuts.ROUTINES.get(routine)
        for pattern in getattr(entry, "patterns", ()):
            for match in re.finditer(pattern, code):
                hits.append((match.start(), routine, _name_around(code, match.start(), match.end())))
    return [(routine, name) for _, routine, name in sorted(hits)]


def message(exercise: str, routine: str, name: str) -> str:
    """The check's own sentence for a routine found in the text."""
    task = _shortcuts.ROUTINES[routine].task
    return f"{exercise} uses {name}: the exercise is to {task}{FOUND_IN_TEXT}"


def scan(calls: list[CheckCall], solutions: dict[str, str],
         solution_names: dict[str, list[str]], table: dict[str, Any] | None = None) -> str:
    """The sentence about the first refused routine named by the code of a test's exercises ('').

    Parameters
    ----------
    calls : list of CheckCall
        The test cell's check calls.
    solutions : dict
        Solution cell grade id -> the submitted source (as graded).
    solution_names : dict
        Solution cell grade id -> the names the reference defines there.
    table : dict, optional
        :func:`declared` (computed when not given).
    """
    table = declared() if table is None else table
    for call in calls:
        students = set(call.students)
        exercises = []
        if call.check in table:
            exercises.append(table[call.check])
        exercises += [entry for key, entry in table.items()
                      if key != call.check and entry[0] in students]
        for exercise, refused in exercises:
            if not refused:
                continue
            for grade_id, source in solutions.items():
                names = set(solution_names.get(grade_id, [])) | set(defined_names(source))
                if not names & (students | {exercise}):
                    continue
                hits = find(source, tuple(refused))
                if hits:
                    routine, name = hits[0]
                    # A declaration may name a family ("ex_*_weights"): the notebook's name then.
                    named = exercise if exercise in students else call.func
                    return message(named, routine, name)
    return ""
