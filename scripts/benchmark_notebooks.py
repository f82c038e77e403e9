"""Report how long each tutorial notebook takes to execute (a benchmark, not a test).

Usage::

    python scripts/benchmark_notebooks.py                 # every solution notebook
    python scripts/benchmark_notebooks.py --student       # the student notebooks too
    python scripts/benchmark_notebooks.py --autograde     # as under nbgrader (NBGRADER_EXECUTION set)
    python scripts/benchmark_notebooks.py T1_DeepLinearNetworks --repeat 3

Each notebook runs in a fresh kernel; the time includes starting the kernel (about 1 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import course  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tutorials", nargs="*", help="tutorial IDs (default: all)")
    parser.add_argument("--student", action="store_true", help="also time the student notebooks")
    parser.add_argument("--autograde", action="store_true", help="set NBGRADER_EXECUTION=autograde")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)

    env = {"NBGRADER_EXECUTION": "autograde"} if args.autograde else {}
    tutorials = args.tutorials or course.tutorial_ids()
    print(f"machine: {os.cpu_count()} CPU cores; torch threads default; repeat={args.repeat}")
    print(f"{'notebook':<48} {'median s':>9} {'min s':>7}")
    for tutorial in tutorials:
        paths = [("solution", course.solution_path(tutorial))]
        if args.student:
            paths.append(("student", course.student_path(tutorial)))
        for kind, path in paths:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                course.execute_notebook(path, env=env)
                times.append(time.perf_counter() - start)
            label = f"{tutorial} ({kind})"
            print(f"{label:<48} {statistics.median(times):>9.1f} {min(times):>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
