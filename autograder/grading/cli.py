"""Command line: ``python -m autograder SUBMISSIONS [options]``, and the steps after grading.

Examples::

    python -m autograder autograder/demo_class              # the demo class, every tutorial
    python -m autograder ~/Downloads/T1.zip --tutorial T1_DeepLinearNetworks -o ~/grading/T1
    python -m autograder canvas.zip --roster roster.csv -o ~/grading/T1
    python -m autograder subs/ --workers 8 --db-url postgresql://grader@db/dlnn
    python -m autograder subs/ --dask-scheduler tcp://scheduler:8786
    python -m autograder formgrade -o ~/grading/T1          # mark the written answers
    python -m autograder grades -o ~/grading/T1             # hand marks into grades.csv, feedback
    python -m autograder export -o ~/grading/T1 --roster roster.csv --canvas canvas.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .inputs.roster import Roster
from .model import SandboxSettings
from .outputs import formgrade, handgrades, lms_export
from .outputs.report import atomic_write, terminal_safe
from .runner import (
    COURSE_ROOT,
    DEFAULT_OUTPUT,
    STATE_NAME,
    CalibrationFailed,
    GradingOptions,
    OutputLocked,
    _load_state,
    grade_class,
    output_lock,
)

SUBCOMMANDS = ("formgrade", "grades", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="Grade a class's notebooks in parallel, safely: grades.csv, per-student "
                    "feedback and an instructor report.  After grading: 'python -m autograder "
                    "formgrade -o OUTPUT' (mark the written answers), 'grades -o OUTPUT' (hand "
                    "marks into grades.csv and feedback), 'export -o OUTPUT --roster CSV --canvas "
                    "FILE --moodle FILE' (each has --help).",
    )
    parser.add_argument("submissions", type=Path,
                        help="folder or .zip of submitted notebooks (<student>/<tutorial>.ipynb, "
                             "<student>_<tutorial>.ipynb, nbgrader's "
                             "<student>/<tutorial>/<tutorial>.ipynb, or a Canvas, Moodle, Google "
                             "Classroom/Drive download as it comes)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT,
                        help="output folder (default: autograder/output)")
    parser.add_argument("-t", "--tutorial", action="append", dest="tutorials",
                        help="grade only this tutorial (repeatable; default: every tutorial in "
                             "solutions/)")
    parser.add_argument("-w", "--workers", type=int, default=None,
                        help="parallel worker processes (default: one per core)")
    parser.add_argument("--dask-scheduler", metavar="ADDRESS",
                        help="grade on a Dask cluster instead (needs the 'dask' extra)")
    parser.add_argument("--db-url", help="gradebook URL (default: sqlite in the output folder)")
    parser.add_argument("--course", type=Path, default=COURSE_ROOT,
                        help="course root with nbgrader_config.py and solutions/")
    parser.add_argument("--cell-timeout", type=int, default=SandboxSettings.cell_timeout,
                        help="seconds a cell may run (default: %(default)s)")
    parser.add_argument("--memory-gib", type=float,
                        default=SandboxSettings.memory_bytes / 2**30,
                        help="memory of all of a submission's processes together, in GiB "
                             "(per process where control groups are unavailable; default: "
                             "%(default)s)")
    parser.add_argument("--run-demos", action="store_true",
                        help="run every cell, demonstrations included (slower)")
    parser.add_argument("--force", action="store_true",
                        help="grade again submissions that did not change since the last run")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="when another grader is writing the output folder, wait this long "
                             "for it to finish (default: stop at once and say so)")
    parser.add_argument("--roster", type=Path, metavar="CSV",
                        help="the class roster: maps the names and ids in the files' names to "
                             "student ids (see autograder/README.md); a file that matches nobody "
                             "is listed, not graded")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _after_parser(command: str) -> argparse.ArgumentParser:
    descriptions = {
        "formgrade": "Open nbgrader's formgrader on the gradebook the grader wrote, to mark the "
                     "written answers.",
        "grades": "Put the hand marks of the gradebook into grades.csv and the feedback pages.",
        "export": "Write the grades for Canvas's or Moodle's grade import, through the roster.",
    }
    parser = argparse.ArgumentParser(prog=f"python -m autograder {command}",
                                     description=descriptions[command])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT,
                        help="the grader's output folder (default: autograder/output)")
    parser.add_argument("--db-url", help="gradebook URL (default: sqlite in the output folder)")
    if command == "formgrade":
        parser.add_argument("--port", type=int, default=8888, help="default: %(default)s")
        parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    if command == "export":
        parser.add_argument("--roster", type=Path, required=True, metavar="CSV")
        parser.add_argument("--canvas", type=Path, metavar="CSV", help="write Canvas's import file")
        parser.add_argument("--moodle", type=Path, metavar="CSV", help="write Moodle's import file")
        parser.add_argument("--canvas-assignment", action="append", default=[],
                            metavar="TUTORIAL=ID", help="the Canvas assignment id of a tutorial "
                            "(its column is then 'TUTORIAL (ID)'; repeatable)")
        parser.add_argument("-t", "--tutorial", action="append", dest="tutorials",
                            help="export only this tutorial (default: every graded tutorial)")
        parser.add_argument("--partial", action="store_true",
                            help="export what is complete; list the rest (unmarked answers 0)")
    return parser


def _merged_rows(output: Path, db_url: str) -> list[dict]:
    """The grader's rows with the gradebook's hand marks; grades.csv and feedback rewritten."""
    if not (output / STATE_NAME).is_file() and not (output / "gradebook.db").is_file():
        raise FileNotFoundError(f"nothing graded in {output}: python -m autograder SUBMISSIONS "
                                f"-o {output}")
    with output_lock(output):
        state = _load_state(output / STATE_NAME, db_url, lambda line: print(terminal_safe(line)))
        return handgrades.apply(output, list(state.values()), db_url)


def after(command: str, argv: list[str]) -> int:
    """Run ``formgrade``, ``grades`` or ``export``; returns the exit status (2: refused)."""
    parser = _after_parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra and command != "formgrade":
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    output = args.output.resolve()
    db_url = args.db_url or f"sqlite:///{output / 'gradebook.db'}"
    if command == "export" and not (args.canvas or args.moodle):
        parser.error("give --canvas FILE and/or --moodle FILE")
    try:
        if command == "formgrade":
            return formgrade.serve(output, args.db_url, args.port, not args.no_browser, extra)
        rows = _merged_rows(output, db_url)
        if command == "grades":
            pending = [r for r in rows if str(r.get("hand_grading", "")).startswith(
                ("waiting", "again"))]
            print(f"{output / 'grades.csv'}: {len(rows)} row(s); {len(pending)} with written "
                  "answers still to mark")
            return 0
        roster = Roster.load(args.roster)
        tutorials = args.tutorials or sorted({r["tutorial"] for r in rows if r.get("status")
                                              in ("graded", "rejected")})
        ids = dict(item.split("=", 1) for item in args.canvas_assignment if "=" in item)
        found = lms_export.totals(rows, roster, tutorials, args.partial)
        if args.canvas:
            atomic_write(args.canvas.resolve(), lms_export.canvas_csv(found, roster, tutorials, ids))
            print(f"Canvas: {args.canvas}")
        if args.moodle:
            atomic_write(args.moodle.resolve(), lms_export.moodle_csv(found, roster, tutorials))
            print(f"Moodle: {args.moodle}")
        for line in found.left_out:
            print(f"left out: {terminal_safe(line)}")
        return 0
    except OutputLocked as exc:
        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status.

    0: every file was graded or reported; 2: the input, the course, the roster or an option is
    wrong (or an export is refused); 3: another grader is writing the output folder; 4: refused,
    a reference solution does not score full marks in this machine's sandbox (no grade
    written).  ``formgrade``, ``grades`` and ``export`` as the first argument run those steps
    (:func:`after`).  Every line is printed with control characters escaped.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return after(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    settings = SandboxSettings(cell_timeout=args.cell_timeout,
                               memory_bytes=int(args.memory_gib * 2**30))
    executor = client = None
    if args.dask_scheduler:
        try:
            from distributed import Client
        except ImportError:
            print("--dask-scheduler needs dask.distributed: pip install 'dlnn-course[dask]'",
                  file=sys.stderr)
            return 2
        client = Client(args.dask_scheduler)
        executor = client.get_executor()
    try:
        roster = Roster.load(args.roster) if args.roster else None
        grade_class(args.submissions, args.output, GradingOptions(
            course=args.course, tutorials=args.tutorials, workers=args.workers, executor=executor,
            db_url=args.db_url, settings=settings, force=args.force, run_demos=args.run_demos,
            lock_wait=args.wait, roster=roster,
            progress=None if args.quiet else lambda line: print(line, flush=True),
        ))
    except OutputLocked as exc:
        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 3
    except CalibrationFailed as exc:
        for line in str(exc).splitlines():
            print(f"error: {terminal_safe(line)}", file=sys.stderr)
        return 4
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    return 0
