"""Grades back to the learning platform: Canvas's and Moodle's grade import CSV files.

``python -m autograder export -o OUTPUT --roster roster.csv --canvas canvas.csv --moodle
moodle.csv`` writes each student's total per tutorial (autograded + hand-graded + extra credit,
:mod:`~autograder.grading.outputs.handgrades`), through the roster (:mod:`~autograder.grading.inputs.roster`):

**Canvas** (*Grades → Import*): the columns of Canvas's own gradebook export, ``Student``,
``ID`` (the Canvas user id, which Canvas matches on), ``SIS User ID``, ``SIS Login ID``,
``Section``, then one column per tutorial named ``<title> (<assignment id>)`` — the id of the
Canvas assignment, given with ``--canvas-assignment T1_DeepLinearNetworks=12345``; a column
without an id makes Canvas create a new assignment of that title on import.

**Moodle** (*Grades → Import → CSV file*): ``Email address`` and ``ID number`` (map either to
Moodle's ``useremail`` or ``useridnumber`` when importing), ``Full name``, then one column per
tutorial, to map to its grade item.

A student of the roster who submitted nothing has an empty cell (no grade changes on import).
Nothing is exported wrongly: the export stops, naming what to fix, when a graded row has no
student in the roster (or the roster lacks the id the platform matches on), or when written
answers still wait for a hand mark; ``--partial`` exports the rest and lists what it left out
(unmarked answers count 0 then).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from ..inputs.roster import Roster
from .report import csv_cell

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["Email address", "ID number", "Full name"]


class ExportRefused(ValueError):
    """The grades cannot be exported correctly; the message lists what to fix."""


@dataclass
class Totals:
    """What is exported: student -> tutorial -> points, and what was left out."""

    points: dict[str, dict[str, float]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


def totals(rows: list[dict], roster: Roster, tutorials: list[str], partial: bool = False) -> Totals:
    """Each roster student's total per tutorial from the merged rows (``handgrades.merge``).

    Raises
    ------
    ExportRefused
        When a row names no roster student or hand marks are missing (unless ``partial``).
    """
    found = Totals()
    problems = []
    for row in sorted(rows, key=lambda r: (str(r["student"]), str(r["tutorial"]))):
        if row["tutorial"] not in tutorials:
            continue
        if roster.row(row["student"]) is None:
            problems.append(f"{row['student']} ({row['tutorial']}, file {row.get('file', '')}) is "
                            "not in the roster: add the student to the roster (or rename the file "
                            "and grade again)")
            continue
        pending = row.get("hand_grading", "")
        if pending.startswith(("waiting", "again")):
            problems.append(f"{row['student']} ({row['tutorial']}): written answers to mark "
                            f"({pending}): python -m autograder formgrade -o OUTPUT")
            if not partial:
                continue
        found.points.setdefault(row["student"], {})[row["tutorial"]] = float(
            row.get("total", row["score"]))
    if problems and not partial:
        raise ExportRefused("not exported, fix first (or export the rest with --partial):\n  "
                            + "\n  ".join(problems))
    found.left_out = problems
    return found


def _csv(header: list[str], rows: list[list[str]]) -> str:
    stream = io.StringIO(newline="")
    writer = csv.writer(stream)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return stream.getvalue()


def _points(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def canvas_csv(found: Totals, roster: Roster, tutorials: list[str],
               assignment_ids: dict[str, str] | None = None) -> str:
    """Canvas's gradebook import file (see the module's docstring).

    Raises
    ------
    ExportRefused
        When a student with grades has no ``canvas_id`` in the roster (Canvas matches on it)
        and no SIS user id either.
    """
    assignment_ids = assignment_ids or {}
    header = CANVAS_COLUMNS + [f"{t} ({assignment_ids[t]})" if t in assignment_ids else t
                               for t in tutorials]
    missing = [row["student"] for row in roster.rows if row["student"] in found.points
               and not (row.get("canvas_id") or row.get("sis_user_id"))]
    if missing:
        raise ExportRefused("Canvas matches students on their Canvas id or SIS user id; the roster "
                            f"has neither for: {', '.join(missing)} (add a canvas_id column)")
    lines = []
    for row in roster.rows:
        points = found.points.get(row["student"], {})
        lines.append([row.get("name") or row["student"], row.get("canvas_id", ""),
                      row.get("sis_user_id", ""), row.get("sis_login_id", ""),
                      row.get("section", ""), *(_points(points.get(t)) for t in tutorials)])
    return _csv(header, lines)


def moodle_csv(found: Totals, roster: Roster, tutorials: list[str]) -> str:
    """Moodle's grade import file (see the module's docstring).

    Raises
    ------
    ExportRefused
        When a student with grades has neither an e-mail address nor an ID number in the roster.
    """
    missing = [row["student"] for row in roster.rows if row["student"] in found.points
               and not (row.get("email") or row.get("idnumber"))]
    if missing:
        raise ExportRefused("Moodle's import matches students on their e-mail address or ID "
                            f"number; the roster has neither for: {', '.join(missing)}")
    lines = []
    for row in roster.rows:
        points = found.points.get(row["student"], {})
        lines.append([row.get("email", ""), row.get("idnumber", ""),
                      row.get("name") or row["student"], *(_points(points.get(t)) for t in tutorials)])
    return _csv(MOODLE_COLUMNS + list(tutorials), lines)
