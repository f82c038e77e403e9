"""The course site: both editions build with warnings as errors, and every page is complete.

The browser checks (math typeset, images loaded, toggles, console) are in test_site_browser.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from dlnn_helpers.course import BRANCH, STUDENT_REPOSITORY

from ..tools import ROOT, TUTORIALS, course
from .site_tools import EDITIONS, html_files, is_external, read_page, resolve

COLAB = re.compile(r"^https://colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/(.+)$")
WIDGET_CALL = re.compile(r"\b\w+_widget\(")


def _tutorial_page(site: Path, tutorial: str):
    return read_page(site / "book" / f"{tutorial}.html")


def _page_notebook(tutorial: str, show_solutions: bool) -> nbformat.NotebookNode:
    return course.site_notebook(
        course.reference_notebook(tutorial),
        nbformat.read(course.student_path(tutorial), as_version=4),
        show_solutions=show_solutions,
    )


def _png_outputs(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        if "remove-cell" not in cell.metadata.get("tags", [])
        for output in cell.get("outputs", [])
    )


def _exercises(tutorial: str, cell_type: str) -> list[nbformat.NotebookNode]:
    nb = nbformat.read(course.solution_path(tutorial), as_version=4)
    return [
        c for c in nb.cells
        if c.cell_type == cell_type and c.metadata.get("nbgrader", {}).get("solution")
    ]


def _solution_only_lines(tutorial: str) -> list[str]:
    """Distinctive lines of the solutions that the student notebook does not contain."""
    student = nbformat.read(course.student_path(tutorial), as_version=4)
    student_text = "\n".join(c.source for c in student.cells)
    lines = []
    for cell in _exercises(tutorial, "code"):
        body = cell.source.split("### BEGIN SOLUTION")[1:]
        for part in body:
            for line in part.split("### END SOLUTION")[0].splitlines():
                line = line.strip()
                if len(line) >= 25 and line not in student_text and not line.startswith("#"):
                    lines.append(line)
    return lines


# ------------------------------------------------------------------------------------------------
# Structure
# ------------------------------------------------------------------------------------------------


def test_table_of_contents_follows_the_curriculum():
    toc = (ROOT / "_toc.yml").read_text()
    listed = re.findall(r"file: book/(\S+)", toc)
    # The course order is the tutorials' numbers (T1 ... T6), which the landing page's table lists.
    order = sorted(TUTORIALS, key=lambda t: int(re.match(r"T(\d+)_", t).group(1)))
    assert listed == order
    intro = (ROOT / "intro.md").read_text()
    positions = [intro.find(f"book/{t}") for t in order]
    assert -1 not in positions and positions == sorted(positions), "intro.md lists the tutorials in order"
    for page in ("running", "instructors"):
        assert f"file: {page}" in toc


def test_both_editions_have_every_page_and_only_the_instructors_have_theirs(site_editions):
    for edition in EDITIONS:
        site = site_editions[edition]
        for name in ("index.html", "intro.html", "running.html", "search.html"):
            assert (site / name).is_file(), (edition, name)
        intro = read_page(site / "intro.html")
        for tutorial in TUTORIALS:
            assert f"book/{tutorial}.html" in intro.links, (edition, tutorial)
        assert "running.html" in intro.links
        instructors = edition == "instructor"
        assert (site / "instructors.html").is_file() == instructors, edition
        assert ("instructors.html" in intro.links) == instructors, edition
    student = site_editions["student"]
    assert not any("instructors.html" in p.read_text(errors="ignore")
                   for p in student.rglob("*.html")), "a student page links the instructor page"


# ------------------------------------------------------------------------------------------------
# Tutorial pages
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_every_figure_of_the_reference_run_is_on_the_page(site_editions, edition, tutorial):
    page = _tutorial_page(site_editions[edition], tutorial)
    figures = [src for src in page.images if src.endswith(".png")]
    expected = _png_outputs(_page_notebook(tutorial, show_solutions=edition == "instructor"))
    assert expected > 0 and len(figures) == expected
    reference = course.reference_notebook(tutorial)
    widgets = [c for c in reference.cells if c.cell_type == "code" and WIDGET_CALL.search(c.source)]
    for cell in widgets:  # every widget drew its figure as a static image in the reference run
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell.outputs)


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_instructor_edition_folds_every_solution(site_editions, tutorial):
    page = _tutorial_page(site_editions["instructor"], tutorial)
    html = page.path.read_text()
    assert html.count("Show solution") == len(_exercises(tutorial, "code"))
    answers = html.count('<p class="admonition-title">Sample answer</p>')
    assert answers == len(_exercises(tutorial, "markdown"))
    for line in _solution_only_lines(tutorial)[:20]:
        assert line in page.text
    for hidden in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "YOUR CODE HERE", "Autograder test"):
        assert hidden not in page.text
    assert "Traceback" not in page.text


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_student_edition_shows_exercises_without_solutions(site_editions, tutorial):
    page = _tutorial_page(site_editions["student"], tutorial)
    if tutorial in course.released_solutions():  # published after its deadline: like the instructor's
        assert page.text.count("Show solution") == len(_exercises(tutorial, "code"))
        for hidden in ("BEGIN HIDDEN TESTS", "Autograder test", "BEGIN SOLUTION"):
            assert hidden not in page.text
        return
    solution_lines = _solution_only_lines(tutorial)
    assert solution_lines
    leaked = [line for line in solution_lines if line in page.text]
    assert leaked == []
    assert "Show solution" not in page.text and "Sample answer" not in page.text
    assert page.text.count("raise NotImplementedError") >= len(_exercises(tutorial, "code"))
    assert page.text.count("Write your answer in this cell") == len(_exercises(tutorial, "markdown"))
    for hidden in ("BEGIN HIDDEN TESTS", "Autograder test", "✅", "Traceback"):
        assert hidden not in page.text


def test_released_solutions_are_shown_in_the_student_edition(tmp_path, site_editions):
    released = TUTORIALS[0]
    pages = course.write_site_pages("student", released=[released], target=tmp_path)
    shown = {p.stem: nbformat.read(p, as_version=4) for p in pages}
    def solutions(nb):
        return sum("Show solution" in str(c.metadata.get("mystnb", {})) for c in nb.cells)
    assert solutions(shown[released]) == len(_exercises(released, "code"))
    for other in TUTORIALS[1:]:
        assert solutions(shown[other]) == 0


def test_released_solutions_file_is_read_strictly(tmp_path):
    listing = tmp_path / "released.txt"
    listing.write_text(f"# a comment\n\n{TUTORIALS[1]}  # after the deadline\n")
    assert course.released_solutions(listing) == [TUTORIALS[1]]
    listing.write_text("T1_DeepLinearNetwork\n")
    with pytest.raises(course.SiteBuildError, match="line 1: 'T1_DeepLinearNetwork' is not a tutorial"):
        course.released_solutions(listing)
    assert course.released_solutions(tmp_path / "absent.txt") == []
    assert set(course.released_solutions()) <= set(TUTORIALS)  # the committed file is valid


# ------------------------------------------------------------------------------------------------
# Links, downloads, Colab, offline
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_internal_link_and_image_resolves(site_editions, edition):
    site = site_editions[edition]
    pages = html_files(site)
    assert len(pages) >= 3 + len(TUTORIALS)
    broken = []
    for path in pages:
        page = read_page(path)
        for url in page.links + page.resources:
            if is_external(url) or url.startswith(("mailto:", "data:", "javascript:")):
                continue
            target, fragment = resolve(path, url)
            if not target.is_file():
                broken.append(f"{path.relative_to(site)}: {url} (no such file)")
            elif fragment and target.suffix == ".html" and fragment not in read_page(target).ids:
                broken.append(f"{path.relative_to(site)}: {url} (no element #{fragment})")
    assert broken == []


@pytest.mark.parametrize("edition", EDITIONS)
def test_nothing_is_loaded_from_another_host(site_editions, edition):
    site = site_editions[edition]
    external = []
    for path in html_files(site):
        for url in read_page(path).resources:
            if is_external(url) and not url.startswith("data:"):
                external.append(f"{path.relative_to(site)}: {url}")
    assert external == []
    mathjax = list(site.rglob("tex-chtml*.js")) + list(site.rglob("tex-mml-chtml*.js"))
    assert mathjax, "MathJax is served by the site"
    assert (site / "searchindex.js").is_file()


@pytest.mark.parametrize("edition", EDITIONS)
def test_colab_links_point_at_student_notebooks_in_the_repository(site_editions, edition):
    site = site_editions[edition]
    tracked = set(
        subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
        .stdout.split()
    )
    owner_repo = STUDENT_REPOSITORY.removeprefix("https://github.com/")
    seen = {}
    for path in html_files(site):
        for url in read_page(path).links:
            match = COLAB.match(url)
            if url.startswith("https://colab.research.google.com"):
                assert match, url
            if match:
                assert match.group(1) == owner_repo and match.group(2) == BRANCH, url
                assert match.group(3) in tracked, f"{url}: not a file of the repository"
                seen.setdefault(path.stem, set()).add(match.group(3))
    for tutorial in TUTORIALS:
        assert seen.get(tutorial) == {f"tutorials/{tutorial}/{tutorial}.ipynb"}, tutorial


@pytest.mark.parametrize("edition", EDITIONS)
def test_download_links_serve_the_notebooks(site_editions, edition):
    site = site_editions[edition]
    for tutorial in TUTORIALS:
        page = _tutorial_page(site, tutorial)
        downloads = []  # both notebooks are called <ID>.ipynb, in different folders
        for url in page.links:
            if "_downloads/" in url:
                target, _ = resolve(page.path, url)
                assert target.name == f"{tutorial}.ipynb"
                downloads.append(target.read_bytes())
        student = course.student_path(tutorial).read_bytes()
        assert student in downloads, f"{tutorial}: the student notebook is downloadable"
        solution = course.solution_path(tutorial).read_bytes()
        assert (solution in downloads) == (edition == "instructor")


# ------------------------------------------------------------------------------------------------
# Failures fail the build
# ------------------------------------------------------------------------------------------------


def _notebook(tmp_path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "page.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_failing_cell_fails_the_site_build(tmp_path):
    path = _notebook(tmp_path, "raise ValueError('the figure data is missing')")
    with pytest.raises(course.SiteBuildError, match="page: the notebook failed") as error:
        course.execute_reference(path)
    assert "the figure data is missing" in str(error.value)


def test_output_on_stderr_fails_the_site_build(tmp_path):
    path = _notebook(tmp_path, "import warnings\nwarnings.warn('deprecated call')")
    with pytest.raises(course.SiteBuildError, match="cell 1 wrote to stderr"):
        course.execute_reference(path)


@pytest.mark.slow  # a fresh interpreter or kernel: seconds
def test_a_reference_run_computes_on_one_thread(tmp_path):
    """The build runs two reference kernels at once on two cores: each on one thread (torch and
    NumPy's BLAS), with glibc's malloc keeping the memory it frees (``REFERENCE_ENV``)."""
    path = _notebook(tmp_path, "import os, torch\nprint(torch.get_num_threads(), "
                               "os.environ['OPENBLAS_NUM_THREADS'], os.environ['MALLOC_TRIM_THRESHOLD_'])")
    nb = course.execute_reference(path)
    assert nb.cells[1].outputs[0].text.split() == ["1", "1", str(2**30)]


@pytest.mark.slow  # a fresh interpreter or kernel: seconds
def test_a_sphinx_warning_fails_the_build(tmp_path):
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    shutil.copytree(ROOT / "_ext", tmp_path / "_ext")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    page = tmp_path / "intro.md"

    def build() -> subprocess.CompletedProcess:
        return subprocess.run(
            course.jupyter_book_command(tmp_path, tmp_path / "out"),
            cwd=tmp_path, env=course.tool_env(), capture_output=True, text=True, timeout=600,
        )

    page.write_text("# A page\n\nWith $x^2$ and a {download}`download <_toc.yml>`.\n")
    built = build()
    assert built.returncode == 0, built.stdout + built.stderr
    page.write_text("# A page\n\nSee {doc}`a_page_that_does_not_exist`.\n")
    broken = build()
    assert broken.returncode != 0
    assert "a_page_that_does_not_exist" in broken.stderr


def test_editions_are_built_apart_and_stay_small(site_editions):
    student, instructor = site_editions["student"], site_editions["instructor"]
    assert student == ROOT / "_build" / "html" and instructor == ROOT / "_build" / "instructor" / "html"
    for edition in EDITIONS:
        size = sum(p.stat().st_size for p in site_editions[edition].rglob("*") if p.is_file())
        assert size < 200 * 2**20, f"{edition}: {size / 2**20:.0f} MiB"
    released = course.released_solutions()
    for tutorial in TUTORIALS:
        assert "Show solution" in (instructor / "book" / f"{tutorial}.html").read_text()
        shown = "Show solution" in (student / "book" / f"{tutorial}.html").read_text()
        assert shown == (tutorial in released), tutorial
