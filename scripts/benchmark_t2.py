"""Time tutorial 2: the whole notebooks, their slowest cells, and each check on its own.

Usage (from the repository root)::

    python scripts/benchmark_t2.py            # solution + student notebook, then the checks
    python scripts/benchmark_t2.py --repeat 3 # best of three runs of each notebook

The solution notebook must execute in under 30 s on the 2-core CI machine (the budget is checked
here, not in a timed test).  Kernel start-up is included in the notebook times.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from coursebuild.build import execute_notebook  # noqa: E402
from courselayout import solution_path, student_path  # noqa: E402

TUTORIAL = "T2_Optimisation"
BUDGET_S = 30.0


def _cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def time_notebook(path: Path, repeat: int) -> tuple[float, list[tuple[float, str]]]:
    best, slowest = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        nb = execute_notebook(path)
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best = elapsed
            cells = [c for c in nb.cells if c.cell_type == "code"]
            slowest = sorted(
                ((_cell_seconds(c), c.source.splitlines()[0][:70]) for c in cells), reverse=True
            )[:5]
    return best, slowest


def time_checks() -> list[tuple[str, float]]:
    from dlnn_helpers.checks import optimisation as checks
    from dlnn_reference import optimisation as ref

    cases = [
        ("check_gradient_descent", checks.check_gradient_descent, ref.gradient_descent),
        ("check_gradient_mean_rms", checks.check_gradient_mean_rms, ref.gradient_mean_rms),
        ("check_simple_gradient_descent", checks.check_simple_gradient_descent,
         ref.SimpleGradientDescent),
        ("check_ema_update", checks.check_ema_update, ref.ema_update),
        ("check_adam_optimizer", checks.check_adam_optimizer, ref.ADAMOptimizer),
    ]
    results = []
    for label, check, answer in cases:
        start = time.perf_counter()
        check(answer)
        results.append((label, time.perf_counter() - start))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook (best is kept)")
    args = parser.parse_args(argv)

    print("checks (reference answers, first call in this process):")
    for label, seconds in time_checks():
        print(f"  {label:32s} {seconds:6.2f} s")

    status = 0
    for kind, path in (
        ("solution", solution_path(TUTORIAL)),
        ("student", student_path(TUTORIAL)),
    ):
        seconds, slowest = time_notebook(path, args.repeat)
        verdict = ""
        if kind == "solution":
            verdict = "  (within budget)" if seconds < BUDGET_S else f"  OVER the {BUDGET_S:.0f} s budget"
            status = 0 if seconds < BUDGET_S else 1
        print(f"{kind} notebook: {seconds:.1f} s{verdict}")
        for cell_seconds, first_line in slowest:
            print(f"    {cell_seconds:5.2f} s  {first_line}")
    return status


if __name__ == "__main__":
    sys.exit(main())
