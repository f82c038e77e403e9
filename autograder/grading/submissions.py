"""Find the submissions in a folder or a zip file, and who submitted what.

One file per student and tutorial.  Accepted layouts (all at once, mixed):

* ``<student>/<tutorial>/<tutorial>.ipynb`` — nbgrader's ``submitted`` folder;
* ``<student>/<tutorial>.ipynb`` — one folder per student;
* ``<student>_<tutorial>.ipynb`` or ``<tutorial>_<student>.ipynb`` (``-`` or ``.`` work too) — a
  flat folder, e.g. a learning platform's download.

Hidden files, ``__MACOSX`` and ``.ipynb_checkpoints`` folders and a top-level ``README.md`` are not
submissions and are skipped.

The tutorial is recognised by its id in the file name (``T1_DeepLinearNetworks``, possibly with a
suffix such as ``(1)``); the student is the top folder, or what remains of the file name.
Every file of the input becomes one :class:`Submission`, including files that cannot be graded
(they get a zero row with the reason).  When a student submitted the same tutorial more than once,
the latest file (modification time, then name) is graded and the others are listed as replaced.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

UNKNOWN = "unknown"
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".DS_Store"}
IGNORED_FILES = {"README.md", "README.txt"}
"""Not submissions: a description of the folder (the demo class has one)."""


def _ignored(relative: PurePosixPath) -> bool:
    hidden = any(part.startswith(".") for part in relative.parts)
    return hidden or bool(set(relative.parts) & IGNORED_PARTS) or (
        len(relative.parts) == 1 and relative.name in IGNORED_FILES
    )


@dataclass
class Submission:
    """One submitted file."""

    student: str
    tutorial: str
    """A tutorial id, or :data:`UNKNOWN` when the file name names none."""
    name: str
    """Its path inside the input (for the report)."""
    data: bytes
    mtime: float
    problem: str = ""
    """Why it cannot be graded before even opening it (empty when it can be tried)."""
    replaced_by: str = ""


def _clean_student(text: str) -> str:
    text = re.sub(r"[^\w.@+-]+", "_", text).strip("_.-")
    return text


def identify(path: PurePosixPath, tutorials: list[str]) -> tuple[str, str, str]:
    """``(student, tutorial, problem)`` of one file from its path inside the input."""
    parts = [p for p in path.parts if p not in ("", ".")]
    stem = path.stem if path.suffix == ".ipynb" else path.name
    found = [t for t in tutorials if t.lower() in path.as_posix().lower()]
    tutorial = max(found, key=len) if found else UNKNOWN
    folders = [p for p in parts[:-1] if p.lower() != tutorial.lower()]
    if folders:
        student = folders[0]
    else:
        student = re.sub(re.escape(tutorial), "", stem, flags=re.IGNORECASE) if found else stem
        # "(1)" from a browser's re-download, "Copy of" from Colab's "Save a copy in Drive"
        student = re.sub(r"\(\d+\)|(?<![a-z0-9])copy(\s+of)?(?![a-z0-9])", "", student, flags=re.IGNORECASE)
    student = _clean_student(student) or UNKNOWN
    problem = ""
    if path.suffix != ".ipynb":
        problem = f"not a notebook file name ({path.name}): expected <student>/<tutorial>.ipynb"
    elif tutorial == UNKNOWN:
        problem = (f"the file name {path.name} names no tutorial of the course "
                   f"({', '.join(tutorials)})")
    return student, tutorial, problem


def collect(source: Path, tutorials: list[str]) -> list[Submission]:
    """Every file of a folder or a zip archive, identified, latest resubmission marked.

    Parameters
    ----------
    source : Path
        A folder or a ``.zip`` file.
    tutorials : list of str
        The tutorial ids being graded.

    Raises
    ------
    FileNotFoundError
        When ``source`` does not exist.
    ValueError
        When ``source`` is a file but not a readable zip archive.
    """
    if not source.exists():
        raise FileNotFoundError(f"no such folder or zip file: {source}")
    entries: list[tuple[PurePosixPath, bytes, float]] = []
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            relative = PurePosixPath(path.relative_to(source).as_posix())
            if path.is_file() and not _ignored(relative):
                entries.append((relative, path.read_bytes(), path.stat().st_mtime))
    else:
        try:
            archive = zipfile.ZipFile(source)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{source} is neither a folder nor a zip archive: {exc}") from None
        with archive:
            for info in archive.infolist():
                relative = PurePosixPath(info.filename)
                if info.is_dir() or _ignored(relative):
                    continue
                mtime = datetime(*info.date_time).timestamp()
                entries.append((relative, archive.read(info), mtime))
    submissions = []
    for relative, data, mtime in entries:
        student, tutorial, problem = identify(relative, tutorials)
        submissions.append(Submission(student, tutorial, relative.as_posix(), data, mtime, problem))
    latest: dict[tuple[str, str], Submission] = {}
    for sub in sorted(submissions, key=lambda s: (s.mtime, s.name)):
        if sub.tutorial == UNKNOWN:
            continue
        key = (sub.student, sub.tutorial)
        if key in latest:
            latest[key].replaced_by = sub.name
        latest[key] = sub
    return submissions
