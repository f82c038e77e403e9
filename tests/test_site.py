"""The course site builds with warnings as errors and shows every tutorial with its figures."""

from __future__ import annotations

import re

import nbformat
import pytest

from .notebook_tools import ROOT, TUTORIALS, course

HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="module")
def built_site():
    assert course.cmd_site() == 0, "jupyter-book build failed (warnings are errors)"
    return HTML


def _page(built_site, tutorial):
    return (built_site / "book" / f"{tutorial}.html").read_text()


def test_intro_page_links_every_tutorial(built_site):
    intro = (built_site / "intro.html").read_text()
    for tutorial in TUTORIALS:
        assert f"book/{tutorial}.html" in intro


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_tutorial_page_renders_figures_math_and_folded_solutions(built_site, tutorial):
    html = _page(built_site, tutorial)
    source = nbformat.read(course.solution_path(tutorial), as_version=4)
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    figure_cells = [
        c for c in source.cells
        if c.cell_type == "code" and re.search(r"\b(plot_\w+|\w+_widget)\(", c.source)
        and "def " not in c.source
    ]
    assert len(images) >= len(figure_cells) > 0
    for src in images:
        assert (built_site / "book" / src).resolve().is_file(), src
    solutions = [
        c for c in source.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    ]
    assert html.count("Show solution") == len(solutions)
    assert "Sample answer" in html
    assert 'class="math' in html
    assert "colab.research.google.com/github/" in html
    assert "BEGIN SOLUTION" not in html and "BEGIN HIDDEN TESTS" not in html
    assert "YOUR CODE HERE" not in html
    assert "widget-view+json" not in html  # figures do not depend on widget JavaScript
    assert "Traceback" not in html


def test_t1_page_shows_the_widget_figures(built_site):
    html = _page(built_site, "T1_DeepLinearNetworks")
    for start, end in [
        ("interactive-demo-2-2", "section-3-"),
        ("interactive-demo-4-2", "section-5-"),
    ]:
        section = html.split(f'<section id="{start}')[1].split(f'<section id="{end}')[0]
        assert re.search(r"<img[^>]+\.png", section), f"the widget figure of {start} is on the page"
