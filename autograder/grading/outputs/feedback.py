"""Per-student HTML feedback, written by the grader (not nbgrader's ``generate_feedback``).

nbgrader's own feedback renders the autograded notebook, hidden tests included (its issue
#1363).  This page shows, for each graded exercise, the points and the verdict of the check (what
is wrong and how to find it), the student's own code, and the problems found in the file; the
source of the tests never appears, and any line of a hidden test that a notebook managed to echo
into a message is blanked out.

Nothing the grader knows and the student must not learn reaches the page: every line of a hidden
test, and every setting of a hidden check call in any spelling the grader itself uses
(``{'seed': 8, 'shape': (30, 5)}``, ``seed=8``, ``'shape': (30, 5)``), is blanked out of every
message (:func:`secrets_of`); so are the grader's host details (host name, the course, input and
output folders, the Python environment, the gradebook URL: :func:`host_secrets`, applied again by
the parent process with what only it knows).  A failure of the grader itself is reported to the
student without its technical details (those are in the instructor's report).
"""

from __future__ import annotations

import html
import re
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from courselayout import ROOT

if TYPE_CHECKING:  # pragma: no cover
    from ..model import Prepared, TutorialSpec

REDACTED = "[hidden test]"
HOST = "[grader]"
MAX_MESSAGE_CHARS = 4000
"""A verdict longer than this is cut (a page stays readable whatever a notebook raised)."""
MAX_CODE_CHARS = 100_000
"""The student's code of one exercise is shown up to this length."""
MAX_NOTES = 50
SHORTCUT_FLAG = "&#9873; refused shortcut: this test scores 0"
"""Shown above the verdict of a test whose exercise used a routine it exists to replace."""
GRADER_FAILED = ("the grader failed on this submission (not your fault; your instructor has the "
                 "details and will grade it again)")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #ccc; padding: .4rem .6rem; vertical-align: top; text-align: left; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: .5rem; margin: 0; }
.pass { color: #176f2c; } .fail { color: #a4161a; } .note { color: #7a5b00; }
"""


def redact(text: str, hidden_lines: list[str], settings: list[str] = ()) -> str:
    """Blank out every line of hidden test code, then every hidden setting, found in ``text``.

    Parameters
    ----------
    text : str
    hidden_lines : list of str
        Lines of hidden test code (replaced wherever they occur).
    settings : list of str
        Spellings of hidden settings (``seed=8``): replaced where they are not part of a longer
        word or number.
    """
    for line in hidden_lines:
        if line in text:
            text = text.replace(line, REDACTED)
    for spelling in sorted(set(settings), key=len, reverse=True):
        if spelling in text:
            text = re.sub(rf"(?<![\w.]){re.escape(spelling)}(?![\w.])", REDACTED, text)
    return text


HIDDEN_VALUE = "…"
"""What stands for every number (and every text setting) of a failure on a hidden test."""


def hidden_failure(test: str, message: str, values: list[str] = (),
                   spellings: list[str] = ()) -> str:
    """What the student reads about ``test`` failing on a hidden check call.

    The test's name and the first line of what the check said (the student's error), with every
    number (seeds, shapes, sizes, tensor values: whatever the hidden inputs gave) and every text
    value of the hidden call (``values``) replaced by :data:`HIDDEN_VALUE`, after the settings'
    usual spellings (``spellings``, :func:`secrets_of`) were replaced by :data:`REDACTED`.  The
    instructor's report keeps the full message.
    """
    first = next((line.strip() for line in str(message).splitlines() if line.strip()), "")
    first = redact(first, [], list(spellings))
    for value in sorted({v for v in values if len(v) >= 2}, key=len, reverse=True):
        first = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", HIDDEN_VALUE, first)
    first = re.sub(r"\d+", HIDDEN_VALUE, first)
    return f"{test} failed on a hidden test (its inputs are not shown): {first}"


def secrets_of(spec: TutorialSpec) -> list[str]:
    """Every spelling of the hidden check calls' settings that a message could carry."""
    spellings = []
    for test in spec.tests:
        for call in test.calls or []:
            if call.settings:
                spellings += [repr(call.settings), str(call.settings)]
                for key, value in call.settings.items():
                    spellings += [f"{key}={value!r}", f"{key}={value}", f"'{key}': {value!r}",
                                  f'"{key}": {value!r}', f"{key}: {value!r}"]
            if call.args:
                spellings.append(repr(call.args))
    return [s for s in spellings if len(s) >= 4]


def host_secrets(extra: list[str] = ()) -> list[str]:
    """Details of the grading host that a message could carry (longest first).

    The host name, the Python environment, the course and the home folder, and ``extra`` (the
    parent adds the input, output and gradebook URL, and its own command line).
    """
    course = ROOT
    candidates = [socket.gethostname(), sys.prefix, sys.base_prefix, sys.exec_prefix,
                  str(Path(sys.executable).parent), str(course), str(Path.home()), *extra]
    found = set()
    for value in candidates:
        value = str(value or "").strip().rstrip("/")
        if len(value) >= (4 if "/" in value else 2) and value not in (
                "/usr", "/root", "/home", "/tmp", "/opt"):
            found.add(value)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (raw or HTML-escaped) replaced by ``[grader]``.

    A path is replaced wherever it occurs; a name (a host name) only as a whole word.
    """
    for secret in secrets:
        for form in {secret, html.escape(secret)}:
            if form not in text:
                continue
            if "/" in form:
                text = text.replace(form, HOST)
            else:
                text = re.sub(rf"(?<![\w.-]){re.escape(form)}(?![\w-])", HOST, text)
    return text


class GradedFile(Protocol):
    """What a feedback page shows of a graded file (:class:`autograder.grading.model.Result`)."""

    student: str
    tutorial: str
    file: str
    status: str
    message: str
    notes: list[str]
    scores: dict[str, float]
    verdicts: dict[str, str]
    manual: dict[str, float]

    @property
    def score(self) -> float: ...

    @property
    def max_score(self) -> float: ...


def render(result: GradedFile, spec: TutorialSpec, prepared: Prepared | None) -> str:
    """The feedback page of one submission.

    Parameters
    ----------
    result : GradedFile
        The graded (or rejected) submission.
    spec : TutorialSpec
        Its tutorial.
    prepared : Prepared or None
        The executed notebook's parts (the student's code); None when the file was not gradable.
    """
    settings = secrets_of(spec)
    host = host_secrets()

    def esc(text: str) -> str:  # the student's own code and names
        return html.escape(redact(str(text), spec.hidden_lines))

    def said(text: str) -> str:  # what the grader, a check or the notebook says
        text = str(text)
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + " […]"
        return html.escape(scrub(redact(text, spec.hidden_lines, settings), host))

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Feedback: {esc(result.tutorial)} — {esc(result.student)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{esc(result.tutorial)}: feedback for {esc(result.student)}</h1>",
        f"<p>File: <code>{esc(result.file)}</code></p>",
        f"<p><strong>Autograded score: {result.score:g} / {result.max_score:g}</strong>",
    ]
    manual_points = sum(result.manual.values())
    if manual_points:
        parts.append(f" (+ up to {manual_points:g} points for the written answers, graded by hand)")
    parts.append("</p>")
    if result.status != "graded":
        message = GRADER_FAILED if result.status == "error" else result.message
        parts.append(f"<p class='fail'>This file could not be graded: {said(message)}. "
                     "Every exercise scores 0; please submit the notebook again.</p>")
    if result.notes:
        parts.append("<h2>About your file</h2><ul>")
        parts += [f"<li class='note'>{said(n.splitlines()[0])}</li>" for n in result.notes[:MAX_NOTES]
                  if n.strip() and not (result.status == "error" and n.startswith("Traceback"))]
        parts.append("</ul>")
    parts.append("<h2>Graded exercises</h2><table><tr><th>Test</th><th>Points</th>"
                 "<th>Verdict</th></tr>")
    for test in spec.tests:
        score = result.scores.get(test.grade_id, 0.0)
        verdict = getattr(result, "shown", {}).get(test.grade_id,
                                                   result.verdicts.get(test.grade_id, "not graded"))
        css = "pass" if score >= test.points and score > 0 else "fail"
        flag = (f"<p class='fail'><strong>{SHORTCUT_FLAG}</strong></p>"
                if test.grade_id in getattr(result, "shortcuts", {}) else "")
        parts.append(
            f"<tr><td>{esc(test.grade_id)}</td><td>{score:g} / {test.points:g}</td>"
            f"<td class='{css}'>{flag}<pre>{said(verdict)}</pre></td></tr>"
        )
    parts.append("</table>")
    if spec.manual:
        parts.append("<h2>Written answers (graded by hand)</h2><ul>")
        for grade_id, points in spec.manual.items():
            parts.append(f"<li>{esc(grade_id)}: up to {points:g} points</li>")
        parts.append("</ul>")
    if prepared is not None and prepared.solutions:
        parts.append("<h2>Your code, as graded</h2>")
        for grade_id, source in prepared.solutions.items():
            if len(source) > MAX_CODE_CHARS:
                source = source[:MAX_CODE_CHARS] + "\n# […] (cut: the cell is too long to show)"
            parts.append(f"<h3>{esc(grade_id)}</h3><pre>{esc(source)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
