"""Sphinx extension of the course site: each inline script appears once per page.

With Sphinx 7.4, sphinx-thebe and sphinx-togglebutton add their inline configuration scripts twice
to every page.  The second ``const THEBE_JS_URL = ...`` then throws "Identifier has already been
declared" in the browser console.  This extension drops exact duplicates (same file, same inline
body, same attributes) from the page's script list, keeping the first of each.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _key(script: Any) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""  # inline scripts: None or ""
    return (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
