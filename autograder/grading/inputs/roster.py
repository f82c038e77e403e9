"""The class roster: who the students are, and how each learning platform names them.

A roster is a CSV file (``--roster roster.csv``) with a header row and one row per student.  Only
``student`` is required; every other column is optional and used where present:

========================  =========================================================================
column                    what it is
========================  =========================================================================
``student``               the id the grader uses (``grades.csv``, the gradebook, feedback folders)
``name``                  the full name (``John Smith`` or ``Smith, John``): matches Canvas's
                          ``smithjohn``, Moodle's ``John Smith``, Classroom's ``John Smith - ...``
``canvas_id``             Canvas's user id (in Canvas's download names; ``ID`` in its gradebook)
``sis_user_id``           Canvas's ``SIS User ID``
``sis_login_id``          Canvas's ``SIS Login ID``
``section``               Canvas's ``Section``
``moodle_participant``    the participant id in Moodle's download names
``email``                 the e-mail address (Moodle's grade import can match on it)
``idnumber``              Moodle's ``ID number`` (its grade import can match on it)
``aliases``               other spellings of the student's name, separated by ``;``
========================  =========================================================================

Matching (:meth:`Roster.match`): an id the file's name carries (Canvas user id, Moodle participant
id) decides when the roster has it; otherwise the name, compared without case, accents, spaces or
punctuation, in either order of given and family names.  A name that two students share is
ambiguous: the file is refused with that reason rather than given to one of them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from .lms_names import Named, name_keys, normalise

COLUMNS = ("student", "name", "canvas_id", "sis_user_id", "sis_login_id", "section",
           "moodle_participant", "email", "idnumber", "aliases")
ID_COLUMNS = ("canvas_id", "moodle_participant")
"""Columns matched against the ids a platform writes into file names."""
MAX_ROSTER_BYTES = 16 * 2**20


@dataclass
class Roster:
    """The students of a class (see the module's docstring for the columns)."""

    rows: list[dict[str, str]]
    source: str = ""
    _by_id: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _by_name: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for number, row in enumerate(self.rows):
            for column in ID_COLUMNS:
                if row.get(column):
                    self._by_id.setdefault(row[column], []).append(number)
            spellings = [row["student"], row.get("name", "")]
            spellings += [a for a in row.get("aliases", "").split(";") if a.strip()]
            keys = set()
            for spelling in spellings:
                keys |= name_keys(spelling) | ({normalise(spelling)} if normalise(spelling) else set())
            for key in keys:
                self._by_name.setdefault(key, []).append(number)

    @classmethod
    def load(cls, path: Path) -> Roster:
        """Read a roster CSV file.

        Raises
        ------
        ValueError
            When the file is not a CSV with a ``student`` column, or two rows share a student id
            or an id of a platform (the reason names the rows).
        FileNotFoundError
            When there is no such file.
        """
        path = Path(path)
        data = path.read_bytes()
        if len(data) > MAX_ROSTER_BYTES:
            raise ValueError(f"the roster {path} is larger than {MAX_ROSTER_BYTES // 2**20} MiB")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError(f"the roster {path} is not UTF-8 text (save it as CSV UTF-8)") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        if "student" not in header:
            raise ValueError(f"the roster {path} has no 'student' column (its columns: "
                             f"{', '.join(header) or 'none'}); see autograder/README.md")
        rows, seen = [], {}
        for number, raw in enumerate(reader, 2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()
                   if isinstance(v, str)}
            row = {k: v for k, v in row.items() if k in COLUMNS}
            if not row.get("student"):
                if any(row.values()):
                    raise ValueError(f"the roster {path}, line {number}: the student id is empty")
                continue
            for column in ("student", *ID_COLUMNS):
                value = row.get(column)
                if value and (column, value) in seen:
                    raise ValueError(f"the roster {path}: lines {seen[column, value]} and {number} "
                                     f"have the same {column} ({value})")
                if value:
                    seen[column, value] = number
            rows.append(row)
        return cls(rows, str(path))

    def match(self, named: Named) -> tuple[str, str]:
        """``(student id, "")`` of the roster's student a file's name names, or ``("", why)``."""
        for value in named.ids:
            found = self._by_id.get(value, [])
            if len(found) == 1:
                return self.rows[found[0]]["student"], ""
        keys = (name_keys(named.student) | {normalise(named.student)}) - {""}
        found = sorted({n for key in keys for n in self._by_name.get(key, [])})
        if len(found) == 1:
            return self.rows[found[0]]["student"], ""
        spelled = named.student or "(no name)"
        if named.ids:
            spelled += f" (id {', '.join(named.ids)})"
        if found:
            return "", (f"the name {spelled} fits several students of the roster "
                        f"({', '.join(self.rows[n]['student'] for n in found)}): add the "
                        "platform's id or an alias to the roster")
        return "", (f"{spelled} matches nobody in the roster: add the student to the roster (or "
                    "an alias), or rename the file <student>_<tutorial>.ipynb")

    def row(self, student: str) -> dict[str, str] | None:
        """The roster's row of a student id, or None."""
        return next((row for row in self.rows if row["student"] == student), None)
