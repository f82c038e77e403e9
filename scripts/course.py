"""Build the course: student notebooks, executed notebooks and the static site.

Usage (from the repository root)::

    python scripts/course.py all        # sync + generate + execute + site (the README's main job)
    python scripts/course.py sync       # write the Colab badge / install cells from dlnn_helpers.course
    python scripts/course.py generate   # nbgrader generate_assignment: solutions/ -> tutorials/
    python scripts/course.py execute    # run every student notebook top to bottom (must not fail)
    python scripts/course.py site       # site pages from the solutions, then jupyter-book -> _build/html

The solution notebooks in ``solutions/`` are the single source.  The site shows them with every
solution collapsed behind a "Show solution" toggle, hidden tests removed and widgets drawn as static
figures (``DLNN_STATIC_WIDGETS=1``).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
TUTORIALS = ROOT / "tutorials"
SITE_PAGES = ROOT / "book"  # generated site pages (git-ignored), listed in _toc.yml

sys.path.insert(0, str(ROOT))
from dlnn_helpers.course import STATIC_ENV_VAR, colab_url, pip_requirement  # noqa: E402

HEADER_TAG = "course-header"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def tutorial_ids() -> list[str]:
    """Names of the tutorials: folders of ``solutions/`` holding a notebook of the same name."""
    return sorted(p.parent.name for p in SOLUTIONS.glob("*/*.ipynb") if p.stem == p.parent.name)


def solution_path(tutorial: str) -> Path:
    return SOLUTIONS / tutorial / f"{tutorial}.ipynb"


def student_path(tutorial: str) -> Path:
    return TUTORIALS / tutorial / f"{tutorial}.ipynb"


# ------------------------------------------------------------------------------------------------
# Header cells (Colab badge and Colab-only install), written from the one repository address
# ------------------------------------------------------------------------------------------------


def header_sources(tutorial: str) -> tuple[str, str]:
    """Markdown of the badge cell and code of the install cell of ``tutorial``."""
    url = colab_url(f"tutorials/{tutorial}/{tutorial}.ipynb")
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


def generate(root: Path = ROOT, tutorials: list[str] | None = None) -> None:
    """Run ``nbgrader generate_assignment`` for every tutorial of the course at ``root``."""
    (root / "autograder").mkdir(exist_ok=True)
    for tutorial in tutorials or tutorial_ids():
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", tutorial, "--force",
             "--log-level=ERROR"],
            cwd=root,
            env=tool_env(),
            check=True,
        )


# ------------------------------------------------------------------------------------------------
# Execution
# ------------------------------------------------------------------------------------------------


def execute_notebook(path: Path, timeout: int = 600, env: dict | None = None):
    """Execute a notebook in its own folder and return it (raises on an unhandled error).

    Widgets draw static figures (``DLNN_STATIC_WIDGETS=1``): with no front end to talk to, widget
    messages can stall a headless kernel (nbclient issue #312).  ``env`` adds more variables.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old_env = os.environ.copy()
    try:
        os.environ.update({STATIC_ENV_VAR: "1", **(env or {})})
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": path.parent}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    return nb


def cmd_execute() -> int:
    for tutorial in tutorial_ids():
        start = time.perf_counter()
        execute_notebook(student_path(tutorial))
        print(f"{tutorial}: student notebook ran in {time.perf_counter() - start:.1f} s")
    return 0


# ------------------------------------------------------------------------------------------------
# Site
# ------------------------------------------------------------------------------------------------


def _strip_markers(source: str) -> str:
    keep = [
        line for line in source.splitlines()
        if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
    ]
    return "\n".join(keep)


def site_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Turn a solution notebook into its site page.

    Solution code is shown collapsed behind "Show solution"; sample answers to the written
    questions sit in a collapsed "Sample answer" box; autograder test cells and the Colab install
    cell are removed.
    """
    page = copy.deepcopy(nb)
    for cell in page.cells:
        grading = cell.metadata.get("nbgrader", {})
        tags = cell.metadata.setdefault("tags", [])
        if grading.get("solution") and cell.cell_type == "code":
            cell.source = _strip_markers(cell.source)
            tags.append("hide-input")
            cell.metadata["mystnb"] = {
                "code_prompt_show": "Show solution",
                "code_prompt_hide": "Hide solution",
            }
        elif grading.get("solution") and cell.cell_type == "markdown":
            cell.source = (
                "````{admonition} Sample answer\n:class: dropdown\n\n" + cell.source + "\n````"
            )
        elif grading.get("grade") and cell.cell_type == "code":
            tags.append("remove-cell")
        cell.metadata.pop("nbgrader", None)
    return page


def write_site_pages() -> list[Path]:
    SITE_PAGES.mkdir(exist_ok=True)
    written = []
    for tutorial in tutorial_ids():
        target = SITE_PAGES / f"{tutorial}.ipynb"
        nbformat.write(site_notebook(nbformat.read(solution_path(tutorial), as_version=4)), target)
        written.append(target)
    return written


def cmd_site() -> int:
    write_site_pages()
    env = tool_env(**{STATIC_ENV_VAR: "1"})
    jupyter_book = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]
    result = subprocess.run(
        [*jupyter_book, "build", str(ROOT), "--all", "--warningiserror", "--keep-going", "--nitpick"],
        cwd=ROOT,
        env=env,
    )
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["all", "sync", "generate", "execute", "site"])
    parser.add_argument("--check", action="store_true", help="sync: only report stale headers")
    args = parser.parse_args(argv)
    if args.command == "sync":
        return cmd_sync(check=args.check)
    if args.command == "generate":
        generate()
        return 0
    if args.command == "execute":
        return cmd_execute()
    if args.command == "site":
        return cmd_site()
    cmd_sync()
    generate()
    cmd_execute()
    return cmd_site()


if __name__ == "__main__":
    sys.exit(main())
