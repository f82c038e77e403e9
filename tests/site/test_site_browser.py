"""Every page of both site editions, opened in headless Chromium with the network cut off.

A reader's view: the math is typeset by the site's own MathJax, every image has loaded, every
solution toggle opens and closes, search answers from the site's own index, nothing is fetched from
another host and the console shows no error.  One screenshot per page is saved under
``_build/screenshots/<edition>/`` (a CI artifact).

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it; ``DLNN_CHROMIUM`` names another
binary); Playwright drives it and downloads no browser of its own.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..tools import ROOT, TUTORIALS
from .site_tools import EDITIONS, html_files

CHROMIUM = os.environ.get("DLNN_CHROMIUM") or shutil.which("chromium") or ""
INSTALL_HINT = "install Debian's chromium (sudo apt-get install chromium) or set DLNN_CHROMIUM"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
if not Path(CHROMIUM).is_file() and not IN_CI:
    # Skipped at collection: nothing (the site build) is prepared for tests that cannot run.
    pytest.skip(f"browser tests need Chromium: {INSTALL_HINT}", allow_module_level=True)
pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = [
    "intro.html", "running.html", "instructors.html", "search.html", "genindex.html",
    *(f"book/{t}.html" for t in TUTORIALS),
]
INSTRUCTOR_ONLY = {"instructors.html"}  # the student edition has no instructor page


def pages(edition: str) -> set[str]:
    """The pages an edition's site holds."""
    return set(PAGES) - (INSTRUCTOR_ONLY if edition == "student" else set())
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
    # The network is off: no host name resolves except the local server's address.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


@contextlib.contextmanager
def _serving(folder: Path):
    """Serve ``folder`` on a free port of 127.0.0.1, as GitHub Pages would; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def servers(site_editions):
    """One local HTTP server per edition."""
    with contextlib.ExitStack() as stack:
        yield {edition: stack.enter_context(_serving(site_editions[edition])) for edition in EDITIONS}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():  # only in CI (skipped above otherwise): CI installs it
        pytest.fail(f"no Chromium ({CHROMIUM or 'not on PATH'}) on CI: {INSTALL_HINT}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """A page opened in a fresh browser context, with everything that went wrong recorded."""

    def __init__(self, browser, base: str, page: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        self.external: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_local(base))
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.response = self.page.goto(base + page, wait_until="load")

    def _only_local(self, base: str):
        def handle(route):
            url = route.request.url
            if url.startswith(base) or url.startswith("data:") or url.startswith("blob:"):
                route.continue_()
            else:
                self.external.append(url)
                route.abort("internetdisconnected")
        return handle

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, servers):
    opened = []

    def open_page(edition: str, page: str) -> Visit:
        opened.append(Visit(browser, servers[edition], page))
        return opened[-1]

    yield open_page
    for item in opened:
        item.close()


def test_every_built_page_is_visited(site_editions):
    for edition in EDITIONS:
        site = site_editions[edition]
        built = {p.relative_to(site).as_posix() for p in html_files(site)} - {"index.html"}
        assert built == pages(edition), edition  # index.html only redirects to intro.html


def _typeset(page) -> dict:
    return page.evaluate(
        """async () => {
            const maths = [...document.querySelectorAll('.math')];
            if (maths.length === 0) return {maths: 0, typeset: 0, errors: 0};
            for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
                await new Promise(r => setTimeout(r, 50));
            }
            await MathJax.startup.promise;
            return {
                maths: maths.length,
                typeset: maths.filter(m => m.querySelector('mjx-container')).length,
                errors: document.querySelectorAll('mjx-merror').length,
            };
        }"""
    )


def _images(page) -> dict:
    return page.evaluate(
        """async () => {
            const images = [...document.images];
            images.forEach(i => { i.loading = 'eager'; });
            await Promise.all(images.map(i => i.decode().catch(() => null)));
            return {
                count: images.length,
                broken: images.filter(i => !(i.complete && i.naturalWidth > 0))
                    .map(i => i.currentSrc || i.src),
            };
        }"""
    )


def _check_toggles(page) -> int:
    """Open and close every solution toggle; return how many there are."""
    count = 0
    for details in page.locator("details.hide").all():
        details.scroll_into_view_if_needed()
        body = details.locator(":scope > :not(summary)").first
        assert not details.evaluate("d => d.open") and not body.is_visible()
        details.locator(":scope > summary").click()
        assert details.evaluate("d => d.open") and body.is_visible(), "a solution toggle opens"
        details.locator(":scope > summary").click()
        assert not details.evaluate("d => d.open") and not body.is_visible(), "and closes"
        count += 1
    for box in page.locator(".admonition.dropdown").all():
        box.scroll_into_view_if_needed()
        body = box.locator(":scope > :not(.admonition-title)").first
        assert not body.is_visible(), "a sample answer starts folded"
        box.locator(":scope > .admonition-title").click()
        body.wait_for(state="visible", timeout=5000)
        box.locator(":scope > .admonition-title").click()
        body.wait_for(state="hidden", timeout=5000)
        count += 1
    return count


@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("edition", EDITIONS)
def test_page_in_a_browser_without_network(site_editions, visit, edition, page_name):
    if page_name not in pages(edition):
        pytest.skip(f"the {edition} edition has no {page_name} (instructor edition only)")
    seen = visit(edition, page_name)
    page = seen.page
    assert seen.response is not None and seen.response.status == 200

    maths = _typeset(page)
    assert maths["typeset"] == maths["maths"] and maths["errors"] == 0, maths
    if page_name.startswith("book/"):
        assert maths["maths"] > 0, "tutorial pages have math"

    images = _images(page)
    assert images["broken"] == [], images["broken"]
    if page_name.startswith("book/"):
        assert images["count"] > 1  # the Colab badge and the figures
        badge = page.locator('a[href^="https://colab.research.google.com/github/"] img')
        assert badge.count() == 1 and badge.evaluate("i => i.naturalWidth") > 0

    toggles = _check_toggles(page)
    solutions_shown = page_name.startswith("book/") and edition == "instructor"
    assert (toggles > 0) == solutions_shown, toggles

    page.evaluate("window.scrollTo(0, 0)")  # sticky sidebars are drawn where the page was left
    shot = SCREENSHOTS / edition / (Path(page_name).stem + ".png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    assert seen.external == [], "the page asked another host for something"
    assert seen.failed == []
    assert seen.errors == []


@pytest.mark.parametrize("edition", EDITIONS)
def test_search_answers_from_the_site_index(site_editions, visit, edition):
    seen = visit(edition, "search.html?q=singular+value")
    results = seen.page.locator("#search-results li")
    results.first.wait_for(timeout=20_000)
    found = {urlsplit(a).path.rsplit("/", 1)[-1] for a in results.locator("a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )}
    assert "T1_DeepLinearNetworks.html" in found
    assert seen.external == [] and seen.errors == []


def test_the_browser_checks_catch_a_broken_page(browser, tmp_path):
    """The same checks, on a page with an external script, a missing image and a JavaScript error."""
    (tmp_path / "page.html").write_text(
        '<html><head><script src="https://cdn.example.org/lib.js"></script></head><body>'
        '<img src="missing.png">'
        "<script>undefinedFunction()</script></body></html>"
    )
    with _serving(tmp_path) as base:
        seen = Visit(browser, base, "page.html")
        assert seen.external == ["https://cdn.example.org/lib.js"]
        assert _images(seen.page)["broken"][0].endswith("/missing.png")
        assert any("undefinedFunction" in error for error in seen.errors)
        seen.close()
