"""Find the submissions in a folder or a zip file, and who submitted what.

One file per student and tutorial.  Accepted layouts (all at once, mixed):

* ``<student>/<tutorial>/<tutorial>.ipynb`` — nbgrader's ``submitted`` folder;
* ``<student>/<tutorial>.ipynb`` — one folder per student;
* ``<student>_<tutorial>.ipynb`` or ``<tutorial>_<student>.ipynb`` (``-`` or ``.`` work too) — a
  flat folder;
* the downloads of Canvas, Moodle (flat or in folders), Google Classroom/Drive and Colab, with their
  ids, late markers, resubmission counters and ``Copy of`` (:mod:`~autograder.grading.inputs.lms_names`
  gives the conventions), and any of these inside wrapping folders (``T1 submissions/...``).

Hidden files, ``__MACOSX`` and ``.ipynb_checkpoints`` folders and a top-level ``README.md`` are not
submissions and are skipped.

The tutorial is recognised by its id in the file name (``T1_DeepLinearNetworks``, possibly with a
suffix such as ``(1)`` or ``-1``); the student is the first folder that names someone, or what
the platform's convention says the file name holds.  With a roster
(:class:`~autograder.grading.inputs.roster.Roster`) the platform's name or id is mapped to the student's
id.  Every file of the input becomes one :class:`Submission`, including files that cannot be
graded (they get a zero row with the reason) and files that name no student (of the roster): those
are listed under an id of their own (``unknown-<hash>``) with the reason, never dropped and never
counted as anyone's resubmission.  When a student submitted the same tutorial more than once, the
latest file (modification time, then the name's resubmission counter, then name) is graded and the
others are listed as replaced.

Nothing in the input can stop the run or make the grader read what it should not (every limit is
in :class:`Limits`):

* only regular files are read: symbolic links (to files or folders), FIFOs, sockets and devices
  are never opened or followed; a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with
  ``fstat`` before a byte is read, and never more than its size limit is read;
* a zip archive is streamed with :mod:`zipfile`: the declared size of each entry and of all
  entries together, the number of entries and the length of names are checked *before* inflating,
  and inflating stops at the limit whatever the header claims;
* a student id is a short, safe folder name: names that clean to the same id (``ann marie`` and
  ``ann_marie``) or are too long get a distinct id with a short hash of the original name;
* a notebook whose JSON is nested absurdly deep, or whose nbgrader metadata has the wrong types (a
  list as ``grade_id``), is rejected with its reason before it reaches a worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from .lms_names import Named, name_of, wrapper_depth
from .roster import Roster

UNKNOWN = "unknown"
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".DS_Store"}
IGNORED_FILES = {"README.md", "README.txt"}
"""Not submissions: a description of the folder (the demo class has one)."""
MAX_STUDENT_CHARS = 64
"""A student id longer than this is cut and given a hash of the full name."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of a notebook's JSON accepted (a real notebook is about 8 levels deep)."""
_CHUNK = 2**20


@dataclass(frozen=True)
class Limits:
    """What reading the input may cost at most.

    Attributes
    ----------
    file_bytes : int
        Largest file (or zip entry, inflated) that is read; a larger one is a rejected row.
    total_bytes : int
        All files together; files beyond are rejected rows.
    entries : int
        Files (or zip entries) looked at; one row reports the rest.
    name_chars : int
        Longest path of a file inside the input.
    """

    file_bytes: int = 100 * 2**20
    total_bytes: int = 8 * 2**30
    entries: int = 20_000
    name_chars: int = 4096


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
    raw_student: str = ""
    """The student's name as the input spells it (before cleaning), with the platform's ids."""
    late: bool = False
    """The name carries a late marker (Canvas's ``LATE``)."""
    attempt: int = 0
    """The resubmission counter in the name (Canvas's ``-1``, a download's ``(1)``)."""
    lms: str = ""
    """The naming convention the name was read in (:class:`~.lms_names.Named`)."""
    lms_name: str = ""
    """The student's name as the platform wrote it (``smithjohn``), before the roster."""


def _clean_student(text: str) -> str:
    text = re.sub(r"[^\w.@+-]+", "_", text).strip("_.-")
    return text


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _bounded_id(clean: str, raw: str) -> str:
    if len(clean) <= MAX_STUDENT_CHARS:
        return clean
    return f"{clean[:MAX_STUDENT_CHARS - 9].rstrip('_.-')}-{_short_hash(raw)}"


def _tutorial_of(path: PurePosixPath, tutorials: list[str]) -> str:
    found = [t for t in tutorials if t.lower() in path.as_posix().lower()]
    return max(found, key=len) if found else UNKNOWN


def _named(path: PurePosixPath, tutorial: str) -> Named:
    return name_of(path, tutorial if tutorial != UNKNOWN else "")


def identify(path: PurePosixPath, tutorials: list[str]) -> tuple[str, str, str]:
    """``(student, tutorial, problem)`` of one file from its path inside the input.

    The student id is safe as a folder name and at most :data:`MAX_STUDENT_CHARS` long; a path
    that names no student gives :data:`UNKNOWN` (:func:`collect` lists such a file as
    unidentified).  The student is read as :func:`~autograder.grading.inputs.lms_names.name_of` says.
    """
    tutorial = _tutorial_of(path, tutorials)
    raw = _named(path, tutorial).student
    student = _bounded_id(_clean_student(raw), raw) or UNKNOWN
    problem = ""
    if path.suffix != ".ipynb":
        problem = f"not a notebook file name ({path.name}): expected <student>/<tutorial>.ipynb"
    elif tutorial == UNKNOWN:
        problem = (f"the file name {path.name} names no tutorial of the course "
                   f"({', '.join(tutorials)})")
    return student, tutorial, problem


def _depth(value: object) -> int:
    """Deepest nesting of a JSON value (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


_NBGRADER_TYPES = {"grade_id": (str,), "solution": (bool,), "grade": (bool,), "locked": (bool,),
                   "task": (bool,), "points": (int, float), "schema_version": (int,)}


def screen(data: bytes) -> str:
    """Why a notebook's bytes cannot be graded safely, or ``""`` (the worker checks the rest).

    Catches what would otherwise fail *inside* the grader rather than be rejected with a reason:
    JSON nested deeper than :data:`MAX_JSON_DEPTH`, and nbgrader metadata of the wrong type (a list
    or a dict as ``grade_id``, a string as ``points``).  Files that are not JSON at all pass here
    and are rejected by the worker with their own reason.
    """
    try:
        raw = json.loads(data)
    except RecursionError:
        return f"the notebook's JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels)"
    except (ValueError, TypeError):
        return ""  # not JSON, not UTF-8: the worker says which
    depth = _depth(raw)
    if depth > MAX_JSON_DEPTH:
        return f"the notebook's JSON is nested {depth} levels deep (at most {MAX_JSON_DEPTH})"
    cells = raw.get("cells") if isinstance(raw, dict) else None
    if not isinstance(cells, list):
        return ""
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            continue
        if "id" in cell and not isinstance(cell["id"], str):
            return f"cell {number} has an id that is not text"
        metadata = cell.get("metadata", {})
        if not isinstance(metadata, dict):
            return f"cell {number} has metadata that is not a dictionary"
        nbgrader = metadata.get("nbgrader")
        if nbgrader is None:
            continue
        if not isinstance(nbgrader, dict):
            return f"cell {number} has nbgrader metadata that is not a dictionary"
        for key, types in _NBGRADER_TYPES.items():
            value = nbgrader.get(key)
            if value is not None and (type(value) not in types
                                      or (key == "grade_id" and not 0 < len(value) <= 200)):
                return (f"cell {number} has malformed nbgrader metadata: {key} is "
                        f"{type(value).__name__}" + (" (must be text of 1 to 200 characters)"
                                                     if key == "grade_id" else ""))
    return ""


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class _Budget:
    """Counts what has been read against :class:`Limits`."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.total = 0
        self.entries = 0

    def refuse(self, size: int) -> str:
        """The reason a file of ``size`` bytes may not be read, or ``""`` (then it is counted)."""
        if size > self.limits.file_bytes:
            return (f"the file is {_size(size)}, larger than the {_size(self.limits.file_bytes)} "
                    "limit: not read")
        if self.total + size > self.limits.total_bytes:
            return (f"the input holds more than {_size(self.limits.total_bytes)} of files in all: "
                    "not read")
        self.total += size
        return ""


def _read_regular(dir_fd: int, name: str, budget: _Budget) -> tuple[bytes, float, str]:
    """``(data, mtime, problem)`` of one directory entry, never following or blocking."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY,
                     dir_fd=dir_fd)
    except OSError as exc:
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return b"", 0.0, f"the file could not be opened ({exc.strerror})"
        if not stat.S_ISREG(info.st_mode):
            return b"", info.st_mtime, f"{_kind(info.st_mode)}, not a file: not read"
        return b"", info.st_mtime, f"the file could not be opened ({exc.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b"", info.st_mtime, f"{_kind(info.st_mode)}, not a file: not read"
        refused = budget.refuse(info.st_size)
        if refused:
            return b"", info.st_mtime, refused
        chunks, size = [], 0
        while size <= info.st_size:  # a file that grows while read stops at its fstat size + 1
            chunk = os.read(fd, min(_CHUNK, info.st_size + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > info.st_size:
            return b"", info.st_mtime, "the file changed while it was read: not read"
        return b"".join(chunks), info.st_mtime, ""
    except OSError as exc:
        return b"", 0.0, f"the file could not be read ({exc.strerror})"
    finally:
        os.close(fd)


def _walk_folder(source: Path, budget: _Budget) -> list[tuple[PurePosixPath, bytes, float, str]]:
    entries = []

    def unreadable(error: OSError) -> None:
        where = Path(error.filename or source)
        relative = PurePosixPath(where.relative_to(source).as_posix()) if where.is_relative_to(
            source) else PurePosixPath(where.name)
        entries.append((relative, b"", 0.0, f"the folder could not be read ({error.strerror})"))

    for root, dirs, files, root_fd in os.fwalk(source, follow_symlinks=False, onerror=unreadable):
        relative_root = PurePosixPath(Path(root).relative_to(source).as_posix())
        dirs.sort()
        for name in list(dirs):  # fwalk lists links to folders with the folders: never enter them
            try:
                info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                dirs.remove(name)
                continue
            relative = relative_root / name
            if not stat.S_ISDIR(info.st_mode):
                dirs.remove(name)
                if not _ignored(relative):
                    files.append(name)
            elif _ignored(relative):
                dirs.remove(name)
        for name in sorted(files):
            relative = relative_root / name
            if _ignored(relative):
                continue
            budget.entries += 1
            if budget.entries > budget.limits.entries:
                dirs.clear()
                return entries
            if len(relative.as_posix()) > budget.limits.name_chars:
                entries.append((relative, b"", 0.0, "the file's path is too long: not read"))
                continue
            entries.append((relative, *_read_regular(root_fd, name, budget)))
    return entries


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> tuple[bytes, str]:
    if stat.S_ISLNK(info.external_attr >> 16):
        return b"", "a symbolic link, not a file: not read"
    refused = budget.refuse(info.file_size)
    if refused:
        return b"", refused
    chunks, size = [], 0
    try:
        with archive.open(info) as stream:
            while True:  # zipfile stops at the declared size; this stops at the limit anyway
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > min(info.file_size, budget.limits.file_bytes):
                    return b"", "the entry inflates to more than its declared size: not read"
                chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001 - encrypted, damaged (zlib.error), unknown compression
        return b"", f"the zip entry could not be read ({type(exc).__name__}: {exc})"
    return b"".join(chunks), ""


def _walk_zip(source: Path, budget: _Budget) -> list[tuple[PurePosixPath, bytes, float, str]]:
    fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise ValueError(f"{source} is neither a folder nor a zip archive")
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ValueError(f"{source} is neither a folder nor a zip archive: {exc}") from None
        entries = []
        with archive:
            for info in archive.infolist():
                name = info.filename.replace("\\", "/")
                relative = PurePosixPath(name)
                if info.is_dir() or _ignored(relative):
                    continue
                budget.entries += 1
                if budget.entries > budget.limits.entries:
                    break
                try:
                    mtime = datetime(*info.date_time).timestamp()
                except (ValueError, OverflowError):
                    mtime = 0.0
                if len(name) > budget.limits.name_chars:
                    entries.append((PurePosixPath(name[:200] + "…"), b"", mtime,
                                    f"the entry's name is {len(name)} characters long: not read"))
                    continue
                data, problem = _read_entry(archive, info, budget)
                entries.append((relative, data, mtime, problem))
    return entries


def _distinct_students(submissions: list[Submission]) -> None:
    """Give students whose different names clean to the same id (``ann marie``, ``ann_marie``;
    ``Ann`` and ``ann`` too, which are one folder on a case-insensitive disk) distinct ids: a name
    that is already clean keeps its id, the others get a hash of their name."""
    spellings: dict[str, set[str]] = {}
    for sub in submissions:
        spellings.setdefault(sub.student.casefold(), set()).add(sub.raw_student)
    for key, raws in spellings.items():
        if len(raws) < 2:
            continue
        members = [sub for sub in submissions if sub.student.casefold() == key]
        clean = sorted(sub.raw_student for sub in members if sub.raw_student == sub.student)
        keeper = min(clean, key=lambda raw: (raw != key, raw)) if clean else min(raws)
        for sub in members:
            if sub.raw_student != keeper:
                base = sub.student[:MAX_STUDENT_CHARS - 9].rstrip("_.-") or UNKNOWN
                sub.student = f"{base}-{_short_hash(sub.raw_student)}"


def collect(source: Path, tutorials: list[str], limits: Limits | None = None,
            roster: Roster | None = None) -> list[Submission]:
    """Every file of a folder or a zip archive, identified, latest resubmission marked.

    Parameters
    ----------
    source : Path
        A folder or a ``.zip`` file.
    tutorials : list of str
        The tutorial ids being graded.
    limits : Limits, optional
        What reading the input may cost (default: :class:`Limits`).
    roster : Roster, optional
        The class; a file is then the roster student its name names, and a file that names
        nobody of the roster is refused with the reason (listed, never dropped).

    Returns
    -------
    list of Submission
        One per file; a file that could not be read, is not safe to grade, or names no student
        (of the roster) has its ``problem`` set.

    Raises
    ------
    FileNotFoundError
        When ``source`` does not exist.
    ValueError
        When ``source`` is a file but not a readable zip archive.
    """
    budget = _Budget(limits or Limits())
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"no such folder or zip file: {source}")
    if source.is_dir():
        entries = _walk_folder(source.resolve(), budget)
    else:
        entries = _walk_zip(source, budget)
    # A name that is not UTF-8 (bytes a folder may hold) is shown with replacement characters.
    entries = [(PurePosixPath(relative.as_posix().encode("utf-8", "surrogateescape")
                              .decode("utf-8", "replace")), data, mtime, problem)
               for relative, data, mtime, problem in entries]
    tutorial_of = {relative: _tutorial_of(relative, tutorials) for relative, *_ in entries}
    depth = wrapper_depth([relative for relative, *_ in entries],
                          {p: ("" if t == UNKNOWN else t) for p, t in tutorial_of.items()})
    submissions = []
    for relative, data, mtime, problem in entries:
        inner = PurePosixPath(*relative.parts[depth:]) if depth else relative
        student, tutorial, name_problem = identify(inner, tutorials)
        named = _named(inner, tutorial)
        raw = named.student + (f" [{' '.join(named.ids)}]" if named.ids else "")
        problem = problem or name_problem
        if roster is not None and tutorial != UNKNOWN and inner.suffix == ".ipynb" and (
                student != UNKNOWN or named.ids):
            matched, why = roster.match(named)
            if matched:
                student = raw = _bounded_id(_clean_student(matched), matched) or UNKNOWN
            else:
                problem = problem or why
        elif student == UNKNOWN and tutorial != UNKNOWN:
            problem = problem or (
                f"the file name {relative.name} names no student (e.g. a Drive folder's 'Copy of "
                "...'): rename it <student>_<tutorial>.ipynb or put it in a folder named after "
                "the student")
        if problem and tutorial != UNKNOWN and (student == UNKNOWN or (
                roster is not None and not roster.row(student))):
            # listed under an id of its own: an unidentified file never replaces another
            student = f"{UNKNOWN}-{_short_hash(relative.as_posix())}"
            raw = student
        if not problem:
            problem = screen(data)
        submissions.append(Submission(student, tutorial, relative.as_posix(), data, mtime, problem,
                                      raw_student=raw, late=named.late, attempt=named.attempt,
                                      lms=named.lms, lms_name=named.student))
    if budget.entries > budget.limits.entries:
        submissions.append(Submission(
            UNKNOWN, UNKNOWN, "(the remaining files)", b"", 0.0,
            f"the input holds more than {budget.limits.entries} files: the rest were not read",
        ))
    _distinct_students(submissions)
    latest: dict[tuple[str, str], Submission] = {}
    # A file that can be tried always wins over one that cannot (a link, a FIFO, too large);
    # then the newer file, then the higher resubmission counter (Canvas's -1, a download's (1)).
    for sub in sorted(submissions, key=lambda s: (not s.problem, s.mtime, s.attempt, s.name)):
        if sub.tutorial == UNKNOWN:
            continue
        key = (sub.student, sub.tutorial)
        if key in latest:
            latest[key].replaced_by = sub.name
        latest[key] = sub
    return submissions
