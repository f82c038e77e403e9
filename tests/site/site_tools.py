"""Helpers for the site tests: build both editions once, read the built HTML (not a test module)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..tools import course

EDITIONS = course.EDITIONS
RESOURCE_ATTRIBUTES = {"img": "src", "script": "src", "link": "href", "source": "src", "iframe": "src"}


@dataclass
class Page:
    """What the tests need of one HTML file: its links, resources, element ids and visible text."""

    path: Path
    links: list[str] = field(default_factory=list)  # href of <a>
    resources: list[str] = field(default_factory=list)  # src/href loaded by the browser
    images: list[str] = field(default_factory=list)  # src of <img>
    ids: set[str] = field(default_factory=set)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self, page: Page):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.skip = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.page.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.page.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href") is not None:
            self.page.links.append(attrs["href"])
        wanted = RESOURCE_ATTRIBUTES.get(tag)
        if wanted and attrs.get(wanted):
            if tag != "link" or attrs.get("rel") not in ("canonical",):
                self.page.resources.append(attrs[wanted])
        if tag == "img" and attrs.get("src"):
            self.page.images.append(attrs["src"])
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.chunks.append(data)


def read_page(path: Path) -> Page:
    page = Page(path)
    reader = _Reader(page)
    reader.feed(path.read_text(encoding="utf-8"))
    page.text = re.sub(r"\s+", " ", "".join(reader.chunks))
    return page


def html_files(site: Path) -> list[Path]:
    """Every HTML page of a built site, except Sphinx's copies of sources and downloads."""
    return sorted(
        p for p in site.rglob("*.html")
        if not p.relative_to(site).parts[0].startswith(("_sources", "_downloads", "_static"))
    )


def is_external(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


def resolve(page: Path, url: str) -> tuple[Path, str]:
    """The file a relative ``url`` of ``page`` points at, and its fragment."""
    parts = urlsplit(url)
    target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)
