"""Per-student HTML feedback, written by the grader (not nbgrader's ``generate_feedback``).

nbgrader's own feedback renders the autograded notebook, hidden tests included (its issue
#1363).  This page shows, for each graded exercise, the points and the verdict of the check (what
is wrong and how to find it), the student's own code, and the problems found in the file; the
source of the tests never appears, and any line of a hidden test that a notebook managed to echo
into a message is blanked out.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .notebook import Prepared
    from .spec import TutorialSpec
    from .worker import Result

REDACTED = "[hidden test]"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #ccc; padding: .4rem .6rem; vertical-align: top; text-align: left; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: .5rem; margin: 0; }
.pass { color: #176f2c; } .fail { color: #a4161a; } .note { color: #7a5b00; }
"""


def redact(text: str, hidden_lines: list[str]) -> str:
    """Blank out every line of hidden test code found in ``text``."""
    for line in hidden_lines:
        if line in text:
            text = text.replace(line, REDACTED)
    return text


def render(result: Result, spec: TutorialSpec, prepared: Prepared | None) -> str:
    """The feedback page of one submission.

    Parameters
    ----------
    result : Result
        The graded (or rejected) submission.
    spec : TutorialSpec
        Its tutorial.
    prepared : Prepared or None
        The executed notebook's parts (the student's code); None when the file was not gradable.
    """
    def esc(text: str) -> str:
        return html.escape(redact(str(text), spec.hidden_lines))

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
        parts.append(f"<p class='fail'>This file could not be graded: {esc(result.message)}. "
                     "Every exercise scores 0; please submit the notebook again.</p>")
    if result.notes:
        parts.append("<h2>About your file</h2><ul>")
        parts += [f"<li class='note'>{esc(n.splitlines()[0])}</li>" for n in result.notes]
        parts.append("</ul>")
    parts.append("<h2>Graded exercises</h2><table><tr><th>Test</th><th>Points</th>"
                 "<th>Verdict</th></tr>")
    for test in spec.tests:
        score = result.scores.get(test.grade_id, 0.0)
        verdict = result.verdicts.get(test.grade_id, "not graded")
        css = "pass" if score >= test.points and score > 0 else "fail"
        parts.append(
            f"<tr><td>{esc(test.grade_id)}</td><td>{score:g} / {test.points:g}</td>"
            f"<td class='{css}'><pre>{esc(verdict)}</pre></td></tr>"
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
            parts.append(f"<h3>{esc(grade_id)}</h3><pre>{esc(source)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
