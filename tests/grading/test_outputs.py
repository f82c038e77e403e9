"""Nothing leaks out, nothing is injected (issue 14, point 5).

What the grader writes for people — ``grades.csv``, terminal lines, feedback pages, the autograded
notebooks nbgrader's formgrader shows — carries no spreadsheet formula, no control characters, no
hidden test settings or host details and no active HTML, whatever a submission put in its file
name, its answers, its outputs or the messages its code raised.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import socket
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from autograder.grading import runner
from autograder.grading import spec as grading_spec
from autograder.grading.model import Result
from autograder.grading.outputs import feedback
from autograder.grading.outputs.report import (
    CSV_COLUMNS,
    csv_cell,
    neutralise_notebook,
    terminal_safe,
    write_grades,
)
from autograder.grading.protocol.cells import parse_test_cell

from . import fake_grading as fake
from .conftest import sandbox_settings
from .fake_grading import T1

FORMULAS = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x","y")']
SETTINGS = "{'seed': 8, 'shape': (30, 5)}"
HOSTNAME = re.compile(rf"(?<![\w.-]){re.escape(socket.gethostname())}(?![\w-])")


@pytest.mark.parametrize("text", FORMULAS)
def test_a_csv_cell_never_starts_a_formula(text):
    assert csv_cell(text) == "'" + text
    assert csv_cell("alice") == "alice" and csv_cell("9") == "9" and csv_cell("a=b") == "a=b"


def test_grades_csv_cells_never_start_a_formula(tmp_path):
    rows = [{"student": name, "tutorial": T1, "status": "rejected", "score": 0.0,
             "max_score": 9.0, "manual_max": 0.0, "file": f"{name}.ipynb",
             "scores": {"test_ex": 0.0}, "message": name} for name in FORMULAS]
    path = tmp_path / "grades.csv"
    write_grades(rows, path)
    with path.open(newline="", encoding="utf-8") as stream:
        read = list(csv.DictReader(stream))
    assert len(read) == len(FORMULAS)
    for row in read:
        assert set(row) == set(CSV_COLUMNS)
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert {row["student"][1:] for row in read} == set(FORMULAS)  # the text is kept after '


def test_terminal_lines_show_control_characters_escaped():
    line = terminal_safe("\x1b]0;owned\x07\x1b[2J\x1b[31mevil\rfake line\n\u202egnp.\x9b ok é ✅")
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in line)
    assert "\\x1b[2J" in line and "\\r" in line and "\\u202e" in line and "ok é ✅" in line


def _hostile_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "My answer: the loss falls <img src=x onerror=alert(1)> because $a<b$.\n"
        "<script>fetch('/api/contents')</script><a href='javascript:alert(2)'>see</a>"))
    cell = nbformat.v4.new_code_cell("display(HTML(...))")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={
            "text/html": "<script>alert(3)</script><b onmouseover='alert(4)'>bold</b>",
            "application/javascript": "alert(5)",
            "image/svg+xml": "<svg onload='alert(6)'/>",
            "application/vnd.jupyter.widget-view+json": {"model_id": "x"},
            "text/plain": "<IPython.core.display.HTML object>"}),
        nbformat.v4.new_output("execute_result", data={"text/markdown": "<iframe src=x>",
                                                       "image/png": "iVBORw0KGgo="},
                               execution_count=1),
        nbformat.v4.new_output("stream", name="stdout", text="<script>alert(7)</script>\n"),
    ]
    nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_raw_cell("<script>alert(8)</script>"))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"x": {"model_name": "HTMLModel", "state": {"value": "<script>alert(9)</script>"}}}}}
    return nb


class _LiveHTML(HTMLParser):
    """Collects the tags and attributes that a browser would run."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "svg"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or "javascript:" in str(value).lower():
                self.found.append(f"{tag} {name}")


def _active_html(nb: nbformat.NotebookNode) -> list[str]:
    """Every place of a notebook that an HTML export renders as live HTML that runs code."""
    found = []
    if "widgets" in nb.metadata:
        found.append("widget state")
    for cell in nb.cells:
        texts = [] if cell.cell_type == "code" else [cell.source]
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            found += [key for key in data if "javascript" in key or "svg" in key or "widget" in key]
            texts += [data.get("text/html", ""), data.get("text/markdown", "")]
        for text in texts:
            parser = _LiveHTML()
            parser.feed(str(text))
            found += parser.found
    return found


def test_autograded_notebooks_lose_their_active_html_but_keep_the_answer():
    nb = _hostile_notebook()
    assert len(_active_html(nb)) >= 8
    clean = nbformat.reads(neutralise_notebook(nbformat.writes(nb)), as_version=4)
    assert _active_html(clean) == []
    assert "My answer: the loss falls" in clean.cells[0].source
    assert "<img src=\"x\">" in clean.cells[0].source  # rendered, its handler gone
    assert "onerror" not in clean.cells[0].source and "javascript" not in clean.cells[0].source
    assert "$a&lt;b$" in clean.cells[0].source and "<a rel=" in clean.cells[0].source
    outputs = clean.cells[1].outputs
    assert outputs[0].data["text/plain"] == "<IPython.core.display.HTML object>"
    assert outputs[1].data["image/png"] == "iVBORw0KGgo="
    assert "<b>bold</b>" in outputs[0].data["text/html"]
    assert outputs[2].text == "<script>alert(7)</script>\n"  # plain text: escaped by any export


def _spec() -> grading_spec.TutorialSpec:
    source = ("# visible\n### BEGIN HIDDEN TESTS\ncheck_net_rsm(ex_net_rsm)\n"
              "check_net_rsm(ex_net_rsm, seed=8, shape=(30, 5))\n### END HIDDEN TESTS")
    calls = parse_test_cell("check_net_rsm(ex_net_rsm)\ncheck_net_rsm(ex_net_rsm, seed=8, "
                            "shape=(30, 5))")
    test = grading_spec.TestCell("test_ex_net_rsm", 2.0, source, "# visible", calls)
    return grading_spec.TutorialSpec(T1, {}, [test], {"answer": 1.0}, {"ex_net_rsm": ["ex_net_rsm"]},
                        ["check_net_rsm(ex_net_rsm, seed=8, shape=(30, 5))"])


def _leaky_messages() -> list[str]:
    return [
        f"ex_net_rsm raised ValueError: {SETTINGS}",
        "ex_net_rsm raised KeyError: seed=8 and 'shape': (30, 5) and \"seed\": 8",
        f"ex_net_rsm raised OSError: running on {socket.gethostname()} in {sys.prefix} "
        f"with {runner.COURSE_ROOT / 'solutions'}",
    ]


def test_feedback_carries_the_verdict_but_no_hidden_setting_or_host_detail():
    spec = _spec()
    for message in _leaky_messages():
        result = Result("mallory", T1, f"mallory/{T1}.ipynb", "0" * 64, "graded",
                        scores={"test_ex_net_rsm": 0.0}, maxima={"test_ex_net_rsm": 2.0},
                        verdicts={"test_ex_net_rsm": message + "\nHint: compute H Hᵀ"},
                        notes=[f"note: {SETTINGS}"])
        page = feedback.render(result, spec, None)
        for secret in (SETTINGS, "seed=8", "(30, 5)", "&#x27;seed&#x27;: 8", "&quot;seed&quot;: 8",
                       sys.prefix, str(runner.COURSE_ROOT)):
            assert secret not in page, (secret, message)
        assert not HOSTNAME.search(page), message
        assert "ex_net_rsm raised" in page and "Hint: compute H Hᵀ" in page
        assert feedback.REDACTED in page or feedback.HOST in page
    assert feedback.redact("seed=80 seed=8", [], ["seed=8"]) == f"seed=80 {feedback.REDACTED}"


def test_feedback_on_a_grader_failure_has_no_technical_detail():
    result = Result("bob", T1, f"bob/{T1}.ipynb", "0" * 64, "error",
                    message="the grader failed on this submission: OSError: /srv/secret/x.db",
                    notes=["Traceback (most recent call last):\n  File \"/srv/secret/worker.py\""],
                    scores={"test_ex_net_rsm": 0.0}, maxima={"test_ex_net_rsm": 2.0})
    page = feedback.render(result, _spec(), None)
    assert "/srv/secret" not in page and "Traceback" not in page
    assert feedback.GRADER_FAILED in page


def test_the_parent_scrubs_the_gradebook_password_and_its_folders():
    secrets = runner._secrets("postgresql://grader:s3cret-Pw@db.internal/dlnn",
                              [Path("/srv/grading/out"), Path("/srv/grading/in")])
    page = feedback.scrub("<pre>s3cret-Pw at /srv/grading/out/gradebook.db and "
                          "postgresql://grader:s3cret-Pw@db.internal/dlnn</pre>", secrets)
    assert "s3cret" not in page and "/srv/grading" not in page and "db.internal" not in page


@pytest.mark.grading
def test_a_graded_run_injects_nothing_and_leaks_nothing(tmp_path, monkeypatch):
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    hostile = _hostile_notebook()
    nb = fake.student_notebook(verdict=f"{SETTINGS} on {socket.gethostname()} in {output}")
    nb.cells = hostile.cells + nb.cells
    nb.metadata["widgets"] = hostile.metadata["widgets"]
    for name in ("@SUM(1+1)", "+1", '=HYPERLINK("x")'):
        nbformat.write(nb, inputs / f"{name}_{T1}.ipynb")
    (inputs / "\x1b[2J\x1b[31mevil.txt").write_text("x")
    lines: list[str] = []
    fake.run(monkeypatch, inputs, output, progress=lines.append)
    assert lines and not any("\x1b" in line for line in lines)
    assert any("\\x1b[2J" in line for line in lines)
    text = (output / "grades.csv").read_text(encoding="utf-8")
    for row in csv.reader(io.StringIO(text)):
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    assert "'@SUM_1+1" in text and "'=HYPERLINK" in text
    pages = list((output / "feedback").rglob("*.html"))
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        assert "(30, 5)" not in text and str(output) not in text
        assert not HOSTNAME.search(text)
    notebooks = list((output / "autograded").rglob("*.ipynb"))
    assert len(notebooks) == 3
    for path in notebooks:
        graded = nbformat.read(path, as_version=4)
        assert _active_html(graded) == [], path
        assert "My answer: the loss falls" in graded.cells[0].source


def test_a_feedback_page_stays_bounded_whatever_the_submission_holds():
    from autograder.grading.model import Prepared

    result = Result("huge", T1, f"huge/{T1}.ipynb", "0" * 64, "graded",
                    scores={"test_ex_net_rsm": 0.0}, maxima={"test_ex_net_rsm": 2.0},
                    verdicts={"test_ex_net_rsm": "x" * 10**6}, notes=["n"] * 10**5)
    prepared = Prepared(nbformat.v4.new_notebook(), solutions={"ex_net_rsm": "y = 1\n" * 10**6})
    page = feedback.render(result, _spec(), prepared)
    assert len(page) < 400_000
    assert "too long to show" in page


STEAL_AND_RAISE = '''def ex_net_rsm(h):
    import os, socket, sys
    found, frame = [], sys._getframe(1)
    while frame is not None:  # the recorder's and the check's frames hold the test's settings
        for name, value in list(frame.f_locals.items()):
            if isinstance(value, dict) and "seed" in value:
                found.append(repr(value))
            if name in ("seed", "shape"):
                found.append(f"{name}={value!r}")
        frame = frame.f_back
    if any(item.startswith("{") for item in found):  # a hidden call: tell the student its settings
        raise ValueError(f"{found} host {socket.gethostname()} in {os.getcwd()} {sys.prefix}")
    return h @ h.T'''
SHOW_HTML = '''from IPython.display import HTML, Javascript, display
display(HTML("<script>alert(1)</script><img src=x onerror=alert(2)>"))
display(Javascript("alert(3)"))'''


def test_a_real_kernel_cannot_carry_hidden_settings_or_host_details_into_feedback(
        grading_env, tmp_path):
    """One submission graded in a real sandboxed kernel (the session's prepared environment)."""
    from autograder.grading.synthetic import CORRECT, filled

    inputs = tmp_path / "in"
    (inputs / "mallory").mkdir(parents=True)
    nb = filled({**CORRECT, "ex_net_rsm": STEAL_AND_RAISE,
                 "think_svd": "The answer <img src=x onerror=alert(4)><script>alert(5)</script>"})
    where = next(i for i, c in enumerate(nb.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "ex_net_rsm")
    nb.cells.insert(where, nbformat.v4.new_code_cell(SHOW_HTML))
    nbformat.write(nb, inputs / "mallory" / f"{T1}.ipynb")
    output = grading_env.output(tmp_path / "out")
    result = runner.grade_class(inputs, output, course=grading_env.course, tutorials=[T1],
                                workers=1, settings=sandbox_settings(), progress=None)
    row = result.rows[0]
    assert row["status"] == "graded" and row["scores"]["test_ex_net_rsm"] == 0
    assert row["scores"]["test_ex_net_svd"] > 0  # the other answers are graded normally
    page = (output / "feedback" / "mallory" / f"{T1}.html").read_text()
    assert "ex_net_rsm raised ValueError" in page  # the attack ran and its message is shown
    spec = json.loads((output / "cache" / f"{T1}.json").read_text())
    test = next(t for t in spec["tests"] if t["grade_id"] == "test_ex_net_rsm")
    hidden = [call.settings for call in parse_test_cell(test["source"]) if call.settings]
    assert hidden
    # The attack did get the settings (the instructor's row has them), the student's page not.
    assert any(repr(settings) in row["verdicts"]["test_ex_net_rsm"] for settings in hidden)
    assert feedback.REDACTED in page
    for settings in hidden:
        leaks = [repr(settings)] + [f"{key}={value!r}" for key, value in settings.items()]
        for leak in leaks:
            assert html.escape(leak) not in page and leak not in page, leak
    for leak in (str(grading_env.course), sys.prefix, str(output)):
        assert leak not in page, leak
    assert not HOSTNAME.search(page)
    graded = nbformat.read(output / "autograded" / "mallory" / T1 / f"{T1}.ipynb", as_version=4)
    assert _active_html(graded) == []
    assert any("The answer" in c.source for c in graded.cells if c.cell_type == "markdown")
