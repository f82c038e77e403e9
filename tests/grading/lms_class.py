"""A small class written the way each learning platform's download names it (not a test module).

:data:`STUDENTS` are the roster; :func:`write` writes one submission per student of
tutorial 1 in the shape of one platform (:data:`SHAPES`), as a folder or a zip, with the
oddities each platform adds: Canvas's ids, ``LATE`` marker and ``-1`` resubmission counter,
Moodle's participant folders, a Google Drive zip's wrapping folder and ``Copy of``, Colab's
``Copy of`` in a folder an instructor made.  Each shape also holds one file that names nobody
(it must be listed, never dropped).
"""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

T1 = "T1_DeepLinearNetworks"


@dataclass(frozen=True)
class Student:
    student: str
    name: str
    canvas_id: str
    moodle_participant: str
    email: str
    idnumber: str
    section: str = "Tutorial group A"

    @property
    def sortable(self) -> str:
        """Canvas's file-name spelling: family name then given name, lower case, no spaces."""
        given, family = self.name.rsplit(" ", 1)
        return (family + given).lower().replace(" ", "").replace("é", "e")


STUDENTS = [
    Student("ada", "Ada Lovelace", "11001", "500101", "ada@uni.example", "S001"),
    Student("ben", "Ben Okafor", "11002", "500102", "ben@uni.example", "S002"),
    Student("chloe", "Chloé Dubois", "11003", "500103", "chloe@uni.example", "S003"),
    Student("dmitri", "Dmitri Ivanov", "11004", "500104", "dmitri@uni.example", "S004"),
]
STRAY = "stray"
"""The key of the file in each shape that names nobody."""


def write_roster(path: Path, students: list[Student] = STUDENTS) -> Path:
    """The roster CSV of the class."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "name", "canvas_id", "sis_user_id", "section",
                         "moodle_participant", "email", "idnumber"])
        for s in students:
            writer.writerow([s.student, s.name, s.canvas_id, s.idnumber, s.section,
                             s.moodle_participant, s.email, s.idnumber])
    return path


def canvas(s: Student) -> list[tuple[str, str]]:
    """(name, version) of each file: ben resubmitted late, Canvas added -1 to the new file."""
    if s.student == "ben":
        return [(f"{s.sortable}_{s.canvas_id}_70001_{T1}.ipynb", "old"),
                (f"{s.sortable}_LATE_{s.canvas_id}_70002_{T1}-1.ipynb", "new")]
    return [(f"{s.sortable}_{s.canvas_id}_7{s.canvas_id[-3:]}_{T1}.ipynb", "new")]


def moodle_folders(s: Student) -> list[tuple[str, str]]:
    return [(f"{s.name}_{s.moodle_participant}_assignsubmission_file_/{T1}.ipynb", "new")]


def moodle_flat(s: Student) -> list[tuple[str, str]]:
    return [(f"{s.name}_{s.moodle_participant}_assignsubmission_file_{T1}.ipynb", "new")]


def classroom(s: Student) -> list[tuple[str, str]]:
    """A Drive zip of the Classroom folder: wrapped, every file a 'Copy of' the template."""
    folder = f"{T1}-20241105T101500Z-001/{T1}"
    if s.student == "chloe":  # a second copy: Drive numbered it
        return [(f"{folder}/{s.name} - Copy of {T1}.ipynb", "old"),
                (f"{folder}/{s.name} - Copy of {T1} (1).ipynb", "new")]
    return [(f"{folder}/{s.name} - Copy of {T1}.ipynb", "new")]


def colab_folders(s: Student) -> list[tuple[str, str]]:
    """An instructor's folder per student (roster ids), files saved by Colab as 'Copy of'."""
    return [(f"T1 submissions/{s.student}/Copy of {T1}.ipynb", "new")]


SHAPES: dict[str, tuple[Callable[[Student], list[tuple[str, str]]], str]] = {
    "canvas": (canvas, f"{T1}.ipynb"),
    "moodle-folders": (moodle_folders, f"Nobody Known_599999_assignsubmission_file_/{T1}.ipynb"),
    "moodle-flat": (moodle_flat, f"Nobody Known_599999_assignsubmission_file_{T1}.ipynb"),
    "classroom": (classroom, f"{T1}-20241105T101500Z-001/{T1}/Copy of {T1} (2).ipynb"),
    "colab-folders": (colab_folders, f"T1 submissions/Copy of {T1}.ipynb"),
}
"""Shape -> (the files of one student, the file that names nobody)."""


def write(target: Path, shape: str, content: Callable[[Student, str], bytes],
          as_zip: bool) -> dict[str, str]:
    """Write every student's files (and the stray one) in ``shape``; return file -> student key.

    ``content(student, version)`` gives a file's bytes; the ``new`` version is the later file
    (modification time or zip time), so it must be the one graded.
    """
    names, stray = SHAPES[shape]
    files: dict[str, tuple[bytes, float, str]] = {}
    for s in STUDENTS:
        for name, version in names(s):
            files[name] = (content(s, version), 1.7e9 + (100 if version == "new" else 0), s.student)
    files[stray] = (content(STUDENTS[0], "stray"), 1.7e9, STRAY)
    if as_zip:
        with zipfile.ZipFile(target, "w") as archive:
            for name, (data, mtime, _) in files.items():
                info = zipfile.ZipInfo(name, _zip_time(mtime))
                archive.writestr(info, data)
    else:
        for name, (data, mtime, _) in files.items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.utime(path, (mtime, mtime))
    return {name: key for name, (_, _, key) in files.items()}


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    import time

    return time.localtime(mtime)[:6]
