"""Benchmark the grading command: a class of tutorial-1 submissions with 1 and with 2 workers.

Usage (from the repository root)::

    python scripts/benchmark_grading.py                 # 40 submissions, 1 then 2 workers
    python scripts/benchmark_grading.py --students 20 --workers 1 2 4

The class mixes correct, partly correct, wrong and untouched notebooks (from
:mod:`autograder.grading.synthetic`).  Each run grades from scratch (fresh output folder, same
gradebook preparation cached), in a private copy of the course; the time of the nbgrader
preparation (``generate_assignment``, once per output folder) is reported apart, and so is the
machine's load average (other work on the machine slows grading down).  Target on a 2-core
machine: 40 graded in under 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository's packages (autograder is not installed)

from autograder.grading.runner import grade_class  # noqa: E402
from autograder.grading.sandbox import SandboxSettings  # noqa: E402
from autograder.grading.synthetic import (  # noqa: E402
    ALL,
    T1,
    answers,
    copy_course,
    filled,
    student_notebook,
)

KINDS = [
    dict.fromkeys(ALL, "correct"),
    dict.fromkeys(ALL, "alternative"),
    {"ex_initializer": "correct", "ex_net_svd": "wrong", "ex_net_rsm": "correct"},
    dict.fromkeys(ALL, "wrong"),
    None,  # untouched
]


def build(folder: Path, students: int) -> None:
    """``students`` tutorial-1 submissions, cycling through the kinds above."""
    import nbformat

    for index in range(students):
        kind = KINDS[index % len(KINDS)]
        nb = student_notebook() if kind is None else filled(answers(**kind))
        target = folder / f"student{index:03d}" / f"{T1}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dlnn-benchmark-") as tmp:
        base = Path(tmp)
        course = base / "course"
        course.mkdir()
        copy_course(course)
        inputs = base / "submissions"
        inputs.mkdir()
        build(inputs, args.students)
        cache = base / "prepared"
        start = time.perf_counter()
        grade_class(inputs / "student000", cache, course=course, tutorials=[T1], workers=1,
                    progress=None)
        print(f"preparation (nbgrader generate_assignment, once): "
              f"{time.perf_counter() - start:.1f} s")
        results = []
        for workers in args.workers:
            output = base / f"out-{workers}"
            shutil.copytree(cache, output)
            for stale in ("state.json", "grades.csv", "report.html"):
                (output / stale).unlink(missing_ok=True)
            start = time.perf_counter()
            graded = grade_class(inputs, output, course=course, tutorials=[T1], workers=workers,
                                 settings=SandboxSettings(), progress=None)
            seconds = time.perf_counter() - start
            assert len(graded.graded_now) == args.students
            rate = 60 * args.students / seconds
            results.append((workers, seconds, rate))
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{workers} worker(s): {args.students} submissions in {seconds:.1f} s "
                  f"= {rate:.1f} submissions/minute (load average {load})", flush=True)
        print("\nworkers  seconds  submissions/minute")
        for workers, seconds, rate in results:
            print(f"{workers:>7}  {seconds:>7.1f}  {rate:>18.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
