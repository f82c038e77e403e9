"""The student edition's own sources: no instructor page, only the tutorials released so far.

The site's sources (``_config.yml``, ``_toc.yml``, ``intro.md``, ``running.md``, ...) are written
for the instructor edition.  The student edition (``python scripts/course.py site --edition
student`` and the student repository that ``release`` writes) is built from a copy in which:

* the instructor page (``instructors.md``: the grader's internals, its weaknesses on a laptop, the
  private repository) is absent: its entry in ``_toc.yml`` is removed (with its part when that part
  lists nothing else), and so is every list item that links it (``{doc}`instructors```);
* only the tutorials of the release are listed (``release DEST --tutorials T1_... T2_...``, week by
  week): the other tutorials' table rows and list items are removed, and a link to one of them in
  running text becomes its plain ID.

So the student site never links a page it does not have (Sphinx would fail on it).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from courselayout import ROOT, course_layout, repository_path

INSTRUCTOR_PAGES = ("instructors",)
"""Pages of the instructor edition only (``_toc.yml`` file entries, without suffix)."""

_DOC = re.compile(r"\{doc\}`([^`<>]+?)`")


def _excluded(page: str, tutorials: list[str]) -> bool:
    if page in INSTRUCTOR_PAGES:
        return True
    return page.startswith("book/") and page.removeprefix("book/") not in tutorials


def toc(text: str, tutorials: list[str]) -> str:
    """``_toc.yml`` of the student edition (its header comment kept)."""
    data = yaml.safe_load(text)

    def keep(node):
        if isinstance(node, list):
            kept = [keep(item) for item in node]
            return [item for item in kept if item is not None]
        if isinstance(node, dict):
            if "file" in node and _excluded(node["file"], tutorials):
                return None
            out = {key: keep(value) for key, value in node.items()}
            for key in ("chapters", "sections", "parts"):
                if key in node and not out.get(key):
                    return None if "file" not in node else {k: v for k, v in out.items() if k != key}
            return out
        return node

    comments = [line for line in text.splitlines() if line.startswith("#")]
    body = yaml.safe_dump(keep(data), sort_keys=False, default_flow_style=False)
    return "\n".join([*comments, body.rstrip("\n")]) + "\n"


def markdown(text: str, tutorials: list[str]) -> str:
    """A page of the student edition: no table row or list item linking an excluded page; any
    other link to one becomes its name."""
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        links = [page for page in _DOC.findall(line) if _excluded(page, tutorials)]
        if links and line.lstrip().startswith("|"):
            index += 1  # a table row
            continue
        if links and line.lstrip().startswith(("- ", "* ")):
            indent = len(line) - len(line.lstrip())
            index += 1  # the item and its continuation lines
            while (index < len(lines) and lines[index].strip()
                   and len(lines[index]) - len(lines[index].lstrip()) > indent):
                index += 1
            continue
        out.append(_DOC.sub(lambda m: (f"`{m.group(1).split('/')[-1]}`"
                                       if _excluded(m.group(1), tutorials) else m.group(0)), line))
        index += 1
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def source(path: str, content: bytes, tutorials: list[str]) -> bytes | None:
    """The student edition's version of a site source file (None: not part of it)."""
    stem = path.rsplit(".", 1)[0]
    if stem in INSTRUCTOR_PAGES:
        return None
    if path == "_toc.yml":
        return toc(content.decode(), tutorials).encode()
    if path.endswith(".md") and "/" not in path:
        return markdown(content.decode(), tutorials).encode()
    return content


# ------------------------------------------------------------------------------------------------
# The site's own sources, as the instructor edition has them
# ------------------------------------------------------------------------------------------------

IGNORED = {"__pycache__", ".ipynb_checkpoints", ".DS_Store"}


def listed_files(folder: Path) -> list[Path]:
    """Every file under ``folder``, sorted, without caches, checkpoints and hidden files."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(".pyc")
        and not any(part in IGNORED or part.startswith(".") for part in p.relative_to(folder).parts)
    )


def copy_files(tree: dict[str, bytes], folder: Path) -> None:
    for path in listed_files(folder):
        tree[repository_path(path)] = path.read_bytes()


def site_sources() -> list[str]:
    """The site's own sources: ``_config.yml``, ``_toc.yml``, every page it lists outside ``book/``,
    ``_static/`` and the local Sphinx extensions of ``_config.yml``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    pages = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc.get("parts", toc.get("chapters", [])))
    sources = ["_config.yml", "_toc.yml", "_static"]
    for page in pages:
        if not page.startswith(course_layout().site_pages.name + "/"):
            sources.append(next(f"{page}{s}" for s in (".md", ".ipynb") if (ROOT / f"{page}{s}").is_file()))
    sources += sorted(set(config.get("sphinx", {}).get("local_extensions", {}).values()))
    return [s.rstrip("/") for s in sources]


def site_files() -> dict[str, bytes]:
    """Path -> content of every file of the site's own sources (:func:`site_sources`), as the
    instructor edition has them."""
    files: dict[str, bytes] = {}
    for source in site_sources():
        path = ROOT / source
        if path.is_dir():
            copy_files(files, path)
        else:
            files[source] = path.read_bytes()
    return files
