"""Who submitted a file, from the name a learning platform's download gave it.

A class download is a folder or a zip; every file's path inside it is read here (its bytes are
read by :mod:`~autograder.grading.inputs.submissions`).  The conventions assumed, one per platform (from
each platform's documentation and its downloads as instructors get them; a name that fits none is
read as a plain ``<student>_<tutorial>.ipynb``):

**Canvas** (*Assignments → Download Submissions*): a flat zip, one file per uploaded file, named
``<name>_<user id>_<submission id>_<file as uploaded>``; ``<name>`` is the student's sortable name
in lower case without spaces or punctuation (``smithjohn`` for John Smith); a late submission has
``LATE`` after the name (``smithjohn_LATE_12345_67890_...``); Canvas renames a file uploaded again
under the same name with a counter, ``T1_DeepLinearNetworks-1.ipynb``.  The user id (the
``canvas_id`` of a roster) identifies the student; the submission id does not.

**Moodle** (*View all submissions → Download all submissions*): one entry per file, named
``<full name>_<participant id>_assignsubmission_file_<file as uploaded>``, or, with *Download
submissions in folders*, the folder ``<full name>_<participant id>_assignsubmission_file_/``
holding the files under their own names.  Moodle writes ``_`` in a name as a space; the participant
id is the assignment's own number for the student (the ``moodle_participant`` of a roster), also
under blind marking, where the name is ``Participant``.

**Google Classroom / Drive**: a Classroom assignment's Drive folder holds ``<Full Name> - <file>``
for every "make a copy for each student" file; files a student attached keep their own names.  A
Drive download of a folder is a zip wrapped in ``<folder>-<YYYYMMDD>T<HHMMSS>Z-<NNN>/``; two files
of one name become ``<file> (1).ipynb``.

**Colab** (*File → Save a copy in Drive*): ``Copy of <file>``; a browser's second download of one
name: ``<file> (1).ipynb``.

**Wrapping folders** (``T1 submissions/<student>/T1_DeepLinearNetworks.ipynb``, a Drive zip's
folder, a folder the instructor unzipped into): a folder that holds the whole input and, below it,
the files of at least two different students is not a student; it is left out
(:func:`wrapper_depth`).

What the name says beyond the student (:class:`Named`): the ids it carries, a late marker, and a
resubmission counter (``-1``, ``(2)``), which orders two files of one student when their times are
equal.  A file whose name names nobody (``Copy of T1_DeepLinearNetworks (1).ipynb`` from a Drive
folder) gets an empty :attr:`Named.student`: the caller lists it as unidentified, never drops it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

DRIVE_ZIP_FOLDER = re.compile(r"-\d{8}T\d{6}Z-\d{3}$")
"""The suffix of the folder a Google Drive zip download wraps its files in."""
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+_(?P<rest>.*)$",
                    re.IGNORECASE)
CANVAS = re.compile(r"^(?P<name>[^_\s]+)_(?:(?P<late>late)_)?(?P<id>\d+)_(?P<submission>\d+)_"
                    r"(?P<rest>.+)$", re.IGNORECASE)
CLASSROOM = re.compile(r"^(?P<name>.+?)\s+-\s+(?P<rest>.+)$")
_COPY = re.compile(r"(?<![a-z0-9])copy(\s+of)?(?![a-z0-9])", re.IGNORECASE)
_LATE = re.compile(r"(?<![a-z0-9])late(?![a-z0-9])", re.IGNORECASE)
_COUNTER = re.compile(r"\((\d+)\)")
_SEPARATORS = " \t_.-"


@dataclass(frozen=True)
class Named:
    """What a file's path says about who submitted it.

    Attributes
    ----------
    student : str
        The student's name as the download spells it (``smithjohn``, ``John Smith``, ``ada``);
        empty when the path names nobody.
    ids : tuple of str
        Ids the platform put in the name (Canvas user id, Moodle participant id).
    lms : str
        The naming convention recognised: ``canvas``, ``moodle``, ``classroom`` or ``plain``.
    late : bool
        The name carries a late marker (Canvas's ``LATE``, or a ``late`` word).
    attempt : int
        The resubmission counter in the name (``-1``, ``(2)``); 0 when there is none.
    """

    student: str
    ids: tuple[str, ...] = ()
    lms: str = "plain"
    late: bool = False
    attempt: int = 0


def _strip_tutorial(text: str, tutorial: str) -> tuple[str, int]:
    """``text`` without the tutorial id, and the counter written right after it (``-1``, ``(1)``)."""
    if not tutorial:
        return text, 0
    attempt = 0
    match = re.search(re.escape(tutorial) + r"(?:-(\d{1,3})(?!\d))?", text, re.IGNORECASE)
    if match:
        attempt = int(match.group(1) or 0)
        text = text[:match.start()] + " " + text[match.end():]
    counter = _COUNTER.search(text)
    if counter:
        attempt = max(attempt, int(counter.group(1)))
    return text, attempt


def _plain(text: str, tutorial: str) -> tuple[str, bool, int]:
    """``(student, late, attempt)`` of a name in no platform's shape."""
    text, attempt = _strip_tutorial(text, tutorial)
    late = bool(_LATE.search(text))
    text = _COPY.sub(" ", _LATE.sub(" ", _COUNTER.sub(" ", text))).strip(_SEPARATORS)
    if re.fullmatch(r"\d{1,3}", text):  # a counter left alone (T1_DeepLinearNetworks_2)
        attempt, text = max(attempt, int(text)), ""
    return text, late, attempt


def parse_text(text: str, tutorial: str) -> Named:
    """Read one folder name or file stem (without ``.ipynb``) in every platform's shape."""
    moodle = MOODLE.match(text)
    if moodle:
        _, attempt = _strip_tutorial(moodle["rest"], tutorial)
        return Named(moodle["name"].strip(), (moodle["id"],), "moodle", False, attempt)
    canvas = CANVAS.match(text)
    if canvas and (not tutorial or tutorial.lower() in canvas["rest"].lower()):
        _, attempt = _strip_tutorial(canvas["rest"], tutorial)
        return Named(canvas["name"], (canvas["id"],), "canvas", bool(canvas["late"]), attempt)
    classroom = CLASSROOM.match(text)
    if classroom and tutorial and tutorial.lower() in classroom["rest"].lower() \
            and tutorial.lower() not in classroom["name"].lower():
        _, late, attempt = _plain(classroom["rest"], tutorial)
        name = classroom["name"].strip(_SEPARATORS)
        if name and not _COPY.fullmatch(name):
            return Named(name, (), "classroom", late, attempt)
    student, late, attempt = _plain(text, tutorial)
    return Named(student, (), "plain", late, attempt)


def _folder_student(folder: str, tutorial: str) -> Named | None:
    """The student a folder names, or None when it names nobody (a tutorial's or Drive's folder)."""
    folder = DRIVE_ZIP_FOLDER.sub("", folder)
    if MOODLE.match(folder):  # Moodle's "download in folders": the name ends with "_file_"
        return parse_text(folder, tutorial)
    if tutorial and tutorial.lower() in folder.lower():
        student, _, _ = _plain(folder, tutorial)
        return Named(student) if student else None
    student = folder.strip(_SEPARATORS)
    return Named(student) if student else None


def name_of(path: PurePosixPath, tutorial: str) -> Named:
    """Who submitted the file at ``path`` (relative to the input, wrapping folders left out).

    The first folder that names someone is the student (nbgrader's ``<student>/<tutorial>/``,
    Moodle's folders, one folder per student); the file's own name when no folder does.  The
    counter and late marker come from the file's name either way.
    """
    parts = [p for p in path.parts if p not in ("", ".", "..", "/")]
    stem = path.stem if path.suffix == ".ipynb" else path.name
    from_file = parse_text(stem, tutorial)
    for folder in parts[:-1]:
        named = _folder_student(folder, tutorial)
        if named is not None:
            return Named(named.student, named.ids, named.lms if named.lms != "plain" else "folder",
                         from_file.late or named.late, from_file.attempt)
    return from_file


def wrapper_depth(paths: list[PurePosixPath], tutorial_of: dict[PurePosixPath, str]) -> int:
    """How many leading folders hold the whole input and are no student (``T1 submissions/``).

    A folder common to every path is a wrapper when the paths below it name at least two
    different students; a single student's folder (``ada/T1_….ipynb``, ``ada/T2_….ipynb``) is not.

    Parameters
    ----------
    paths : list of PurePosixPath
        Every file of the input, relative to it.
    tutorial_of : dict
        Path -> the tutorial its name names (``""`` when none).
    """
    depth = 0
    while paths and all(len(p.parts) > depth + 1 for p in paths) and \
            len({p.parts[depth] for p in paths}) == 1:
        below = set()
        for path in paths:
            tutorial = tutorial_of.get(path, "")
            if not tutorial or path.suffix != ".ipynb":
                continue
            named = name_of(PurePosixPath(*path.parts[depth + 1:]), tutorial)
            if named.student:
                below.add(normalise(named.student))
        if len(below) < 2:
            break
        depth += 1
    return depth


def normalise(name: str) -> str:
    """A name reduced for comparison: accents, case, spaces and punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed.casefold() if c.isalnum())


def name_keys(name: str) -> set[str]:
    """Every form a platform may write a person's name in, normalised: ``John Smith`` gives
    ``johnsmith`` and ``smithjohn`` (Canvas's sortable name), ``Smith, John`` the same two."""
    tokens = [normalise(t) for t in re.split(r"[\s,_.-]+", name) if normalise(t)]
    if not tokens:
        return set()
    if "," in name:  # "Smith, John": the family name first
        head, _, tail = name.partition(",")
        tokens = [normalise(t) for t in re.split(r"[\s_.-]+", tail.strip()) if normalise(t)] + \
                 [normalise(t) for t in re.split(r"[\s_.-]+", head.strip()) if normalise(t)]
    keys = {"".join(tokens), "".join(reversed(tokens))}
    if len(tokens) > 2:  # family name last or first, given names in order
        keys |= {tokens[-1] + "".join(tokens[:-1]), "".join(tokens[1:]) + tokens[0]}
    return keys
