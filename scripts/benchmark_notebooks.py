"""Report how long each tutorial notebook takes to execute (a benchmark, not a test).

Usage::

    python scripts/benchmark_notebooks.py                 # every solution notebook
    python scripts/benchmark_notebooks.py --student       # the student notebooks too
    python scripts/benchmark_notebooks.py --autograde     # as under nbgrader (NBGRADER_EXECUTION set)
    python scripts/benchmark_notebooks.py T1_DeepLinearNetworks --repeat 3
    python scripts/benchmark_notebooks.py --notebook some/other.ipynb   # any notebook

Each notebook runs in a fresh kernel (``coursebuild.build.execute_notebook``, as the site build
runs it); the time includes starting the kernel (about 1 s).  ``tests/course/test_benchmark.py``
runs this script on a one-cell notebook.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from courselayout import solution_path, student_path, tutorial_ids  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tutorials", nargs="*", help="tutorial IDs (default: all)")
    parser.add_argument("--student", action="store_true", help="also time the student notebooks")
    parser.add_argument("--autograde", action="store_true", help="set NBGRADER_EXECUTION=autograde")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each notebook (default 1)")
    parser.add_argument("--notebook", type=Path, action="append", default=[],
                        help="time this notebook instead of the tutorials (repeatable)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.tutorials) - set(tutorial_ids()))
    if unknown:
        parser.error(f"no such tutorial: {', '.join(unknown)} (the tutorials: "
                     f"{', '.join(tutorial_ids())})")

    from coursebuild.build import execute_notebook  # after the arguments: a refusal is quick

    env = {"NBGRADER_EXECUTION": "autograde"} if args.autograde else {}
    runs: list[tuple[str, Path]] = [(path.stem, path) for path in args.notebook]
    if not runs:
        for tutorial in args.tutorials or tutorial_ids():
            runs.append((f"{tutorial} (solution)", solution_path(tutorial)))
            if args.student:
                runs.append((f"{tutorial} (student)", student_path(tutorial)))
    print(f"machine: {os.cpu_count()} CPU cores; torch threads default; repeat={args.repeat}")
    print(f"{'notebook':<48} {'median s':>9} {'min s':>7}")
    for label, path in runs:
        times = []
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            execute_notebook(path, timeout=args.timeout, env=env)
            times.append(time.perf_counter() - start)
        print(f"{label:<48} {statistics.median(times):>9.1f} {min(times):>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
