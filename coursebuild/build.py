"""Build the course: student notebooks, executed notebooks and the static site.

The steps of the instructor's command line (``dlnn-course``, or ``python scripts/course.py``:
``coursebuild.cli``)::

    dlnn-course all        # expected + sync + generate + execute + both site editions (README)
    dlnn-course sync       # write the Colab badge / install cells from dlnn_helpers.course
    dlnn-course generate   # nbgrader generate_assignment: solutions/ -> tutorials/
    dlnn-course execute    # run every student notebook top to bottom (must not fail)
    dlnn-course site --edition student     # the published site -> _build/html
    dlnn-course site --edition instructor  # with solutions -> _build/instructor/html

The solution notebooks in ``solutions/`` are the single source.  The site build executes each of
them once (the *reference run*, cached in ``_build/reference`` until the notebook or
``dlnn_helpers`` changes), with widgets drawn as static figures (``DLNN_STATIC_WIDGETS=1``), and
writes both editions' pages from it: the instructor edition folds every solution behind a "Show
solution" toggle; the student edition shows each exercise as the student notebook has it, with the
figures of the reference run, and shows solutions only for the tutorials listed in
``released_solutions.txt``.  Hidden tests never reach a page.  A failing cell or any output on
stderr fails the build, and so does any Sphinx warning.

This repository is the instructor's; students use the repository that ``release DEST`` writes (see
``coursebuild.release``).
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import nbformat

from courselayout import ROOT, course_layout, repository_path, solution_path, student_path, tutorial_ids
from dlnn_helpers.course import STATIC_ENV_VAR, colab_url, pip_requirement

from . import student_site
from .warm_kernels import WarmKernels

SITE_PAGES = course_layout().site_pages  # generated site pages (git-ignored), listed in _toc.yml

HEADER_TAG = "course-header"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"




# ------------------------------------------------------------------------------------------------
# Header cells (Colab badge and Colab-only install), written from the one repository address
# ------------------------------------------------------------------------------------------------


def header_sources(tutorial: str) -> tuple[str, str]:
    """Markdown of the badge cell and code of the install cell of ``tutorial``."""
    url = colab_url(repository_path(student_path(tutorial)))
    badge = f"[![Open In Colab]({BADGE})]({url})"
    install = (
        "# Set-up for Google Colab: install the course helpers (elsewhere they are installed "
        "already).\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "--quiet", "{pip_requirement()}"],\n'
        "        check=True,\n"
        "    )"
    )
    return badge, install


def sync_headers(nb: nbformat.NotebookNode, tutorial: str) -> bool:
    """Rewrite the two header cells of a solution notebook; return True when anything changed."""
    badge, install = header_sources(tutorial)
    headers = [c for c in nb.cells if HEADER_TAG in c.metadata.get("tags", [])]
    if len(headers) != 2 or headers[0].cell_type != "markdown" or headers[1].cell_type != "code":
        raise ValueError(
            f"{tutorial}: the notebook must start with a markdown and a code cell tagged "
            f"'{HEADER_TAG}'"
        )
    changed = False
    for cell, source in zip(headers, (badge, install), strict=True):
        if cell.source != source:
            cell.source = source
            changed = True
    return changed


def cmd_sync(check: bool = False) -> int:
    stale = []
    for tutorial in tutorial_ids():
        path = solution_path(tutorial)
        nb = nbformat.read(path, as_version=4)
        if sync_headers(nb, tutorial):
            stale.append(tutorial)
            if not check:
                nbformat.write(nb, path)
    if check and stale:
        print("header cells out of date in: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------------------
# Student notebooks (nbgrader)
# ------------------------------------------------------------------------------------------------


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for a child process, with this interpreter's scripts folder on PATH.

    nbgrader runs ``alembic`` and Jupyter finds kernels through PATH; this keeps them inside the
    environment that runs this script, activated or not.
    """
    scripts = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=scripts + os.pathsep + os.environ.get("PATH", ""), **extra)


def nbgrader(root: Path, *args: str, **env: str) -> int:
    """Run the command ``nbgrader ARGS`` in the course at ``root``, in this process; return its exit
    status.

    The grader's :func:`~autograder.grading.nbgrader_app.run_nbgrader` (nbgrader's own application,
    as nbgrader's test suite starts it, without a fresh interpreter for every command), with
    :func:`tool_env`'s ``PATH`` (the kernels are found on it) and ``env`` (more variables for
    nbgrader and its kernels) while it runs.  What nbgrader printed is written to stdout, or to
    stderr when the command failed.
    """
    from autograder.grading.nbgrader_app import run_nbgrader

    status, printed = run_nbgrader(root, *args, env=tool_env(**env))
    (sys.stdout if status == 0 else sys.stderr).write(printed)
    return status


def generate(root: Path = ROOT, tutorials: list[str] | None = None) -> None:
    """Run ``nbgrader generate_assignment`` for every tutorial of the course at ``root`` (nbgrader
    in this process: :func:`nbgrader`); raise when one fails (nbgrader said why)."""
    course_layout(root).work.mkdir(exist_ok=True)
    for tutorial in tutorials or tutorial_ids():
        if nbgrader(root, "generate_assignment", tutorial, "--force", "--log-level=ERROR") != 0:
            raise RuntimeError(f"nbgrader generate_assignment {tutorial} failed in {root}")


# ------------------------------------------------------------------------------------------------
# Execution
# ------------------------------------------------------------------------------------------------


def kernel_env(env: dict | None = None) -> dict[str, str]:
    """The environment of a kernel of the build: widgets draw static figures
    (``DLNN_STATIC_WIDGETS=1``: with no front end to talk to, widget messages can stall a headless
    kernel, nbclient issue #312), then ``env``."""
    return tool_env(**{STATIC_ENV_VAR: "1", **(env or {})})


def execute_notebook(path: Path, timeout: int = 600, env: dict | None = None,
                     kernels: WarmKernels | None = None):
    """Execute a notebook in its own folder and return it (raises on an unhandled error).

    The kernel's environment is :func:`kernel_env` (``env`` adds variables); each kernel gets its
    own, so several notebooks may run at once from threads.  With ``kernels``, the kernel is forked
    from that warm interpreter when its environment allows it
    (:meth:`~coursebuild.warm_kernels.WarmKernels.manager_for`), else started fresh.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    environment = kernel_env(env)
    manager = kernels.manager_for(environment) if kernels is not None else None
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": path.parent}},
        # ipykernel 7 warns on its own stderr that the local TCP channel is not encrypted.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        **({"kernel_manager_class": manager} if manager is not None else {}),
    ).execute(env=environment)
    return nb


def cmd_execute() -> int:
    for tutorial in tutorial_ids():
        start = time.perf_counter()
        execute_notebook(student_path(tutorial))
        print(f"{tutorial}: student notebook ran in {time.perf_counter() - start:.1f} s")
    return 0


# ------------------------------------------------------------------------------------------------
# Reference run: the solution notebooks executed once, the figures of both site editions
# ------------------------------------------------------------------------------------------------

BUILD = course_layout().build
REFERENCE = BUILD / "reference"
REFERENCE_KEY = "dlnn_reference_key"


class SiteBuildError(RuntimeError):
    """A notebook of the site failed: it raised, or it wrote to stderr."""


def reference_key(tutorial: str) -> str:
    """Hash of everything a reference run depends on: the solution notebook, the helpers (modules and
    data files) and the instructor's reference package."""
    digest = hashlib.sha256()
    packages = [
        p for folder in (course_layout().student_package, course_layout().reference_package)
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in p.parts
    ]
    sources = [solution_path(tutorial), *sorted(packages)]
    for path in sources:
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def check_reference_outputs(nb: nbformat.NotebookNode, name: str) -> None:
    """Raise :class:`SiteBuildError` when a cell of an executed notebook failed or wrote to stderr."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                raise SiteBuildError(f"{name}: cell {index} raised {output.ename}: {output.evalue}")
            if output.output_type == "stream" and output.name == "stderr":
                raise SiteBuildError(f"{name}: cell {index} wrote to stderr:\n{output.text}")


REFERENCE_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30),
}
"""The environment of every reference run's kernel (under the caller's ``env``).

* One thread each (torch, NumPy's BLAS): the build runs two kernels at once on a 2-core machine,
  and each kernel's own threads then fight over the cores.  Measured on the 2-core development
  machine (issue 22, under load): tutorial 1's solution notebook took 57 s of CPU and 82 s with
  torch's default of one thread per core, 9.4 s of CPU and 18 s with one thread.  The training runs
  of tutorials 3 and 4 are on one thread anyway (``run_test``).
* glibc's ``malloc`` keeps the memory a kernel frees (``MALLOC_*_THRESHOLD_``, ignored by other C
  libraries): by default each full-batch epoch's 4 MB activations are fresh pages from the
  operating system, zeroed on first touch (up to 5,000 page faults an epoch), and an epoch of
  tutorial 3's 3 × 128 network costs 18 to 22 ms of CPU instead of 14 ms.  The numbers computed are
  the same either way."""


def execute_reference(path: Path, name: str | None = None, env: dict[str, str] | None = None,
                      kernels: WarmKernels | None = None) -> nbformat.NotebookNode:
    """Execute a notebook for the site (kernel environment :data:`REFERENCE_ENV`, then ``env``;
    forked from ``kernels`` when given); :class:`SiteBuildError` says which cell failed and how."""
    from nbclient.exceptions import CellExecutionError

    name = name or path.stem
    try:
        nb = execute_notebook(path, env={**REFERENCE_ENV, **(env or {})}, kernels=kernels)
    except CellExecutionError as error:
        raise SiteBuildError(f"{name}: the notebook failed while executing:\n{error}") from error
    check_reference_outputs(nb, name)
    return nb


class RunSplit(NamedTuple):
    """How a tutorial's training runs are shared between two kernels
    (:mod:`dlnn_helpers.run_sharing`): the second kernel trains the *split run*, every run after it
    and the earlier runs of ``also``; the first kernel trains the others."""

    split: str
    also: tuple[str, ...] = ()


SHARED_RUNS = {"T3_TrainingDeepNetworks": RunSplit("3 layers × 128, ReLU, BCE, Adam lr 0.01")}
"""Tutorials whose training runs the reference run shares between two kernels, one core each,
and how (:class:`RunSplit`).  Each kernel goes on to the other tutorials' reference runs as soon as
it is done (:data:`REFERENCE_ORDER`), so the split only has to leave both kernels enough of them to
end together.  Measured on the 2-core development machine (issue 22, one thread a kernel,
:data:`REFERENCE_ENV`, kernels forked from a warm interpreter), quiet, the whole cold build:

* split at the run with weight decay (the first kernel trains 8,060 epochs of the 3 × 128
  network): the first kernel ends tutorial 3 at 97 s while the second has done everything else
  at 83 s (97 s in all); the second kernel also training the sigmoid run (the first run: the first
  kernel then waits for it) 98 s; also the tanh run 89, 91 and 98 s;
* split here, at the Adam run without weight decay (7,080 epochs before it): the first kernel
  ends tutorial 3 at 76 to 82 s, the second at 61 to 66 s, and the other tutorials fill both:
  89 and 95 s in all (90 s with :data:`REFERENCE_ORDER`'s former order).

Two 3 × 128 networks trained at the same time slow each other (memory traffic: its 8,000 × 128
activations do not fit a core's cache), so moving such a run to the second kernel gains less than
its own time.  The runs are chaotic, so another CPU may train them for other numbers of epochs
(the course's recorded runs are ``dlnn_helpers/data/precomputed_runs.json``)."""

REFERENCE_ORDER = ("T3_TrainingDeepNetworks", "T6_ReLUFeatures", "T4_WeightInitialisation",
                   "T5_MultilayerPerceptrons", "T1_DeepLinearNetworks", "T2_Optimisation")
"""The reference runs longest first (forked kernels, one thread each: tutorial 3 by far, then 6
about 12 s, 4 10 s, 5 7 s, 1 6 s, 2 5 s), so that the short ones fill both cores at the end; a
tutorial not listed comes last."""


def _cached_reference(tutorial: str) -> nbformat.NotebookNode | None:
    """The cached reference run of ``tutorial`` when it is current, else None."""
    cached = REFERENCE / f"{tutorial}.ipynb"
    if cached.is_file():
        nb = nbformat.read(cached, as_version=4)
        if nb.metadata.get(REFERENCE_KEY) == reference_key(tutorial):
            return nb
    return None


def _store_reference(tutorial: str, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata[REFERENCE_KEY] = reference_key(tutorial)
    REFERENCE.mkdir(parents=True, exist_ok=True)
    cached = REFERENCE / f"{tutorial}.ipynb"
    partial = cached.with_suffix(".partial")
    nbformat.write(nb, partial)
    partial.replace(cached)
    return nb


def _shared_helper(tutorial: str, folder: str, kernels: WarmKernels | None = None) -> None:
    """The second kernel of a shared reference run: it trains the runs from the split run on
    (its own outputs are checked, then dropped); when it fails, the first kernel is told."""
    from dlnn_helpers import run_sharing
    from dlnn_helpers.deep_training import RECORD_ENV_VAR

    # Runs recorded (``DLNN_RECORD_RUNS``) are recorded once, by the first kernel, which replays them.
    try:
        execute_reference(solution_path(tutorial), f"{tutorial} (second kernel)",
                          env={run_sharing.ENV_VAR: run_sharing.setting(folder, "helper",
                                                                        *SHARED_RUNS[tutorial]),
                               RECORD_ENV_VAR: ""}, kernels=kernels)
    except BaseException as error:
        run_sharing.mark_failed(folder, str(error))
        raise


def reference_notebook(tutorial: str, fresh: bool = False) -> nbformat.NotebookNode:
    """The executed solution notebook of ``tutorial`` (the reference run), cached in ``_build``.

    The cache is keyed by :func:`reference_key`; ``fresh=True`` executes the notebook even when the
    cache is current (the notebook tests do, and leave the result for the site build).  A tutorial
    of :data:`SHARED_RUNS` runs in two kernels at once.
    """
    return reference_notebooks([tutorial], fresh=fresh)[tutorial]


def warm_kernels(stack) -> WarmKernels | None:
    """A warm interpreter for the reference runs' kernels (:mod:`coursebuild.zygote`: the imports
    paid once, not once a notebook), closed with ``stack``; ``None`` (a fresh kernel per notebook,
    the same outputs) where it cannot run: not on Linux (it needs ``fork``, ``prctl`` and process
    file descriptors), or when it fails to start (the reason is printed)."""
    from .warm_kernels import WarmKernelsError

    if not sys.platform.startswith("linux"):
        return None
    try:
        return stack.enter_context(WarmKernels(kernel_env(REFERENCE_ENV)))
    except WarmKernelsError as error:
        print(f"a fresh kernel for every reference run ({error})", flush=True)
        return None


def reference_notebooks(tutorials: list[str], workers: int = 2,
                        fresh: bool = False) -> dict[str, nbformat.NotebookNode]:
    """Reference runs of several tutorials, ``workers`` kernels at a time, longest first.

    With two workers or more, a tutorial of :data:`SHARED_RUNS` takes two of them at once (its runs
    shared between two kernels); the other reference runs follow on the workers as they free up,
    so that every core stays busy to the end.  ``fresh=True`` executes even the cached ones.
    """
    import tempfile
    from contextlib import ExitStack

    from dlnn_helpers import run_sharing

    done = {} if fresh else {t: nb for t in tutorials if (nb := _cached_reference(t)) is not None}
    rank = {tutorial: i for i, tutorial in enumerate(REFERENCE_ORDER)}
    todo = sorted((t for t in tutorials if t not in done), key=lambda t: rank.get(t, len(rank)))
    shared = [t for t in todo if t in SHARED_RUNS and workers >= 2]
    todo = shared + [t for t in todo if t not in shared]  # both kernels of a shared run start first
    with ExitStack() as stack:
        kernels = warm_kernels(stack) if todo else None
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=max(1, workers)))
        runs, helpers = {}, []
        for tutorial in todo:
            env = None
            if tutorial in shared:
                folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="dlnn-shared-runs-"))
                env = {run_sharing.ENV_VAR: run_sharing.setting(folder, "main", *SHARED_RUNS[tutorial])}
                helpers.append(pool.submit(_shared_helper, tutorial, folder, kernels))
            runs[tutorial] = pool.submit(execute_reference, solution_path(tutorial), tutorial, env,
                                         kernels)
        executed = {tutorial: _store_reference(tutorial, run.result()) for tutorial, run in runs.items()}
        for helper in helpers:
            helper.result()
    return {tutorial: done.get(tutorial) or executed[tutorial] for tutorial in tutorials}


# ------------------------------------------------------------------------------------------------
# Site: two editions from the same reference run
# ------------------------------------------------------------------------------------------------

EDITIONS = ("student", "instructor")
RELEASED_SOLUTIONS = ROOT / "released_solutions.txt"
SITE_BADGE = "_static/colab-badge.svg"  # served by the site itself (no image from Google)


def edition_output(edition: str) -> Path:
    """Folder of the built HTML of an edition: the published student site is ``_build/html``."""
    return BUILD / "html" if edition == "student" else BUILD / edition / "html"


def released_solutions(path: Path = RELEASED_SOLUTIONS) -> list[str]:
    """Tutorials whose solutions the student edition shows (``released_solutions.txt``).

    One tutorial ID a line; ``#`` starts a comment.  An unknown ID is an error, so that a typo does
    not silently keep solutions hidden.
    """
    if not path.is_file():
        return []
    known = set(tutorial_ids())
    released = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if name not in known:
            raise SiteBuildError(
                f"{path.name}, line {number}: {name!r} is not a tutorial (known: {', '.join(sorted(known))})"
            )
        released.append(name)
    return released


def _strip_markers(source: str) -> str:
    markers = course_layout().markers
    return "\n".join(line for line in source.splitlines() if not markers.is_solution_marker(line))


def site_header(tutorial: str, edition: str) -> str:
    """Markdown of a page's first cell: the Colab badge and the download links."""
    notebook = repository_path(student_path(tutorial))
    lines = [
        f"[![Open in Colab](../{SITE_BADGE})]({colab_url(notebook)})",
        "",
        f"{{download}}`Download the notebook <../{notebook}>` to run it in Jupyter on your computer.",
    ]
    if edition == "instructor":
        instructor = repository_path(solution_path(tutorial))
        lines.append(
            f"{{download}}`Download the instructor notebook <../{instructor}>` (solutions and hidden tests)."
        )
    return "\n".join(lines)


def site_notebook(
    reference: nbformat.NotebookNode,
    student: nbformat.NotebookNode | None = None,
    show_solutions: bool = True,
    header: str | None = None,
) -> nbformat.NotebookNode:
    """Turn an executed solution notebook into a site page.

    With ``show_solutions`` the solution code is folded behind "Show solution" and the sample
    answers to the written questions behind "Sample answer".  Without, each exercise shows the
    student's version of the cell (from ``student``, matched by nbgrader's ``grade_id``) with no
    output, and self-check cells (code calling ``self_check``) show no output either.  Every other
    cell keeps the output of the reference run.  Autograder test cells and the Colab install cell
    are removed; ``header`` (the site's badge and download links) replaces the notebook's badge and
    follows the title cell.
    """
    page = copy.deepcopy(reference)
    page.metadata.pop(REFERENCE_KEY, None)
    exercises = {}
    if student is not None:
        exercises = {
            c.metadata["nbgrader"]["grade_id"]: c
            for c in student.cells
            if c.metadata.get("nbgrader", {}).get("solution")
        }
    for cell in page.cells:
        grading = cell.metadata.get("nbgrader", {})
        tags = cell.metadata.setdefault("tags", [])
        is_exercise = bool(grading.get("solution"))
        if HEADER_TAG in tags and cell.cell_type == "markdown" and header is not None:
            tags.append("remove-cell")  # the page's own header follows the title instead
        elif is_exercise and show_solutions and cell.cell_type == "code":
            cell.source = _strip_markers(cell.source)
            tags.append("hide-input")
            cell.metadata["mystnb"] = {
                "code_prompt_show": "Show solution",
                "code_prompt_hide": "Hide solution",
            }
        elif is_exercise and show_solutions:
            cell.source = (
                "````{admonition} Sample answer\n:class: dropdown\n\n" + cell.source + "\n````"
            )
        elif is_exercise and cell.cell_type == "code":
            cell.source = _student_cell(exercises, grading["grade_id"]).source
            cell.outputs = []
            cell.execution_count = None
        elif is_exercise:
            cell.source = (
                "```{admonition} Your answer\n:class: tip\n\n"
                "Write your answer in this cell of the notebook.\n```"
            )
        elif grading.get("grade") and cell.cell_type == "code":
            tags.append("remove-cell")
        elif not show_solutions and cell.cell_type == "code" and "self_check(" in cell.source:
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("nbgrader", None)
    if header is not None:
        title = next(
            i for i, c in enumerate(page.cells) if c.cell_type == "markdown" and c.source.startswith("# ")
        )
        cell = nbformat.v4.new_markdown_cell(header, metadata={"tags": [HEADER_TAG]})
        cell.id = "site-header"  # not a random id: the same source gives the same page (release)
        page.cells.insert(title + 1, cell)
    return page


def _student_cell(exercises: dict, grade_id: str) -> nbformat.NotebookNode:
    if grade_id not in exercises:
        raise SiteBuildError(
            f"exercise {grade_id!r} is missing from the student notebook: "
            "run `python scripts/course.py generate`"
        )
    return exercises[grade_id]


def write_site_pages(
    edition: str, released: list[str] | None = None, workers: int = 2, target: Path = SITE_PAGES,
    tutorials: list[str] | None = None,
) -> list[Path]:
    """Write the page ``<ID>.ipynb`` of every tutorial of ``edition`` into ``target`` (``book/``).

    The pages come from the reference runs (executed here when they are not cached: a machine
    that never built them runs them first); ``released`` (default: ``released_solutions.txt``)
    lists the tutorials whose solutions the student edition shows; ``tutorials`` (default: all)
    the tutorials that get a page.
    """
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, not {edition!r}")
    released = released_solutions() if released is None else released
    tutorials = tutorial_ids() if tutorials is None else tutorials
    references = reference_notebooks(tutorials, workers=workers)
    target.mkdir(exist_ok=True)
    written = []
    for tutorial in tutorials:
        page = site_notebook(
            references[tutorial],
            nbformat.read(student_path(tutorial), as_version=4),
            show_solutions=edition == "instructor" or tutorial in released,
            header=site_header(tutorial, edition),
        )
        path = target / f"{tutorial}.ipynb"
        nbformat.write(page, path)
        written.append(path)
    return written


def write_student_sources(folder: Path, tutorials: list[str] | None = None) -> list[str]:
    """Write the student edition's site sources (without pages) into ``folder``; return their paths
    inside it.  ``tutorials`` (default: all) are the tutorials the edition lists."""
    tutorials = tutorial_ids() if tutorials is None else tutorials
    written = []
    for path, content in student_site.site_files().items():
        text = student_site.source(path, content, tutorials)
        if text is None:
            continue
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text)
        written.append(path)
    for tutorial in tutorials:  # the pages' download links serve the student notebooks
        path = repository_path(student_path(tutorial))
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(student_path(tutorial), target)
        written.append(path)
    return written


def jupyter_book_command(book: Path, output: Path) -> list[str]:
    """The Jupyter Book build of ``book`` into ``output/_build/html``: every Sphinx warning (broken
    reference, missing image, stderr output of a page) is an error, reported all at once."""
    return [
        sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
        "build", str(book), "--path-output", str(output), "--all",
        "--warningiserror", "--keep-going", "--nitpick", "--quiet",
    ]


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def cmd_site(edition: str = "student", workers: int = 2) -> int:
    """Build one edition of the site into :func:`edition_output` (warnings are errors)."""
    start = time.perf_counter()
    work = BUILD / ".editions" / edition
    shutil.rmtree(work, ignore_errors=True)
    book = ROOT
    try:
        if edition == "student":  # its own sources: no instructor page (coursebuild.student_site)
            book = work / "source"
            write_student_sources(book)
            write_site_pages(edition, workers=workers, target=book / SITE_PAGES.name)
        else:
            write_site_pages(edition, workers=workers)
    except SiteBuildError as error:
        print(f"site ({edition} edition): {error}", file=sys.stderr)
        return 1
    pages_ready = time.perf_counter()
    result = subprocess.run(
        jupyter_book_command(book, work), cwd=book, env=tool_env(), stdout=subprocess.PIPE, text=True
    )
    if result.returncode != 0:  # Sphinx's warnings went to stderr; its progress report follows
        print(result.stdout, f"site ({edition} edition): jupyter-book build failed", file=sys.stderr)
        return result.returncode
    target = edition_output(edition)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(work / "_build" / "html"), target)
    shutil.rmtree(work, ignore_errors=True)
    end = time.perf_counter()
    print(
        f"site ({edition} edition): {target.relative_to(ROOT)} in {end - start:.1f} s "
        f"(pages {pages_ready - start:.1f} s, jupyter-book {end - pages_ready:.1f} s), "
        f"{_size(target) / 2**20:.1f} MiB"
    )
    return 0
