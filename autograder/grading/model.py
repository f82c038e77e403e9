"""The grader's model: plain data every layer shares (picklable; no behaviour beyond sums).

- a tutorial as the grader knows it: :class:`TutorialSpec` and its :class:`TestCell` s;
- one submission to grade and what grading it produced: :class:`Job`, :class:`Result`;
- a test cell's verdict: :class:`Verdict`;
- a submission read for grading: :class:`Prepared` (or :class:`Rejected`);
- the limits and isolation of one kernel: :class:`SandboxSettings`.

It imports nothing of the grader but the protocol's record model (a test cell's parsed check
calls are :class:`~autograder.grading.protocol.records.CheckCall` s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from .protocol.cells import TestCall

__all__ = ["Job", "Prepared", "Rejected", "Result", "SandboxSettings", "TestCell", "TutorialSpec",
           "Verdict"]


# ------------------------------------------------------------------------------------------------
# A tutorial
# ------------------------------------------------------------------------------------------------


@dataclass
class TestCell:
    """An autograded test cell."""

    grade_id: str
    points: float
    source: str
    """Full source from the gradebook, hidden tests included (never shown to students)."""
    visible: str
    """What the student version shows of it."""
    calls: list[TestCall] | None
    """The parsed check calls; None when the cell is not a plain list of calls (then it is judged
    inside the sandbox, as nbgrader would: full points when it raises no error)."""
    mode: str = "auto"
    """How recorded calls are judged: ``replay`` (outside, monkeypatch-proof), ``kernel`` (the
    verdict computed in the sandbox) or ``auto`` (before calibration).  Set by grading the
    reference solution: a test whose reference answer replays correctly is always replayed, so a
    student cannot escape to the weaker mode by returning something odd."""


@dataclass
class TutorialSpec:
    """Everything a worker needs to grade one tutorial (picklable, no database handle)."""

    name: str
    template: dict
    """The release notebook as JSON, with locked cells restored from the gradebook."""
    tests: list[TestCell]
    manual: dict[str, float]
    """Manually graded answer cells: grade id -> points."""
    solution_names: dict[str, list[str]]
    """Solution code cell grade id -> names it defines (to find it when its metadata is lost)."""
    hidden_lines: list[str] = field(default_factory=list)
    fingerprint: str = ""
    calibrated: bool = False
    reference_problems: list[str] = field(default_factory=list)
    """Tests the reference solution does not pass (a problem of the tutorial, not of students)."""

    @property
    def auto_points(self) -> float:
        return sum(t.points for t in self.tests)


# ------------------------------------------------------------------------------------------------
# A kernel's limits, a submission, its grading
# ------------------------------------------------------------------------------------------------


@dataclass
class SandboxSettings:
    """Limits and isolation of one kernel.

    Attributes
    ----------
    cell_timeout : int
        Seconds one cell may run before it is interrupted and counted as failed.
    notebook_timeout : int
        Seconds the whole notebook may take; then its kernel is killed (a notebook that breaks
        its kernel would otherwise time out cell after cell).
    cpu_s : int
        CPU seconds of each process (``RLIMIT_CPU``).
    memory_bytes : int
        Memory of all the kernel's processes together (control group); also the address space of
        each one (``RLIMIT_AS``), the only bound where control groups are unavailable.
    processes : int
        Processes and threads of all the kernel's processes together (control group and
        ``RLIMIT_NPROC`` of its own user; as an ordinary user this many more than the grader's
        user already runs).
    open_files : int
        Open files of each process (``RLIMIT_NOFILE``).
    file_bytes : int
        Largest file the kernel may write (``RLIMIT_FSIZE``).
    scratch_bytes : int
        Size of the scratch folder (a tmpfs; ``/tmp`` and ``/dev/shm`` are in it).
    scratch_files : int
        Files and folders the scratch folder may hold.
    max_output_bytes : int
        Everything kept from what one notebook's kernel sends (outputs, display updates, widget
        and comm messages); the rest is dropped with a note.
    isolate : bool
        Use bubblewrap (False: only the limits and a clean environment; for debugging).
    hide : list of str
        Folders that must never be visible (the grader adds the course, the input and the
        output): the sandbox refuses to expose any folder that contains one.
    warm : bool
        Fork each kernel from a warm interpreter of the worker's slot, whose imports are done
        (:mod:`warm`); False starts a fresh interpreter per notebook (slower, same sandbox).
    """

    cell_timeout: int = 120
    notebook_timeout: int = 900
    cpu_s: int = 1200
    memory_bytes: int = 6 * 2**30
    processes: int = 256
    file_bytes: int = 64 * 2**20
    open_files: int = 512
    scratch_bytes: int = 512 * 2**20
    scratch_files: int = 20_000
    max_output_bytes: int = 2 * 2**20
    isolate: bool = True
    hide: list[str] = field(default_factory=list)
    warm: bool = True


class Rejected(Exception):
    """The submission cannot be graded; the message says why (one line for the report)."""


@dataclass
class Prepared:
    """The notebook to execute and what was noticed on the way."""

    notebook: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    solutions: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """One submission to grade."""

    number: int
    student: str
    tutorial: str
    file: str
    data: bytes
    spec: TutorialSpec
    settings: SandboxSettings
    run_demos: bool = False


@dataclass
class Result:
    """What the grading of one submission produced (plain data, picklable)."""

    student: str
    tutorial: str
    file: str
    sha256: str
    status: str
    """``graded``, ``rejected`` (not gradable: zero row) or ``error`` (the grader failed)."""
    message: str = ""
    notes: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    maxima: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    manual: dict[str, float] = field(default_factory=dict)
    in_process: list[str] = field(default_factory=list)
    review: dict[str, str] = field(default_factory=dict)
    """Test -> why a person should look at the passed answer (e.g. it is the library routine)."""
    shortcuts: dict[str, str] = field(default_factory=dict)
    """Test -> the refused shortcut its exercise used (found where it ran, or in its code): the
    test scored 0, the report flags it."""
    shown: dict[str, str] = field(default_factory=dict)
    """Test -> what the student's feedback says instead of the verdict: a failure on a hidden
    check call, without its inputs (:func:`feedback.hidden_failure`)."""
    seconds: float = 0.0
    worker: str = ""
    """``host:pid`` of the process that graded it."""
    feedback_html: str = ""
    autograded: str = ""
    memory_peak: int | None = None
    """Most memory the submission's grading slot used (bytes: its kernel's processes and the
    slot's warm interpreter together), where control groups measure it."""

    @property
    def score(self) -> float:
        return float(sum(self.scores.values()))

    @property
    def max_score(self) -> float:
        return float(sum(self.maxima.values()))


# ------------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """The result of one test cell."""

    passed: bool
    message: str
    in_process: bool = False
    """True when (part of) the verdict was computed inside the student's process (no longer
    happens for check calls: kept for the nbgrader-style cells the worker judges itself)."""
    review: str = ""
    """Why a passed answer should be looked at by a person (e.g. it is the library routine)."""
    shortcut: str = ""
    """The check's message when it refused a shortcut (a routine the exercise replaces, the
    course's answers): the test scores 0 and the report flags it."""
    call: int = -1
    """The index of the check call that failed in the test cell (-1: none, or the cell itself)."""
