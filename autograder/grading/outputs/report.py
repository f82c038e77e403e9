"""What the grader writes for people: ``grades.csv``, the instructor report, terminal lines and
the autograded notebooks nbgrader's formgrader shows — none of which a submission can turn into
an attack on the person reading it.

* :func:`csv_cell`: a cell of ``grades.csv`` never starts a spreadsheet formula;
* :func:`terminal_safe`: control characters (ANSI escape sequences, carriage returns, bidi
  overrides) from file names or messages are shown escaped, never sent to the terminal;
* :func:`neutralise_notebook`: active HTML (scripts, event handlers, ``javascript:`` links, widgets,
  JavaScript and SVG outputs and attachments) is removed from a notebook by well-kept sanitisers:
  nh3 for the written answers (:func:`clean_markdown`), nbconvert's ``SanitizeHTML`` (bleach) for
  outputs and raw cells;
* :func:`atomic_write`: a file is replaced whole or not at all (a crash never leaves half of it).
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import io
import json
import os
import re
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

from . import mistakes

CSV_COLUMNS = ["student", "tutorial", "status", "score", "max_score", "manual_score", "manual_max",
               "total", "total_max", "hand_grading", "file", "exercises", "shortcuts", "problem"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula (or becomes one) in a spreadsheet (OWASP)."""
SHORTCUT_FLAG = "&#9873; shortcut"
"""The marker of a refused shortcut in ``report.html`` (a flag and the word)."""
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def csv_cell(value: object) -> str:
    """The text of one CSV cell, prefixed with ``'`` when a spreadsheet would run it."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def terminal_safe(text: str) -> str:
    """``text`` with every control character escaped (``\\x1b``, ``\\n``, ``\\u202e``)."""
    out = []
    for char in str(text):
        if char in _BIDI or unicodedata.category(char) in ("Cc", "Cs"):
            escaped = repr(char)[1:-1]
            out.append(escaped if escaped != char else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def atomic_write(path: Path, data: str | bytes, durable: bool = False) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace``.

    ``durable``: also ``fsync`` the data before the rename (the file survives a power cut too).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(raw)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


MARKDOWN_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
"""What a written answer may keep once rendered: text structure, links and images; no script,
style, frame, form, SVG or MathML (nh3 removes every event handler and unknown attribute)."""
MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
                       "td": {"align"}, "th": {"align"}}
RASTER_IMAGES = ("image/png", "image/jpeg")
"""The only attachments of a markdown cell kept (an SVG or HTML attachment can carry script)."""


def _url_allowed(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: a ``data:`` URL only as a raster image's source."""
    if attribute in ("href", "src") and value.strip().lower().startswith("data:"):
        kind = value.strip().lower()[5:].split(";", 1)[0].split(",", 1)[0]
        return value if tag == "img" and attribute == "src" and kind in RASTER_IMAGES else None
    return value


def clean_markdown(source: str, attachments: dict | None = None) -> str:
    """A written answer (markdown, maybe with HTML and attachments) as inert HTML on one line.

    The markdown is rendered the way nbconvert renders it (math kept for MathJax, raster
    attachments embedded), then cleaned by nh3 (the ammonia sanitiser) down to
    :data:`MARKDOWN_TAGS`, with links only to ``http``, ``https`` and ``mailto`` and images only
    from those or as embedded PNG/JPEG/GIF.  The result is one HTML block without line breaks
    (breaks inside ``<pre>`` become ``&#10;``), so a page that renders it as markdown again
    (nbgrader's formgrade template does) passes it through unchanged and never turns text into a
    link.
    """
    if not attachments:  # the tutorial's own cells come in every notebook: rendered once
        return _clean_plain_markdown(str(source))
    return _clean_markdown(source, attachments)


@functools.lru_cache(maxsize=1024)
def _clean_plain_markdown(source: str) -> str:
    """:func:`clean_markdown` of a cell without attachments (a pure function of its text)."""
    return _clean_markdown(source, None)


def _clean_markdown(source: str, attachments: dict | None) -> str:
    """:func:`clean_markdown`, uncached."""
    import nh3
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class Renderer(IPythonRenderer):
        def _embed_image_or_attachment(self, src: str) -> str:
            try:
                return super()._embed_image_or_attachment(src)
            except Exception:  # noqa: BLE001 - a missing attachment: its link is dropped by nh3
                return src

    safe = {}
    for name, bundle in (attachments or {}).items():
        if isinstance(bundle, dict):
            safe[str(name)] = {k: v for k, v in bundle.items()
                               if k in RASTER_IMAGES and isinstance(v, str)}
    try:
        renderer = Renderer(escape=False, attachments=safe, exclude_anchor_links=True)
        rendered = MarkdownWithMath(renderer=renderer).render(str(source))
    except Exception:  # noqa: BLE001 - a missing attachment, odd markup: shown as plain text
        rendered = f"<pre>{html.escape(str(source))}</pre>"
    cleaned = nh3.clean(rendered, tags=MARKDOWN_TAGS, attributes=MARKDOWN_ATTRIBUTES,
                        url_schemes={"http", "https", "mailto", "data"},
                        attribute_filter=_url_allowed, link_rel="noopener noreferrer nofollow",
                        strip_comments=True)
    parts = re.split(r"(<pre\b.*?</pre>)", cleaned, flags=re.DOTALL | re.IGNORECASE)
    one_line = "".join(part.replace("\n", "&#10;") if index % 2 else part.replace("\n", " ")
                       for index, part in enumerate(parts))
    return f"<div class='answer'>{one_line}</div>"


def neutralise_notebook(text: str) -> str:
    """A notebook (JSON text) with everything a student wrote made inert, for nbgrader's formgrader.

    Markdown cells (the written answers) are rendered and cleaned by :func:`clean_markdown` (nh3)
    with their attachments: kept only as embedded PNG/JPEG/GIF images.  nbconvert's
    :class:`~nbconvert.preprocessors.sanitize.SanitizeHTML` escapes HTML in raw cells, cleans
    ``text/html`` outputs with bleach and drops every output type that can run code (JavaScript,
    SVG, widget views); a ``text/markdown`` output is cleaned like a markdown cell.  The widget
    state in the notebook's metadata, which the HTML export would render, is dropped too.
    """
    import nbformat
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    class Sanitizer(SanitizeHTML):
        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "markdown":
                cell.source = clean_markdown(cell.source, cell.pop("attachments", None))
                return cell, resources
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "text/markdown" in data:  # cleaned here, then passed as safe by SanitizeHTML
                    value = data.pop("text/markdown")
                    if isinstance(value, str):
                        data["text/markdown"] = clean_markdown(value)
            return super().preprocess_cell(cell, resources, index)

        def sanitize_html_tags(self, html_str: str) -> str:
            if not any(char in html_str for char in "<>&"):
                return html_str  # no markup at all: bleach would return it unchanged
            return super().sanitize_html_tags(html_str)

    notebook = nbformat.from_dict(json.loads(text))
    if notebook.get("nbformat") != 4 or not isinstance(notebook.get("cells"), list):
        raise ValueError("not a version 4 notebook")
    notebook.setdefault("metadata", {}).pop("widgets", None)
    for cell in notebook.cells:
        if isinstance(cell.get("source"), list):
            cell.source = "".join(cell.source)
        if cell.get("cell_type") != "markdown":
            cell.pop("attachments", None)
        for output in cell.get("outputs", []):
            for key, value in list(output.get("data", {}).items()):
                if (isinstance(value, list) and not key.endswith("json")
                        and all(isinstance(line, str) for line in value)):
                    output.data[key] = "".join(value)  # a multi-line string, as nbformat splits it
    sanitizer = Sanitizer(safe_output_keys=SanitizeHTML().safe_output_keys | {"text/markdown"},
                          sanitized_output_types={"text/html"})
    notebook, _ = sanitizer.preprocess(notebook, {})
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_grades(rows: list[dict], path: Path) -> None:
    """One row per student and tutorial (and per unidentifiable file), sorted; written atomically.

    ``score`` is the autograded points, ``manual_score`` the written answers marked by hand (empty
    until one is), ``total`` both together (see :mod:`~autograder.grading.outputs.handgrades`).

    No cell starts a spreadsheet formula (:func:`csv_cell`).
    """
    stream = io.StringIO(newline="")
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: (str(r["student"]), str(r["tutorial"]), str(r["file"]))):
        cells = {
            **row,
            "score": f"{row['score']:g}",
            "max_score": f"{row['max_score']:g}",
            "manual_max": f"{row['manual_max']:g}",
            "manual_score": "" if row.get("manual_score") is None else f"{row['manual_score']:g}",
            "total": f"{row.get('total', row['score']):g}",
            "total_max": f"{row.get('total_max', row['max_score'] + row['manual_max']):g}",
            "hand_grading": row.get("hand_grading", ""),
            "exercises": ";".join(f"{k}={v:g}" for k, v in row["scores"].items()),
            "shortcuts": ";".join(sorted(row.get("shortcuts") or {})),
            "problem": row["message"],
        }
        writer.writerow({column: csv_cell(cells.get(column, "")) for column in CSV_COLUMNS})
    atomic_write(path, stream.getvalue(), durable=True)


def _figure(tutorial: str, rows: list[dict], maxima: dict[str, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = list(maxima)
    fig = Figure(figsize=(3.0 * (len(names) + 1), 2.8), layout="constrained")
    axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
    for ax, name in zip(axes, names, strict=False):
        counts = Counter(r["scores"].get(name, 0.0) for r in rows)
        values = sorted(set(counts) | {0.0, maxima[name]})
        ax.bar([f"{v:g}" for v in values], [counts.get(v, 0) for v in values], color="#4c72b0")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("points")
        ax.set_ylabel("submissions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    totals = [r["score"] for r in rows]
    axes[-1].hist(totals, bins=max(1, int(sum(maxima.values())) + 1),
                  range=(-0.5, sum(maxima.values()) + 0.5), color="#dd8452")
    axes[-1].set_title("total (autograded)", fontsize=9)
    axes[-1].set_xlabel("points")
    axes[-1].yaxis.set_major_locator(MaxNLocator(integer=True))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    alt = f"score distribution of {html.escape(tutorial)}"
    return f"<img alt='{alt}' src='data:image/png;base64,{encoded}'>"


def write_report(path: Path, rows: list[dict], maxima: dict[str, dict[str, float]],
                 replaced: list[tuple[str, str]], run: dict) -> None:
    """The instructor report (one HTML file with its figures embedded).

    Parameters
    ----------
    path : Path
        Where to write it.
    rows : list of dict
        Every row of ``grades.csv`` (with ``scores``, ``notes`` and ``message``).
    maxima : dict
        Tutorial -> graded test -> points.
    replaced : list of (file, replaced by)
        Earlier submissions that a resubmission replaced.
    run : dict
        Facts about the run (``sandbox``, ``workers``, ``seconds``, ``graded_now``, ...).
    """
    esc = html.escape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Grading report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:75rem;margin:2rem auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
        "text-align:left;vertical-align:top}</style></head><body>",
        "<h1>Grading report</h1>",
        f"<p>{len(rows)} submission(s): {sum(r['status'] == 'graded' for r in rows)} graded, "
        f"{sum(r['status'] != 'graded' for r in rows)} not gradable (zero rows). "
        f"{run.get('graded_now', 0)} graded in this run with {esc(str(run.get('executor')))} in "
        f"{run.get('seconds', 0):.0f} s; the others were unchanged since the last run.</p>",
        f"<p>Sandbox: {esc(run.get('sandbox', ''))}.</p>",
    ]
    if run.get("memory_peak"):
        out.append(f"<p>Peak memory of a grading slot: {run['memory_peak'] / 2**20:.0f} MiB "
                   "(the most any submission of this run used, its kernel's processes and the "
                   "slot's warm interpreter together, as the control groups measured it).</p>")
    for tutorial, problems in sorted(run.get("reference_problems", {}).items()):
        out.append(f"<p><strong>Warning: the reference solution of {esc(tutorial)} does not pass "
                   f"every test</strong> (fix the tutorial): {esc('; '.join(problems))}</p>")
    weak: dict[str, set[str]] = {}
    for r in rows:
        weak.setdefault(r["tutorial"], set()).update(r.get("in_process", []))
    weak = {t: names for t, names in weak.items() if names}
    if weak:
        out.append(
            "<p>Judged inside the student's own process (classes driven by the check, or "
            "functions given callbacks, cannot be replayed; these verdicts are not "
            "monkeypatch-proof): "
            + "; ".join(f"{esc(t)}: {esc(', '.join(sorted(n)))}" for t, n in sorted(weak.items()))
            + ".</p>"
        )
    flagged = [(r, test, why) for r in rows if isinstance(r.get("review"), dict)
               for test, why in sorted(r["review"].items())]
    if flagged:
        out.append("<h2>Flagged for review</h2><p>Answers a person should look at: an "
                   "optimiser whose trajectory is bitwise identical to the library routine the "
                   "exercise asks to write, or code of the exercise that the checks cannot watch "
                   "(names built at run time, threads or processes, the interpreter's profiling "
                   "changed, torch's private internals), named by exercise, cell and line; their "
                   "points stand until a person decides.</p>"
                   "<table><tr><th>Student</th><th>Tutorial</th><th>Test</th><th>Why</th></tr>")
        for r, test, why in sorted(flagged, key=lambda f: (str(f[0]["student"]), f[1])):
            out.append(f"<tr><td>{esc(str(r['student']))}</td><td>{esc(str(r['tutorial']))}</td>"
                       f"<td>{esc(str(test))}</td><td>{esc(str(why))}</td></tr>")
        out.append("</table>")
    refused = [(r, test, why) for r in rows if isinstance(r.get("shortcuts"), dict)
               for test, why in sorted(r["shortcuts"].items())]
    if refused:
        out.append("<h2>Shortcuts refused</h2><p>Tests scored 0 because the exercise used a "
                   "routine it exists to replace, or read the course's expected answers (found "
                   "where the code ran, or in its text); the student's feedback says the same."
                   "</p><table><tr><th>Flag</th><th>Student</th><th>Tutorial</th><th>Test</th>"
                   "<th>What</th></tr>")
        for r, test, why in sorted(refused, key=lambda f: (str(f[0]["student"]), f[1])):
            out.append(f"<tr><td>{SHORTCUT_FLAG}</td><td>{esc(str(r['student']))}</td>"
                       f"<td>{esc(str(r['tutorial']))}</td><td>{esc(str(test))}</td>"
                       f"<td>{esc(str(why))}</td></tr>")
        out.append("</table>")
    problems = [r for r in rows if r["status"] != "graded" or r["notes"]]
    out.append("<h2>Problems found in submissions</h2>")
    if problems or replaced:
        out.append("<table><tr><th>Student</th><th>Tutorial</th><th>File</th><th>Status</th>"
                   "<th>What</th></tr>")
        for r in sorted(problems, key=lambda r: (r["student"], r["tutorial"])):
            what = [r["message"]] if r["message"] else []
            what += [n.splitlines()[0] for n in r["notes"]]
            out.append(
                f"<tr><td>{esc(r['student'])}</td><td>{esc(r['tutorial'])}</td>"
                f"<td>{esc(r['file'])}</td><td>{esc(r['status'])}</td>"
                f"<td>{'<br>'.join(esc(w) for w in what)}</td></tr>"
            )
        for old, new in replaced:
            out.append(f"<tr><td colspan=2></td><td>{esc(old)}</td><td>replaced</td>"
                       f"<td>a later submission ({esc(new)}) was graded instead</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    for tutorial, tests in sorted(maxima.items()):
        graded = [r for r in rows if r["tutorial"] == tutorial]
        if not graded:
            continue
        out.append(f"<h2>{esc(tutorial)} ({len(graded)} submissions)</h2>")
        out.append("<table><tr><th>Exercise test</th><th>Points</th><th>Mean</th>"
                   "<th>Distribution (points: submissions)</th><th>Full marks</th></tr>")
        for name, points in tests.items():
            scores = [r["scores"].get(name, 0.0) for r in graded]
            counts = Counter(scores)
            dist = ", ".join(f"{v:g}: {counts[v]}" for v in sorted(counts))
            out.append(
                f"<tr><td>{esc(name)}</td><td>{points:g}</td>"
                f"<td>{sum(scores) / len(scores):.2f}</td><td>{dist}</td>"
                f"<td>{100 * counts.get(points, 0) / len(scores):.0f}%</td></tr>"
            )
        totals = [r["score"] for r in graded]
        out.append(
            f"<tr><th>total</th><th>{sum(tests.values()):g}</th>"
            f"<th>{sum(totals) / len(totals):.2f}</th><th colspan=2></th></tr></table>"
        )
        out.append(_figure(tutorial, graded, tests))
        out.append(mistakes.section(graded, tests))
    out.append("</body></html>")
    atomic_write(path, "\n".join(out))
