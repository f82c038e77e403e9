"""Hand grades: from nbgrader's gradebook (where the formgrader writes them) into the grades.

The formgrader (``python -m autograder formgrade -o OUTPUT``, :mod:`.formgrade`) writes what the
instructor marks into the output folder's gradebook: a score (``Grade.manual_score``) for each
written answer, optionally a score that overrides an autograded test, extra credit, and a comment
per cell (``Comment.manual_comment``).  :func:`merge` reads them back into the grader's rows;
:func:`apply` then rewrites ``grades.csv`` (autograded, hand-graded and total points per student and
tutorial) and adds the hand marks and comments to each feedback page.  The grader calls
:func:`apply` at the end of every run, and ``python -m autograder grades -o OUTPUT`` calls it alone.

What counts (per student and tutorial):

* ``score`` — the autograded points (as the grader computed them);
* ``manual_score`` — the written answers marked by hand and not waiting for a mark again; empty
  when none is marked yet;
* ``total`` — each autograded test's points (the hand score where the instructor overrode it), plus
  ``manual_score``, plus extra credit;
* ``hand_grading`` — ``done``, ``waiting: <answers>`` (not marked yet) or ``again: <answers>``
  (marked, then the student resubmitted: the answers need a new mark, :func:`mark_resubmitted`).
"""

from __future__ import annotations

import html
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from . import report

AGAIN_NOTE = ("resubmitted after hand marking: the written answers ({answers}) need marking again "
              "(the earlier marks are kept in the formgrader, flagged)")
START, END = "<!-- hand-grading -->", "<!-- /hand-grading -->"
"""Markers of the hand-grading block of a feedback page (a student's text is escaped, so it can
never hold them)."""
_BLOCK = re.compile(re.escape(START) + ".*?" + re.escape(END) + "\n?", re.DOTALL)


@dataclass
class Hand:
    """What the gradebook holds for one submission beyond the autograded scores."""

    answers: dict[str, float | None] = field(default_factory=dict)
    """Written answer -> its hand score (None: not marked)."""
    maxima: dict[str, float] = field(default_factory=dict)
    """Written answer -> its points."""
    waiting: list[str] = field(default_factory=list)
    """Written answers flagged as needing a mark (nbgrader's ``needs_manual_grade``)."""
    overrides: dict[str, float] = field(default_factory=dict)
    """Autograded test -> the score the instructor gave instead."""
    extra_credit: float = 0.0
    comments: dict[str, str] = field(default_factory=dict)
    """Cell -> the instructor's comment."""


def _quiet_gradebook(db_url: str) -> Gradebook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        return Gradebook(db_url)


def read(gradebook: Gradebook, student: str, tutorial: str, tests: set[str]) -> Hand | None:
    """The hand grades of one submission (None when the gradebook has no such submission)."""
    try:
        submission = gradebook.find_submission(tutorial, student)
    except MissingEntry:
        return None
    hand = Hand()
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            hand.extra_credit += float(grade.extra_credit or 0.0)
            if grade.name in tests:
                if grade.manual_score is not None:
                    hand.overrides[grade.name] = float(grade.manual_score)
                continue
            hand.maxima[grade.name] = float(grade.max_score or 0.0)
            hand.answers[grade.name] = (None if grade.manual_score is None
                                        else float(grade.manual_score))
            if grade.needs_manual_grade:
                hand.waiting.append(grade.name)
        for comment in notebook.comments:
            text = (comment.manual_comment or "").strip()
            if text:
                hand.comments[comment.name] = text
    return hand


def summarise(row: dict, hand: Hand | None) -> dict:
    """``row`` with ``manual_score``, ``total``, ``total_max`` and ``hand_grading`` set."""
    row = dict(row)
    row["total_max"] = float(row["max_score"]) + float(row.get("manual_max") or 0.0)
    if hand is None or row.get("status") != "graded":
        row.update(manual_score=None, total=float(row["score"]),
                   hand_grading="" if not row.get("manual_max") else "not gradable")
        return row
    marked = {name: score for name, score in hand.answers.items()
              if score is not None and name not in hand.waiting}
    auto = {test: float(score) for test, score in row["scores"].items()}
    auto.update({test: score for test, score in hand.overrides.items() if test in auto})
    manual = sum(marked.values()) if marked else None
    row.update(manual_score=manual,
               total=sum(auto.values()) + (manual or 0.0) + hand.extra_credit,
               hand_overrides=dict(hand.overrides), extra_credit=hand.extra_credit)
    again = [name for name in hand.waiting if hand.answers.get(name) is not None]
    waiting = [name for name in hand.answers if name not in marked and name not in again]
    if not again:  # marked again since the resubmission: the report's line is no longer true
        row["notes"] = [n for n in row.get("notes", []) if not str(n).startswith(AGAIN_NOTE[:30])]
    if again:
        row["hand_grading"] = "again: " + ", ".join(again)
    elif waiting:
        row["hand_grading"] = "waiting: " + ", ".join(waiting)
    else:
        row["hand_grading"] = "done" if hand.answers else ""
    return row


def merge(rows: list[dict], db_url: str) -> tuple[list[dict], dict[tuple[str, str], Hand]]:
    """Every row with its hand grades from the gradebook (see the module's docstring)."""
    merged, hands = [], {}
    gradebook = _quiet_gradebook(db_url)
    try:
        for row in rows:
            hand = None
            if row.get("tutorial") and row.get("status") == "graded":
                hand = read(gradebook, row["student"], row["tutorial"], set(row.get("scores", {})))
            if hand is not None:
                hands[row["student"], row["tutorial"]] = hand
            merged.append(summarise(row, hand))
    finally:
        gradebook.close()
    return merged, hands


def mark_resubmitted(gradebook: Gradebook, student: str, tutorial: str,
                     answers: list[str]) -> list[str]:
    """Flag the hand-marked written answers of a resubmitted file as needing a mark again.

    Returns the answers flagged (those that had a hand score).  The earlier score is kept, so the
    formgrader shows it, but it no longer counts until the instructor marks the answer again.
    """
    flagged = []
    for name in answers:
        try:
            grade = gradebook.find_grade(name, tutorial, tutorial, student)
        except MissingEntry:
            continue
        if grade.manual_score is not None:
            grade.needs_manual_grade = True
            flagged.append(name)
    return flagged


def feedback_block(row: dict, hand: Hand | None) -> str:
    """The feedback page's section on hand marks and comments (HTML, everything escaped)."""
    if hand is None or not (hand.answers or hand.overrides or hand.comments or hand.extra_credit):
        return ""
    esc = html.escape
    parts = [START, "<h2>Marked by hand</h2><table><tr><th>Answer</th><th>Points</th>"
             "<th>Comment</th></tr>"]
    for name, points in hand.maxima.items():
        score = hand.answers.get(name)
        if name in hand.waiting:
            shown = "not marked yet" if score is None else "to be marked again (you resubmitted)"
        else:
            shown = "not marked yet" if score is None else f"{score:g} / {points:g}"
        parts.append(f"<tr><td>{esc(name)}</td><td>{esc(shown)}</td>"
                     f"<td><pre>{esc(hand.comments.get(name, ''))}</pre></td></tr>")
    for test, score in hand.overrides.items():
        parts.append(f"<tr><td>{esc(test)} (autograded {row['scores'].get(test, 0.0):g}, changed by "
                     f"hand)</td><td>{score:g}</td><td><pre>{esc(hand.comments.get(test, ''))}"
                     "</pre></td></tr>")
    others = {k: v for k, v in hand.comments.items() if k not in hand.maxima and k not in
              hand.overrides}
    for name, text in others.items():
        parts.append(f"<tr><td>{esc(name)}</td><td></td><td><pre>{esc(text)}</pre></td></tr>")
    parts.append("</table>")
    if hand.extra_credit:
        parts.append(f"<p>Extra credit: {hand.extra_credit:g}</p>")
    parts.append(f"<p><strong>Total: {row['total']:g} / {row['total_max']:g}</strong>"
                 + (" (some answers are still to be marked)" if row.get("hand_grading", "done")
                    not in ("done", "") else "") + "</p>")
    parts.append(END)
    return "\n".join(parts)


def with_block(page: str, block: str) -> str:
    """A feedback page with its hand-grading block replaced by ``block`` (or removed)."""
    page = _BLOCK.sub("", page)
    if not block:
        return page
    at = page.rfind("</body>")
    return page[:at] + block + "\n" + page[at:] if at >= 0 else page + block


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "._@+-" else "_" for c in part) or "_"


def apply(output: Path, rows: list[dict], db_url: str) -> list[dict]:
    """Merge the hand grades, write ``grades.csv`` and the feedback pages' hand-marks blocks.

    Returns the merged rows (what ``grades.csv`` holds).
    """
    merged, hands = merge(rows, db_url)
    report.write_grades(merged, output / "grades.csv")
    for row in merged:
        page_file = output / "feedback" / _safe(row["student"]) / f"{_safe(row['tutorial'])}.html"
        if row.get("status") != "graded" or not page_file.is_file() or page_file.is_symlink():
            continue
        page = page_file.read_text(encoding="utf-8")
        updated = with_block(page, feedback_block(row, hands.get((row["student"], row["tutorial"]))))
        if updated != page:
            report.atomic_write(page_file, updated)
    return merged
