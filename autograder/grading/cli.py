"""Command line: ``python -m autograder SUBMISSIONS [options]``.

Examples::

    python -m autograder autograder/demo_class              # the demo class, every tutorial
    python -m autograder ~/Downloads/T1.zip --tutorial T1_DeepLinearNetworks -o ~/grading/T1
    python -m autograder subs/ --workers 8 --db-url postgresql://grader@db/dlnn
    python -m autograder subs/ --dask-scheduler tcp://scheduler:8786
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .report import terminal_safe
from .runner import COURSE_ROOT, DEFAULT_OUTPUT, CalibrationFailed, OutputLocked, grade_class
from .sandbox import SandboxSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="Grade a class's notebooks in parallel, safely: grades.csv, per-student "
                    "feedback and an instructor report.",
    )
    parser.add_argument("submissions", type=Path,
                        help="folder or .zip of submitted notebooks (<student>/<tutorial>.ipynb, "
                             "<student>_<tutorial>.ipynb or nbgrader's "
                             "<student>/<tutorial>/<tutorial>.ipynb)")
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
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status.

    0: every file was graded or reported; 2: the input, the course or an option is wrong; 3: another
    grader is writing the output folder; 4: refused, a reference solution does not score full
    marks in this machine's sandbox (no grade written).  Every line is printed with control
    characters escaped.
    """
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
        grade_class(
            args.submissions, args.output, course=args.course, tutorials=args.tutorials,
            workers=args.workers, executor=executor, db_url=args.db_url, settings=settings,
            force=args.force, run_demos=args.run_demos, lock_wait=args.wait,
            progress=None if args.quiet else lambda line: print(line, flush=True),
        )
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
