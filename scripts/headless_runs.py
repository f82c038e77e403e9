"""Execute notebooks headless many times with interactive widgets and report any that hang.

A kernel with no front end (``nbconvert --execute``, CI) is what runs here: neither
``DLNN_STATIC_WIDGETS`` nor ``NBGRADER_EXECUTION`` is set, so every widget is built interactively,
as for a student.  Each cell gets a timeout; a cell that exceeds it counts as a hang.  Not part of
the test suite (it takes many minutes); the test suite's ``tests/helpers/test_widgets.py``
drives every widget once.

Usage::

    python scripts/headless_runs.py                      # T1 and T6 solutions, 20 runs each
    python scripts/headless_runs.py --runs 5 --student   # the student notebooks
    python scripts/headless_runs.py T1_DeepLinearNetworks --cell-timeout 60
    python scripts/headless_runs.py --t6-steps 2000,200   # T6 on a short schedule (see below)
    python scripts/headless_runs.py --notebook my.ipynb --runs 3   # any notebook

``--t6-steps N,EVERY`` appends ``N_STEPS, SNAPSHOT_EVERY = N, EVERY`` to the cell of T6 that sets its
schedule (in memory only), so that T6 trains briefly but still builds its interactive widgets; the
grading schedule of T6 is selected by ``NBGRADER_EXECUTION``, which would make the widgets static.

Exit status: 0 when no run hung or failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursebuild import build  # noqa: E402
from courselayout import AUTOGRADE_ENV_VAR, STATIC_ENV_VAR, solution_path, student_path  # noqa: E402

DEFAULT_TUTORIALS = ("T1_DeepLinearNetworks", "T6_ReLUFeatures")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def headless_env() -> dict[str, str]:
    """The kernel's environment: this interpreter's tools on PATH, no static-widget switches."""
    env = build.tool_env()
    env.pop(STATIC_ENV_VAR, None)
    env.pop(AUTOGRADE_ENV_VAR, None)
    return env


def short_schedule(nb: nbformat.NotebookNode, steps: int, every: int) -> bool:
    """Append a short schedule to the cell that sets ``N_STEPS, SNAPSHOT_EVERY``; True if found."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "N_STEPS, SNAPSHOT_EVERY =" in cell.source:
            cell.source += f"\nN_STEPS, SNAPSHOT_EVERY = {steps}, {every}  # headless_runs.py\n"
            return True
    return False


def run_once(path: Path, cell_timeout: int, schedule: tuple[int, int] | None) -> tuple[str, float, str]:
    """Execute the notebook once; return (outcome, seconds, detail) with outcome ok, hang or error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    if schedule is not None and not short_schedule(nb, *schedule):
        return "error", 0.0, "no cell sets N_STEPS, SNAPSHOT_EVERY"
    client = NotebookClient(
        nb, timeout=cell_timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    start = time.perf_counter()
    try:
        client.execute(env=headless_env())
    except CellTimeoutError as error:
        return "hang", time.perf_counter() - start, str(error).splitlines()[0]
    except (CellExecutionError, DeadKernelError) as error:
        return "error", time.perf_counter() - start, str(error)[-500:]
    seconds = time.perf_counter() - start
    widgets = sum(WIDGET_VIEW in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    return "ok", seconds, f"{widgets} interactive widgets displayed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tutorials", nargs="*", default=list(DEFAULT_TUTORIALS))
    parser.add_argument("--runs", type=int, default=20, help="executions per notebook (default 20)")
    parser.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell (default 300)")
    parser.add_argument("--student", action="store_true", help="the student notebooks, not solutions")
    parser.add_argument("--t6-steps", default=None, metavar="N,EVERY",
                        help="short training schedule for T6, e.g. 2000,200")
    parser.add_argument("--notebook", type=Path, action="append", default=[], metavar="PATH",
                        help="execute this notebook instead of tutorials (repeatable)")
    args = parser.parse_args(argv)

    schedule = tuple(int(v) for v in args.t6_steps.split(",")) if args.t6_steps else None
    failures = 0
    chosen = [(p.stem, p.resolve()) for p in args.notebook] or [
        (t, (student_path if args.student else solution_path)(t)) for t in args.tutorials]
    for tutorial, path in chosen:
        this_schedule = schedule if tutorial.startswith("T6") else None
        counts = {"ok": 0, "hang": 0, "error": 0}
        times = []
        what = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        what += f" (N_STEPS, SNAPSHOT_EVERY = {this_schedule})" if this_schedule else ""
        print(f"{what}: {args.runs} headless runs, {args.cell_timeout} s per cell", flush=True)
        for i in range(args.runs):
            outcome, seconds, detail = run_once(path, args.cell_timeout, this_schedule)
            counts[outcome] += 1
            times.append(seconds)
            print(f"  run {i + 1:2d}: {outcome:5s} {seconds:6.1f} s  {detail}", flush=True)
        failures += counts["hang"] + counts["error"]
        print(f"{tutorial}: {counts['ok']} ok, {counts['hang']} hung, {counts['error']} failed; "
              f"{min(times):.1f}–{max(times):.1f} s per run", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
