"""What grading a tutorial needs, taken from nbgrader's gradebook (the engine's own records).

For every tutorial in the course's source folder, :func:`prepare` runs nbgrader's
``generate_assignment`` against the grading gradebook (so the assignment, its notebook, grade cells
and source cells are nbgrader's own), then reads back:

* the release notebook (the student version) as the template of what is executed;
* every test cell's full source *from the gradebook* (hidden tests included), which replaces
  whatever the student's notebook holds there (nbgrader's ``OverwriteCells``);
* the points of every graded cell, split into autograded tests and manually graded answers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from courselayout import course_layout

from .model import TestCell, TutorialSpec
from .nbgrader_app import run_nbgrader
from .protocol.cells import TestCall, defined_names, parse_test_cell
from .protocol.records import find_check

HIDDEN_BEGIN, HIDDEN_END = course_layout().markers.hidden_tests


def _hidden_part(source: str) -> tuple[str, list[str]]:
    if HIDDEN_BEGIN not in source:
        return source, []
    visible, _, rest = source.partition(HIDDEN_BEGIN)
    hidden, _, after = rest.partition(HIDDEN_END)
    lines = [line.strip() for line in hidden.splitlines() if len(line.strip()) >= 6]
    return (visible.rstrip() + "\n" + after.strip()).strip(), lines


NOT_VERDICT_LAYERS = ("inputs", "outputs")
"""Layers of the grading package that read the class's files or present results: changing them
regrades nothing."""
NOT_VERDICT_MODULES = {"cli.py", "runner.py", "synthetic.py", "__init__.py"}
"""Modules that drive grading or write test data: changing them regrades nothing either."""


def verdict_sources() -> list[Path]:
    """Every file a verdict depends on besides the tutorial: the grader, the checks, the references.

    The grading modules (recorder, record model, replay, sandbox, worker, spec, notebook, ...),
    every file of the ``dlnn_helpers`` package the kernel and the judge import (the checks and
    their shipped expected values included) and every module of the instructor's ``dlnn_reference``
    (the judge computes the hidden tests' expected values with it: a corrected reference regrades),
    as the grading environment finds them.
    """
    import importlib.util

    grading = Path(__file__).parent
    files = [p for p in sorted(grading.rglob("*.py")) if p.name not in NOT_VERDICT_MODULES
             and p.relative_to(grading).parts[0] not in NOT_VERDICT_LAYERS
             and "__pycache__" not in p.parts]
    for name in ("dlnn_helpers", "dlnn_reference"):
        found = importlib.util.find_spec(name)
        if found is None or found.origin is None:
            raise RuntimeError(f"the {name} package is not installed in the grading environment")
        package = Path(found.origin).parent
        files += sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                        and p.suffix in (".py", ".json"))
    return files


def _fingerprint(course: Path, tutorial: str) -> str:
    """What a grade depends on: the tutorial, the config, the grader, the checks, the libraries."""
    import numpy
    import torch

    digest = hashlib.sha256()
    for path in sorted((course_layout(course).source / tutorial).rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    digest.update((course / "nbgrader_config.py").read_bytes())
    for path in verdict_sources():  # how it is graded and judged, checks and references included
        digest.update(f"{path.parent.parent.name}/{path.parent.name}/{path.name}".encode())
        digest.update(path.read_bytes())
    digest.update(f"{sys.version} torch {torch.__version__} numpy {numpy.__version__}".encode())
    return digest.hexdigest()[:16]


def _generate(course: Path, tutorial: str, db_url: str, release: Path) -> None:
    """nbgrader generate_assignment for one tutorial, in a private copy of the course.

    nbgrader runs in this process (:func:`~.nbgrader_app.run_nbgrader`: a fresh application, the
    copy's ``nbgrader_config.py``, its output captured), so a grading into a fresh output folder
    starts no interpreter to prepare a tutorial.
    """
    with tempfile.TemporaryDirectory(prefix="dlnn-generate-") as tmp:
        copy = Path(tmp)
        shutil.copy(course / "nbgrader_config.py", copy / "nbgrader_config.py")
        source = course_layout(course).source
        shutil.copytree(source / tutorial, copy / source.relative_to(course) / tutorial)
        course_layout(copy).work.mkdir()
        status, output = run_nbgrader(copy, "generate_assignment", tutorial, "--force",
                                      "--log-level=ERROR", f"--CourseDirectory.db_url={db_url}")
        if status != 0:
            raise RuntimeError(f"nbgrader generate_assignment {tutorial} failed:\n{output}")
        release.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(copy / "tutorials" / tutorial / f"{tutorial}.ipynb", release)


def prepare(course: Path, tutorial: str, db_url: str, cache: Path) -> TutorialSpec:
    """Register ``tutorial`` in the gradebook (nbgrader) and build its :class:`TutorialSpec`.

    Parameters
    ----------
    course : Path
        Course root (holds ``nbgrader_config.py`` and ``solutions/``).
    tutorial : str
        Tutorial id, e.g. ``"T1_DeepLinearNetworks"``.
    db_url : str
        The grading gradebook (SQLAlchemy URL).
    cache : Path
        Folder for the release notebook and the spec (``generate_assignment`` runs again only when
        the solution notebook or the config changed).
    """
    fingerprint = _fingerprint(course, tutorial)
    spec_file = cache / f"{tutorial}.json"
    release = cache / f"{tutorial}.ipynb"
    if spec_file.is_file():
        saved = json.loads(spec_file.read_text())
        if saved.get("fingerprint") == fingerprint:
            spec = _spec_from_json(saved)
            if saved.get("db_url") == db_url:
                return spec
            if _registered(spec, db_url):  # a copied output folder, a moved gradebook
                save(spec, db_url, cache)
                return spec
    _generate(course, tutorial, db_url, release)
    nb = nbformat.read(release, as_version=4)
    tests, manual, solution_names, hidden = [], {}, {}, []
    with Gradebook(db_url) as gb:
        notebook = gb.find_notebook(tutorial, tutorial)
        points = {g.name: float(g.max_score) for g in notebook.grade_cells}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            grade_id = meta.get("grade_id")
            if not grade_id:
                continue
            if meta.get("locked") or meta.get("grade") and not meta.get("solution"):
                cell.source = gb.find_source_cell(grade_id, tutorial, tutorial).source
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                visible, lines = _hidden_part(cell.source)
                hidden.extend(lines)
                tests.append(TestCell(grade_id, points[grade_id], cell.source, visible,
                                      _checked_calls(cell.source)))
            elif meta.get("grade") and meta.get("solution"):
                if cell.cell_type == "markdown":
                    manual[grade_id] = points[grade_id]
                else:  # a graded solution cell: nbgrader scores it by hand
                    manual[grade_id] = points[grade_id]
                    solution_names[grade_id] = defined_names(cell.source)
            elif meta.get("solution") and cell.cell_type == "code":
                solution_names[grade_id] = defined_names(cell.source)
    spec = TutorialSpec(tutorial, nb, tests, manual, solution_names, sorted(set(hidden)),
                        fingerprint)
    cache.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps({**_spec_to_json(spec), "db_url": db_url}))
    return spec


def _registered(spec: TutorialSpec, db_url: str) -> bool:
    """Whether the gradebook at ``db_url`` holds ``spec``'s tutorial as ``generate_assignment``
    registered it: the same graded cells with the same points, and the same test sources."""
    points = {t.grade_id: t.points for t in spec.tests} | dict(spec.manual)
    try:
        with Gradebook(db_url) as gb:
            notebook = gb.find_notebook(spec.name, spec.name)
            if {g.name: float(g.max_score) for g in notebook.grade_cells} != points:
                return False
            sources = {c.name: c.source for c in notebook.source_cells}
    except Exception:  # noqa: BLE001 - not registered (or no gradebook): generate it
        return False
    return all(sources.get(t.grade_id) == t.source for t in spec.tests)


def _checked_calls(source: str) -> list[TestCall] | None:
    """The check calls of a test cell when every check is one the grader can import."""
    calls = parse_test_cell(source)
    if calls is None or any(find_check(call.check) is None for call in calls):
        return None
    return calls


def _spec_to_json(spec: TutorialSpec) -> dict:
    data = asdict(spec)
    data["template"] = dict(spec.template)
    return json.loads(json.dumps(data, default=lambda o: dict(o)))


def _spec_from_json(data: dict) -> TutorialSpec:
    tests = [
        TestCell(t["grade_id"], t["points"], t["source"], t["visible"],
                 _checked_calls(t["source"]), t.get("mode", "auto"))
        for t in data["tests"]
    ]
    return TutorialSpec(
        data["name"], nbformat.from_dict(data["template"]), tests, data["manual"],
        data["solution_names"], data["hidden_lines"], data["fingerprint"],
        data.get("calibrated", False), data.get("reference_problems", []),
    )


def save(spec: TutorialSpec, db_url: str, cache: Path) -> None:
    """Store ``spec`` (after calibration) next to the release notebook."""
    (cache / f"{spec.name}.json").write_text(json.dumps({**_spec_to_json(spec), "db_url": db_url}))


def relocate(cache: Path, db_url: str) -> None:
    """Point the specs saved in ``cache`` at ``db_url`` (a copied output folder and gradebook).

    A prepared and calibrated output folder copied with its gradebook is then used as it is: no
    ``generate_assignment`` and no calibration again.
    """
    for path in sorted(Path(cache).glob("*.json")):
        data = json.loads(path.read_text())
        data["db_url"] = db_url
        path.write_text(json.dumps(data))
