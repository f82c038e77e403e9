"""The instructor's command line: ``dlnn-course STEP`` (``python scripts/course.py STEP`` is the same).

Steps (each has ``--help``)::

    dlnn-course all        # expected + sync + generate + execute + both site editions (README)
    dlnn-course expected   # write the generated files of the student package (--check: report stale)
    dlnn-course sync       # write the Colab badge / install cells from dlnn_helpers.course
    dlnn-course generate   # nbgrader generate_assignment: solutions/ -> tutorials/
    dlnn-course execute    # run every student notebook top to bottom (must not fail)
    dlnn-course site --edition student     # the published site -> _build/html
    dlnn-course site --edition instructor  # with solutions -> _build/instructor/html
    dlnn-course release DEST               # the student repository (coursebuild.release)
    dlnn-course release DEST --tutorials T1_DeepLinearNetworks T2_Optimisation
    dlnn-course grade SUBMISSIONS [options]   # grade a class (= python -m autograder)
    dlnn-course formgrade|grades|export -o OUTPUT ...   # the steps after grading

``dlnn-course`` is declared in ``pyproject.toml`` (``[project.scripts]``) and installed by
``pip install -e .``; ``scripts/course.py`` runs this module without the install.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from courselayout import repository_path

from . import build, generated
from .release import cmd_release

GRADING = {
    "grade": "grade a class's notebooks: grades.csv, feedback, report (= python -m autograder; "
             "`dlnn-course grade --help` for its options)",
    "formgrade": "open nbgrader's formgrader on the grader's gradebook (the written answers)",
    "grades": "put the hand marks into grades.csv and the feedback",
    "export": "write the files Canvas's and Moodle's grade imports read",
}
"""The grader's steps (``autograder.grading.cli``): their arguments are passed on as they are."""


def cmd_expected(check: bool = False, training: bool = False) -> int:
    """Write the generated files of the student package (``--check``: only name the stale ones).

    Fresh or stale is judged with a tolerance (:mod:`coursebuild.generated`): a file whose values
    are equal within it is left as it is, so another machine leaves ``git status`` clean.
    """
    from dlnn_reference.shipped import RTOL

    not_checked = generated.skipped(training)
    note = (f"; not {'checked' if check else 'written'} (training runs, --training includes them): "
            + ", ".join(not_checked)) if not_checked else ""
    package = repository_path(generated.course_layout().student_package)
    if check:
        stale = generated.stale(training=training)
        for path, why in stale.items():
            print(f"stale: {package}/{path} ({why[:300]})", file=sys.stderr)
        if stale:
            print(f"expected: {len(stale)} generated file(s) out of date (run `python scripts/course.py "
                  f"expected{' --training' if training else ''}` and commit them){note}", file=sys.stderr)
            return 1
        print(f"expected: every generated file of {package} is up to date{note}")
        return 0
    written = generated.write(training=training)
    print(f"expected: {len(written)} generated file(s) of {package} rewritten "
          f"({', '.join(written) or 'none'}), the others equal within the tolerance (relative "
          f"{RTOL:g}: dlnn_reference/shipped.py){note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlnn-course", description="The instructor's command line of the course: one step a "
        "subcommand (python scripts/course.py is the same command).",
    )
    steps = parser.add_subparsers(dest="command", required=True, metavar="STEP")
    everything = steps.add_parser("all", aliases=["build"], help="expected + sync + generate + "
                                  "execute + both site editions (the README's set-up)")
    workers = {"type": int, "default": 2, "help": "notebooks executed at once (default 2)"}
    everything.add_argument("--workers", **workers)
    expected = steps.add_parser("expected", help="write the generated files of the student package "
                                "(expected values, precomputed data)")
    expected.add_argument("--check", action="store_true", help="only name the stale files (exit "
                          "status 1 when one is stale)")
    expected.add_argument("--training", action="store_true", help="include the files written by "
                          "training runs (minutes): " + ", ".join(generated.skipped(False)))
    sync = steps.add_parser("sync", help="write the Colab badge and install cells of the notebooks")
    sync.add_argument("--check", action="store_true", help="only report stale header cells")
    steps.add_parser("generate", help="nbgrader generate_assignment: solutions/ -> tutorials/")
    steps.add_parser("execute", help="run every student notebook top to bottom")
    site = steps.add_parser("site", help="build one edition of the site")
    site.add_argument(
        "--edition", choices=build.EDITIONS, default="student",
        help="the student edition (_build/html, solutions only for the tutorials listed in "
        "released_solutions.txt) or the instructor edition (_build/instructor/html, all solutions)",
    )
    site.add_argument("--workers", **workers)
    release = steps.add_parser("release", help="write (or --check) the student repository",
                               usage="%(prog)s DEST [--check] [--tutorials ID ...] [--workers N]")
    release.add_argument("dest", type=Path, metavar="DEST", help="the folder of the student "
                         "repository (a clone of it, or a new folder)")
    release.add_argument("--check", action="store_true", help="report every file of DEST that "
                         "differs from the release (exit status 1 on any difference)")
    release.add_argument("--workers", **workers)
    release.add_argument(
        "--tutorials", nargs="+", metavar="ID",
        help="the tutorials the student repository holds, e.g. --tutorials T1_DeepLinearNetworks "
        "T2_Optimisation (default: all; week by week, name the ones released so far; solutions "
        "stay per tutorial in released_solutions.txt)",
    )
    for name, description in GRADING.items():
        step = steps.add_parser(name, help=description, add_help=False)
        step.add_argument("arguments", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one step; returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in GRADING:  # the grader's own parser reads its arguments (and --help)
        from autograder.grading import cli

        return cli.main(argv[1:] if argv[0] == "grade" else argv)
    args = build_parser().parse_args(argv)
    if args.command == "expected":
        return cmd_expected(check=args.check, training=args.training)
    if args.command == "sync":
        return build.cmd_sync(check=args.check)
    if args.command == "generate":
        build.generate()
        return 0
    if args.command == "execute":
        return build.cmd_execute()
    if args.command == "site":
        return build.cmd_site(args.edition, workers=args.workers)
    if args.command == "release":
        return cmd_release(args.dest, check=args.check, workers=args.workers, tutorials=args.tutorials)
    if cmd_expected() != 0:
        return 1
    build.cmd_sync()
    build.generate()
    build.cmd_execute()
    return max(build.cmd_site(edition, workers=args.workers) for edition in build.EDITIONS)


if __name__ == "__main__":
    sys.exit(main())
