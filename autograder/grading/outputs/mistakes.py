"""What the class got wrong: the checks' named mistakes, counted over a tutorial's submissions.

Every check names the common wrong answers it recognises (``Mistake(why, answer)`` in
:mod:`dlnn_helpers.checks._diagnosis`, and a few diagnoses written into a check's message); a
failing test's verdict carries those words.  :func:`tally` groups the failing verdicts of every
exercise test by the mistake they name — the ``why`` of a known :class:`Mistake`, found by reading
the checks' source (:func:`known_mistakes`), or else the verdict itself with its numbers, shapes
and sizes replaced by ``#`` (``(17, 17)`` and ``(12, 12)`` are one mistake) — and counts the
students who made each: ``used Vh instead of V: 12 of 40``.  The report shows it per exercise with
the most common failure message (:func:`section`).
"""

from __future__ import annotations

import ast
import functools
import html
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from courselayout import course_layout

CHECKS = course_layout().student_package / "checks"
_NUMBER = re.compile(r"(?:(?<![A-Za-z_])|(?<=\dx))[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
MAX_ROWS = 8
"""Mistakes shown per exercise (the most frequent)."""


def normalise(message: str) -> str:
    """A verdict with every number replaced by ``#`` and white space collapsed."""
    return re.sub(r"\s+", " ", _NUMBER.sub("#", message)).strip()


def _pattern(node: ast.AST) -> str | None:
    """A regular expression for a ``why`` written as a literal or an f-string, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(normalise(node.value))
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(re.escape(normalise(value.value)))
            else:
                parts.append(".+?")
        return "".join(parts)
    return None


@functools.cache
def known_mistakes(folder: Path = CHECKS) -> tuple[tuple[str, re.Pattern], ...]:
    """Every mistake the checks name: ``(words, pattern)`` read from their source.

    The first argument of each ``Mistake(...)`` call, and the string keys of the dictionaries
    that functions named ``*mistakes*`` return (``{why: wrong answer}``); an f-string matches
    whatever its fields hold.  Words shorter than 12 characters are left out (too vague to match).
    """
    found: dict[str, re.Pattern] = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        candidates: list[ast.AST] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Mistake" and node.args:
                candidates.append(node.args[0])
            if isinstance(node, ast.FunctionDef) and "mistake" in node.name.lower():
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Dict):
                        candidates += [key for key in inner.keys if key is not None]
        for candidate in candidates:
            pattern = _pattern(candidate)
            if pattern is None or len(pattern.replace("\\", "")) < 12:
                continue
            words = re.sub(r"\.\+\?", "…", pattern).replace("\\", "")
            found.setdefault(words, re.compile(pattern))
    return tuple(sorted(found.items(), key=lambda item: -len(item[0])))


def mistakes_in(verdict: str) -> list[str]:
    """The named mistakes a failing verdict holds; its failing lines, normalised, when none is."""
    text = normalise(verdict)
    named = []
    for _words, pattern in known_mistakes():
        match = pattern.search(text)
        if match and not any(match.group(0) in longer for longer in named):
            named.append(match.group(0))
    if named:
        return named
    lines = [normalise(line) for line in verdict.replace(" / ", "\n").splitlines()]
    failing = [line for line in lines if line and " is correct" not in line]
    return failing[:1] or [text]


@dataclass
class Tally:
    """The failures of one exercise test over a tutorial's graded submissions."""

    test: str
    graded: int
    """Graded submissions of the tutorial (the denominator)."""
    failed: int
    """Those that did not get full marks for this test."""
    mistakes: list[tuple[str, int]]
    """``(words, students)``, most frequent first."""
    most_common: tuple[str, int] | None
    """The most common failure message (normalised) and how many students got it."""


def tally(rows: list[dict], maxima: dict[str, float]) -> list[Tally]:
    """Count each named mistake per test over the graded rows of one tutorial.

    Parameters
    ----------
    rows : list of dict
        The tutorial's rows (``status``, ``scores``, ``verdicts``); only graded rows count.
    maxima : dict
        Test -> points.
    """
    graded = [r for r in rows if r.get("status") == "graded"]
    out = []
    for test, points in maxima.items():
        words: Counter[str] = Counter()
        messages: Counter[str] = Counter()
        failed = 0
        for row in graded:
            if float(row.get("scores", {}).get(test, 0.0)) >= points:
                continue
            failed += 1
            verdict = str(row.get("verdicts", {}).get(test, "") or "not graded")
            words.update(set(mistakes_in(verdict)))
            messages[normalise(verdict)] += 1
        out.append(Tally(test, len(graded), failed, words.most_common(),
                         messages.most_common(1)[0] if messages else None))
    return out


def section(rows: list[dict], maxima: dict[str, float]) -> str:
    """The report's "What the class got wrong" table of one tutorial (HTML)."""
    esc = html.escape
    tallies = [t for t in tally(rows, maxima) if t.failed]
    if not tallies:
        return ""
    out = ["<h3>What the class got wrong</h3><p>Per exercise test: how many graded submissions "
           "made each mistake the check names (numbers in messages replaced by #), and the most "
           "common failure message.</p><table><tr><th>Exercise test</th><th>Mistake</th>"
           "<th>Students</th></tr>"]
    for t in tallies:
        shown = t.mistakes[:MAX_ROWS]
        span = len(shown) + 1
        out.append(f"<tr><td rowspan={span}>{esc(t.test)}<br><small>{t.failed} of {t.graded} "
                   "without full marks</small></td>")
        first = True
        for words, count in shown:
            out.append(("" if first else "<tr>") +
                       f"<td>{esc(words)}</td><td>{count} of {t.graded}</td></tr>")
            first = False
        message, count = t.most_common
        out.append(f"<tr><td><em>most common failure message</em>: {esc(message[:600])}</td>"
                   f"<td>{count} of {t.graded}</td></tr>")
    out.append("</table>")
    return "\n".join(out)
