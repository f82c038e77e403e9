"""Measure what people wait for, in one run: grading, kernel start-up, memory, notebooks.

Usage (from the repository root)::

    python scripts/benchmark.py                        # everything (15-20 minutes on 2 cores)
    python scripts/benchmark.py --skip reference       # without the one-by-one reference runs
    python scripts/benchmark.py --skip build --skip reference   # no tutorial-3 training at all
    python scripts/benchmark.py --students 20 --workers 1 2 4 --cold
    python scripts/benchmark.py --quick                # tiny settings (what the test runs)

What it measures, each with the goal of issue 22 where there is one:

- **grading throughput** with 1 and 2 workers (``--workers``): a class of ``--students``
  tutorial-1 submissions (correct, partly correct, wrong and untouched notebooks from
  :mod:`autograder.grading.synthetic`) graded from scratch into a copy of an output folder
  prepared and calibrated before (the preparation timed apart: a first run on the machine, then
  another output folder, where the calibration is reused; the grading then runs in the same
  process, whose workers' server process, started by the preparation, has imported the grading
  code already, as in one grading command, where it imports while nbgrader prepares);
  ``--cold`` also grades with a fresh interpreter per notebook (``SandboxSettings(warm=False)``,
  the grader before warm slots);
- **start-up per submission**: a notebook that only imports torch, numpy, matplotlib and the course
  package, run in the grading sandbox with a fresh kernel and with a kernel forked from a warm
  slot (median of ``--startup-runs``; the warm slot's own start is timed apart);
- **peak memory per grading slot** (the control groups' peak: kernel and warm interpreter);
- **cold build**: the reference runs of every tutorial executed fresh the way the site's build runs
  them (two kernels at a time, tutorial 3's training runs shared between two; the build's cache in
  ``_build/reference`` is rewritten, as a build would);
- **cold reference runs**: each solution notebook executed fresh, one after the other, in one
  kernel each (where the time of each tutorial goes);
- **untouched student notebooks**: each ``tutorials/`` notebook executed as a student would.

It prints a table with the machine (CPU model, cores, load average before and after: other work
slows everything down) and writes the numbers to ``--json`` (default ``benchmark.json`` in the
current folder).  ``tests/course/test_benchmark.py`` runs it with ``--quick`` and a one-cell
notebook; it asserts what the table and the JSON hold, never a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository's packages (autograder is not installed)

import nbformat  # noqa: E402

from coursebuild.build import execute_notebook, reference_notebooks  # noqa: E402
from courselayout import solution_path, student_path, tutorial_ids  # noqa: E402

GOALS = {
    "grading_2_workers_s": 20.0,  # 40 tutorial-1 submissions on 2 cores
    "memory_per_slot_mib": 1536.0,
    "reference_total_s": 90.0,
    "student_notebook_s": 15.0,
}
SECTIONS = ("startup", "grading", "build", "reference", "student")
STARTUP_CELL = "import torch, numpy, matplotlib.pyplot, dlnn_helpers\nprint('ready')"


def machine() -> dict:
    """CPU model, cores, load average, uptime (the load decides how much the numbers mean)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return {"cpu": model, "cores": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()],
            "uptime": uptime, "python": platform.python_version()}


def startup(runs: int) -> dict:
    """Seconds from nothing to a kernel with the imports done, fresh and forked from a warm slot."""
    from autograder.grading.execution import execute
    from autograder.grading.sandbox import SandboxSettings, warm
    from autograder.grading.worker import KERNEL_ENV

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(STARTUP_CELL)])
    found: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="dlnn-benchmark-startup-") as tmp:
        for kind, settings in (("fresh", SandboxSettings(warm=False)),
                               ("warm", SandboxSettings(warm=True))):
            times, peaks = [], []
            for number in range(runs + (kind == "warm")):  # the warm slot's start apart
                start = time.perf_counter()
                done = execute(nbformat.from_dict(nb), number, settings, KERNEL_ENV,
                               Path(tmp) / f"{kind}{number}")
                times.append(time.perf_counter() - start)
                peaks.append(done.memory_peak)
                if done.problems:
                    raise RuntimeError(f"the start-up notebook failed: {done.problems}")
            if kind == "warm":
                found["warm_slot_start_s"] = times.pop(0)
            found[f"{kind}_s"] = statistics.median(times)
            found[f"{kind}_memory_peak_mib"] = (max(peaks) / 2**20 if all(peaks) else None)
        warm.close_all()
    return found


def _class(folder: Path, students: int) -> None:
    """``students`` tutorial-1 submissions, cycling through correct, wrong, untouched ..."""
    from autograder.grading.synthetic import ALL, T1, answers, filled, student_notebook

    kinds = [dict.fromkeys(ALL, "correct"), dict.fromkeys(ALL, "alternative"),
             {"ex_initializer": "correct", "ex_net_svd": "wrong", "ex_net_rsm": "correct"},
             dict.fromkeys(ALL, "wrong"), None]
    for index in range(students):
        kind = kinds[index % len(kinds)]
        nb = student_notebook() if kind is None else filled(answers(**kind))
        target = folder / f"student{index:03d}" / f"{T1}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)


def grading(students: int, workers: list[int], cold: bool, keep: Path | None) -> dict:
    """Grade a class of tutorial-1 submissions with each number of workers (warm, and cold)."""
    from autograder.grading.runner import grade_class
    from autograder.grading.sandbox import SandboxSettings
    from autograder.grading.synthetic import T1, copy_course

    rows = []
    with tempfile.TemporaryDirectory(prefix="dlnn-benchmark-") as tmp:
        base = Path(tmp)
        course = copy_course(base / "course")
        inputs = base / "submissions"
        inputs.mkdir()
        _class(inputs, students)
        prepared = base / "prepared"
        calibration = base / "calibration"  # none yet: the first preparation calibrates
        one = base / "one-student"  # a class of one: the first student, in its own folder
        shutil.copytree(inputs / "student000", one / "student000")
        said: list[str] = []
        start = time.perf_counter()
        first = grade_class(one, prepared, course=course, tutorials=[T1], workers=1,
                            progress=said.append, calibration_cache=calibration)
        preparation = time.perf_counter() - start
        if [row["status"] for row in first.rows] != ["graded"] or not any(
                line.startswith("checking the grader") for line in said):
            raise SystemExit("the first preparation did not calibrate and grade the one "
                             "submission:\n" + "\n".join(said))
        start = time.perf_counter()  # another output folder: nbgrader again, no calibration
        grade_class(one, base / "prepared-again", course=course,
                    tutorials=[T1], workers=1, progress=None, calibration_cache=calibration)
        preparation_again = time.perf_counter() - start
        for warm in [True, False] if cold else [True]:
            for count in workers:
                output = base / f"out-{count}-{'warm' if warm else 'cold'}"
                shutil.copytree(prepared, output)
                for stale in ("state.json", "grades.csv", "report.html"):
                    (output / stale).unlink(missing_ok=True)
                start = time.perf_counter()
                graded = grade_class(inputs, output, course=course, tutorials=[T1],
                                     workers=count, settings=SandboxSettings(warm=warm),
                                     progress=None, calibration_cache=calibration)
                seconds = time.perf_counter() - start
                if len(graded.graded_now) != students:
                    raise RuntimeError(f"{len(graded.graded_now)} of {students} graded")
                peak = graded.memory_peak
                rows.append({
                    "workers": count, "kernels": "warm" if warm else "fresh", "students": students,
                    "seconds": round(seconds, 2), "per_minute": round(60 * students / seconds, 1),
                    "memory_peak_mib": round(peak / 2**20) if peak else None,
                    "scores": {r.student: r.score for r in graded.graded_now},
                    "load": [round(x, 2) for x in os.getloadavg()],
                })
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(output / "grades.csv", keep / f"{output.name}.csv")
                print(f"  graded {students} with {count} worker(s), {rows[-1]['kernels']} "
                      f"kernels: {seconds:.1f} s", flush=True)
    return {"preparation_s": round(preparation, 2),
            "preparation_again_s": round(preparation_again, 2), "runs": rows}


def notebooks(paths: list[tuple[str, Path]], timeout: int) -> dict[str, float]:
    """Seconds each notebook takes in a fresh kernel (``coursebuild``'s execution)."""
    times = {}
    for label, path in paths:
        start = time.perf_counter()
        execute_notebook(path, timeout=timeout)
        times[label] = round(time.perf_counter() - start, 2)
        print(f"  {label}: {times[label]:.1f} s", flush=True)
    return times


def cold_build(tutorials: list[str]) -> dict:
    """Wall seconds of the reference runs as the site's build makes them on a machine that never
    built: every tutorial executed fresh, two kernels at a time (tutorial 3's runs shared between
    two of them), longest first (:func:`coursebuild.build.reference_notebooks`)."""
    start = time.perf_counter()
    reference_notebooks(tutorials, workers=2, fresh=True)
    seconds = round(time.perf_counter() - start, 2)
    print(f"  all {len(tutorials)}: {seconds:.1f} s", flush=True)
    return {"tutorials": tutorials, "seconds": seconds, "load": [round(x, 2) for x in os.getloadavg()]}


def table(found: dict) -> str:
    """The numbers as a Markdown table, with the goals."""
    lines = ["| measured | value | goal |", "| --- | --- | --- |"]
    start = found.get("startup")
    if start:
        lines.append(f"| start-up per submission, fresh kernel | {start['fresh_s']:.2f} s | |")
        lines.append(f"| start-up per submission, forked from a warm slot | {start['warm_s']:.2f} s "
                     f"(the slot itself: {start['warm_slot_start_s']:.1f} s, once per worker) | |")
    grade = found.get("grading")
    if grade:
        lines.append(f"| nbgrader preparation and calibration, one T1 file (first run on the "
                     f"machine) | {grade['preparation_s']:.1f} s | |")
        if "preparation_again_s" in grade:
            lines.append(f"| the same in another output folder (calibration kept: nbgrader "
                         f"only) | {grade['preparation_again_s']:.1f} s | |")
        for row in grade["runs"]:
            goal = (f"≤ {GOALS['grading_2_workers_s'] * row['students'] / 40:.0f} s"
                    if row["workers"] == 2 and row["kernels"] == "warm" else "")
            lines.append(f"| grading {row['students']} T1 submissions, {row['workers']} "
                         f"worker(s), {row['kernels']} kernels | {row['seconds']:.1f} s = "
                         f"{row['per_minute']:.0f}/min (load {row['load'][0]:.1f}) | {goal} |")
        peaks = [r["memory_peak_mib"] for r in grade["runs"] if r["memory_peak_mib"]]
        if peaks:
            lines.append(f"| peak memory per grading slot | {max(peaks)} MiB | "
                         f"≤ {GOALS['memory_per_slot_mib']:.0f} MiB |")
    build = found.get("build")
    if build:
        lines.append(f"| cold build: the {len(build['tutorials'])} reference runs as the site "
                     f"builds them (2 kernels) | {build['seconds']:.1f} s (load "
                     f"{build['load'][0]:.1f}) | ≤ {GOALS['reference_total_s']:.0f} s |")
    for key, what, goal in (("reference", "cold reference run", ""),
                            ("student", "untouched student notebook",
                             f"≤ {GOALS['student_notebook_s']:.0f} s")):
        for label, seconds in found.get(key, {}).items():
            lines.append(f"| {what}: {label} | {seconds:.1f} s | {goal} |")
        if key == "reference" and found.get(key):
            lines.append(f"| cold reference runs, one after the other | "
                         f"{sum(found[key].values()):.1f} s | "
                         f"≤ {GOALS['reference_total_s']:.0f} s (on 2 cores) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cold", action="store_true",
                        help="also grade with a fresh interpreter per notebook")
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--tutorial", action="append", dest="tutorials",
                        help="reference and student notebooks of this tutorial only (repeatable)")
    parser.add_argument("--notebook", type=Path, action="append", default=[],
                        help="time this notebook instead of the tutorials' (repeatable)")
    parser.add_argument("--skip", action="append", default=[], choices=SECTIONS)
    parser.add_argument("--timeout", type=int, default=900, help="seconds a cell may take")
    parser.add_argument("--json", type=Path, default=Path("benchmark.json"))
    parser.add_argument("--keep-grades", type=Path, help="copy each run's grades.csv here")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings: 2 submissions, 1 worker, 1 start-up run, no "
                             "tutorial notebooks unless --notebook names some")
    args = parser.parse_args(argv)
    known = tutorial_ids()
    unknown = sorted(set(args.tutorials or []) - set(known))
    if unknown:
        parser.error(f"no such tutorial: {', '.join(unknown)} (the tutorials: {', '.join(known)})")
    if args.quick:
        args.students, args.workers, args.startup_runs = 2, [1], 1
    tutorials = args.tutorials or ([] if args.quick else known)

    found: dict = {"machine": machine(), "goals": GOALS}
    print(f"machine: {found['machine']['cpu']}, {found['machine']['cores']} cores; "
          f"{found['machine']['uptime']}", flush=True)
    if "startup" not in args.skip:
        print("start-up per submission ...", flush=True)
        found["startup"] = startup(args.startup_runs)
    if "grading" not in args.skip:
        print("grading ...", flush=True)
        found["grading"] = grading(args.students, args.workers, args.cold, args.keep_grades)
    own = [(path.stem, path) for path in args.notebook]
    if "build" not in args.skip and tutorials and not own:
        print("cold build (the reference runs as the site builds them) ...", flush=True)
        found["build"] = cold_build(tutorials)
    if "reference" not in args.skip:
        print("reference runs (solution notebooks, fresh kernels) ...", flush=True)
        found["reference"] = notebooks(own or [(t, solution_path(t)) for t in tutorials],
                                       args.timeout)
    if "student" not in args.skip:
        print("untouched student notebooks ...", flush=True)
        found["student"] = notebooks(own or [(t, student_path(t)) for t in tutorials],
                                     args.timeout)
    found["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(table(found))
    print(f"\nload average before: {' '.join(map(str, found['machine']['load']))}; after: "
          f"{' '.join(map(str, found['load_after']))} ({found['machine']['cores']} cores)")
    args.json.write_text(json.dumps(found, indent=1))
    print(f"numbers: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
