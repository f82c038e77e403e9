"""The formgrader, as the instructor opens it, runs nothing a student wrote (issue 19, point 5).

A class is graded (worker without a kernel, :mod:`.fake_grading`) with a submission whose written
answers and outputs carry every usual way of running script; ``python -m autograder formgrade``'s
server (nbgrader's formgrader extension on the output folder) is started, and the submission's
page is opened in headless Chromium.  Every payload would set ``window.__pwned`` or the page's
title: on the page of the graded submission, none does.  The same page for the submission as
submitted (its autograded notebook replaced by the raw one, which the grader never writes) runs the
payloads: the check can fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.grading.outputs import formgrade

from ..site.test_site_browser import CHROMIUM, CHROMIUM_ARGS, INSTALL_HINT
from . import fake_grading as fake
from .fake_grading import T1

pytestmark = [pytest.mark.browser, pytest.mark.grading, pytest.mark.slow]

MARKDOWN = "\n\n".join([
    "My answer: the loss plateaus, then drops.",
    "<img src=x onerror=\"window.__pwned='img'; document.title='pwned'\">",
    "<script>window.__pwned='script'</script>",
    "<svg><script>window.__pwned='svg script'</script></svg><svg onload=\"window.__pwned='svg'\">",
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
    "<details open ontoggle=\"window.__pwned='details'\"><summary>x</summary></details>",
    "<object data=\"data:text/html,<script>parent.__pwned='object'</script>\"></object>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"window.__pwned='mxss'\">",
    "[a link](javascript:window.__pwned='link') <a href=\"javascript:window.__pwned='a'\">b</a>",
    "![diagram](attachment:evil.svg)",
    "$x<y$ and <b onmouseover=\"window.__pwned='hover'\">bold</b>",
])
EVIL_SVG = ("<svg xmlns='http://www.w3.org/2000/svg' onload=\"window.__pwned='attachment'\">"
            "<script>window.__pwned='attachment script'</script></svg>")
PROBE = """() => ({
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
    title: document.title,
    answer: document.body.innerText.includes('My answer: the loss plateaus'),
    javascriptLinks: document.querySelectorAll('a[href^="javascript:" i]').length,
    handlers: [...document.querySelectorAll('.text_cell_render *, .output_area *')]
        .filter(e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    frames: document.querySelectorAll('.text_cell_render iframe, .text_cell_render object').length,
})"""


def _hostile() -> nbformat.NotebookNode:
    """Tutorial 1's student notebook with the payloads in every written answer and an output."""
    nb = fake.student_notebook()
    answers, outputs = 0, 0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution"):
            cell.source = MARKDOWN
            cell.attachments = {"evil.svg": {"image/svg+xml": EVIL_SVG}}
            answers += 1
        elif cell.cell_type == "code" and meta.get("solution") and not outputs:
            outputs += 1
            cell.outputs = [nbformat.v4.new_output("display_data", data={
                "text/html": "<img src=x onerror=\"window.__pwned='output html'\">",
                "text/markdown": "[out](javascript:window.__pwned='output markdown')",
                "application/javascript": "window.__pwned='output js'",
                "text/plain": "output"})]
    assert answers >= 2
    return nb


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"no Chromium at {CHROMIUM} on CI: {INSTALL_HINT}")
        pytest.skip(f"browser tests need Chromium: {INSTALL_HINT}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_the_formgraders_page_of_a_hostile_submission_runs_none_of_it(tmp_path, monkeypatch,
                                                                       chromium):
    inputs, output = tmp_path / "in", tmp_path / "out"
    for student in ("mallory", "control"):
        (inputs / student).mkdir(parents=True)
        nbformat.write(_hostile(), inputs / student / f"{T1}.ipynb")
    fake.run(monkeypatch, inputs, output)
    raw = nbformat.writes(_hostile())
    control = output / "autograded" / "control" / T1 / f"{T1}.ipynb"
    assert control.read_text() != raw  # the grader wrote it cleaned ...
    control.write_text(raw)  # ... and this is what an uncleaned page would show
    gradebook = Gradebook(f"sqlite:///{output / 'gradebook.db'}")
    ids = {s: gradebook.find_submission_notebook(T1, T1, s).id for s in ("mallory", "control")}
    gradebook.close()

    formgrade.write_config(output)
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    server = subprocess.Popen(
        formgrade.server_command(output, port, False, [f"--IdentityProvider.token={token}"]),
        cwd=output, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/formgrader?token={token}", timeout=5)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the formgrader did not start in 60 s"
                time.sleep(0.3)
        seen = {}
        for student, submission in ids.items():
            page = chromium.new_page()
            page.goto(f"{base}/formgrader/submissions/{submission}/?token={token}",
                      wait_until="load", timeout=60_000)
            page.wait_for_timeout(1500)  # late handlers (onload of frames, toggles)
            for element in page.query_selector_all(".text_cell_render b"):
                element.hover()
            seen[student] = page.evaluate(PROBE)
            page.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert seen["control"]["pwned"] is not None, seen["control"]  # the probe sees a payload run
    mallory = seen["mallory"]
    assert mallory["answer"], mallory  # the page shows the written answer ...
    assert mallory["pwned"] is None and mallory["title"] != "pwned", mallory  # ... and runs none
    assert mallory["javascriptLinks"] == 0 and mallory["handlers"] == 0, mallory
    assert mallory["frames"] == 0, mallory
