"""Read an untrusted submission and build the notebook that is executed for grading.

The executed notebook is the *release* notebook of the tutorial (the instructor's cell order, test
cells restored from the gradebook) into which the student's work is put:

* every solution cell, found by its nbgrader ``grade_id`` or, when that metadata is missing (a
  notebook saved by Colab or another editor may drop it), by the function it defines;
* the student's written answers (manually graded cells);
* code cells the student *added*, run just before the next solution cell that follows them (they may
  hold helpers the solution uses).

Everything else comes from the release notebook: test cells (so editing or deleting them gains
nothing), the set-up cells, and the demonstrations.  Outputs saved in the submission are dropped.
"""

from __future__ import annotations

import copy
import json

import nbformat

from .model import Prepared, Rejected, TutorialSpec
from .protocol.calls import preamble, recorder_source
from .protocol.cells import defined_names

MAX_SUBMISSION_BYTES = 100 * 2**20


def read_submission(data: bytes, spec: TutorialSpec) -> nbformat.NotebookNode:
    """Parse the bytes of a submission; raise :class:`Rejected` with a clear reason."""
    if not data.strip():
        raise Rejected("the file is empty")
    if len(data) > MAX_SUBMISSION_BYTES:
        raise Rejected(f"the file is larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(f"the file is not text (not a notebook): {exc.reason}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Rejected(f"the file is not valid JSON (line {exc.lineno}): not a notebook") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise Rejected("the file is JSON but not a Jupyter notebook (no list of cells)")
    if raw.get("nbformat") != 4:
        raise Rejected(f"the notebook format {raw.get('nbformat')!r} is not supported (needs 4)")
    cells = []
    for cell in raw["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Rejected("the notebook holds a cell that is not a code, markdown or raw cell")
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(s) for s in source)
        if not isinstance(source, str):
            raise Rejected("the notebook holds a cell whose source is not text")
        metadata = cell.get("metadata", {})
        cells.append({
            "cell_type": cell["cell_type"],
            "source": source,
            "metadata": metadata if isinstance(metadata, dict) else {},
            "id": cell.get("id"),
        })
    nb = nbformat.from_dict({"cells": cells, "metadata": raw.get("metadata", {})})
    return nb


def _words(text: str) -> str:
    return " ".join(text.split())


def _grading(cell: dict) -> dict:
    meta = cell["metadata"].get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def prepare(data: bytes, spec: TutorialSpec, run_demos: bool = False) -> Prepared:
    """Build the notebook to execute from a submission.

    Parameters
    ----------
    data : bytes
        The submitted file.
    spec : TutorialSpec
        The tutorial it is graded against.
    run_demos : bool
        Also run the demonstration cells (everything the release notebook holds, as nbgrader does).
        By default only what a grade can depend on runs: the set-up cells before the first
        exercise, the solution cells, the cells the student added and the tests.

    Raises
    ------
    Rejected
        When the file is not a usable notebook of this tutorial.
    """
    submitted = read_submission(data, spec)
    notes = []
    if "colab" in submitted.metadata or "accelerator" in submitted.metadata:
        notes.append("saved by Google Colab (its metadata is ignored)")
    if len(data) > 5 * 2**20:
        notes.append(f"the file is {len(data) / 2**20:.0f} MiB (saved outputs were discarded)")

    template = nbformat.from_dict(copy.deepcopy(dict(spec.template)))
    release_sources = {c.source.strip() for c in template.cells}
    release_ids = {c.get("id") for c in template.cells if c.get("id")}
    known = {c.metadata.get("nbgrader", {}).get("grade_id") for c in template.cells}
    tests = {t.grade_id for t in spec.tests}

    # The student's cells, matched to the release notebook.
    by_id: dict[str, list[int]] = {}
    for index, cell in enumerate(submitted.cells):
        grade_id = _grading(cell).get("grade_id")
        if grade_id:
            by_id.setdefault(grade_id, []).append(index)
    duplicated = sorted(g for g, where in by_id.items() if len(where) > 1)
    if duplicated:
        notes.append(
            "duplicated nbgrader metadata (copied cells) for " + ", ".join(duplicated)
            + ": every copy ran, in the notebook's order"
        )
    unknown = sorted(g for g in by_id if g not in known)
    if unknown:
        notes.append("cells with unknown nbgrader ids were treated as added cells: "
                     + ", ".join(unknown))
    solution_at: dict[str, int] = {}
    by_name = []
    for grade_id, names in spec.solution_names.items():
        where = [i for i in by_id.get(grade_id, []) if submitted.cells[i].cell_type == "code"]
        if not where and names:
            where = [
                i for i, c in enumerate(submitted.cells)
                if c.cell_type == "code" and not _grading(c)
                and set(names) & set(defined_names(c.source))
            ]
            if where:
                by_name.append(grade_id)
        if where:
            several_by_name = len(where) > 1 and grade_id in by_name
            solution_at[grade_id] = where[-1] if several_by_name else where[0]
    if by_name:
        notes.append("nbgrader metadata missing; exercises found by the function they define: "
                     + ", ".join(by_name))
    missing = sorted(set(spec.solution_names) - set(solution_at))
    if missing:
        notes.append("exercise cells not found (scored as not done): " + ", ".join(missing))
    if spec.solution_names and not solution_at:
        raise Rejected(
            f"none of the exercises of {spec.name} is in this notebook (wrong notebook, or not "
            "a notebook of this tutorial)"
        )
    order = [solution_at[g] for g in spec.solution_names if g in solution_at]
    if order != sorted(order):
        notes.append("cells were reordered (graded in the tutorial's order)")
    for test in spec.tests:
        originals = {_words(test.source), _words(test.visible)}
        for i in by_id.get(test.grade_id, []):
            if _words(submitted.cells[i].source) not in originals:
                notes.append(f"test cell {test.grade_id} was edited (the original was restored)")
    deleted = sorted(t for t in tests if t not in by_id)
    if deleted and not by_name:
        notes.append("test cells deleted (restored): " + ", ".join(deleted))

    used = set(solution_at.values())
    added: dict[str, list[str]] = {}
    pending: list[str] = []
    solution_cells = sorted((i, g) for g, i in solution_at.items())
    next_solution = iter(solution_cells)
    upcoming = next(next_solution, None)
    last_solution = None
    for index, cell in enumerate(submitted.cells):
        while upcoming is not None and index > upcoming[0]:
            last_solution = upcoming[1]
            upcoming = next(next_solution, None)
        if index in used or cell.cell_type != "code":
            continue
        grade_id = _grading(cell).get("grade_id")
        if grade_id and grade_id in known:
            continue
        original = cell.get("id") in release_ids or cell.source.strip() in release_sources
        if original or not cell.source.strip():
            continue
        if upcoming is not None:
            added.setdefault(upcoming[1], []).append(cell.source)
        else:
            pending.append(cell.source)
    if pending and last_solution is not None:
        added.setdefault(f"after:{last_solution}", []).extend(pending)
    n_added = sum(len(v) for v in added.values())
    if n_added:
        notes.append(f"{n_added} code cell(s) added by the student were run")

    answers, solutions, cells = {}, {}, []
    cells.append(nbformat.v4.new_code_cell(
        preamble(), metadata={"dlnn_grading": "preamble"}
    ))
    started = False
    test_specs = {t.grade_id: t for t in spec.tests}
    for cell in template.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code":
            if grade_id in spec.manual and cell.cell_type == "markdown":
                where = [i for i in by_id.get(grade_id, [])
                         if submitted.cells[i].cell_type == "markdown"]
                if where:
                    cell.source = submitted.cells[where[0]].source
                answers[grade_id] = cell.source
            cells.append(cell)
            continue
        cell.outputs, cell.execution_count = [], None
        if grade_id in spec.solution_names:
            started = True
            for source in added.get(grade_id, []):
                cells.append(nbformat.v4.new_code_cell(
                    source, metadata={"dlnn_grading": "added"}
                ))
            if grade_id in solution_at:
                cell.source = submitted.cells[solution_at[grade_id]].source
            solutions[grade_id] = cell.source
            cells.append(cell)
            for i in by_id.get(grade_id, [])[1:]:  # later copies of the same cell, own cells
                if i != solution_at.get(grade_id):
                    copy_source = submitted.cells[i].source
                    solutions[grade_id] += "\n\n# (copy of the cell)\n" + copy_source
                    cells.append(nbformat.v4.new_code_cell(
                        copy_source, metadata={"dlnn_grading": "added"}
                    ))
            for source in added.get(f"after:{grade_id}", []):
                cells.append(nbformat.v4.new_code_cell(
                    source, metadata={"dlnn_grading": "added"}
                ))
        elif grade_id in test_specs:
            test = test_specs[grade_id]
            if test.calls is not None:
                cell.source = recorder_source(grade_id, test.calls)
            cells.append(cell)
        else:
            if started and not run_demos:
                cell.metadata.setdefault("tags", []).append("skip-execution")
            cells.append(cell)
    template.cells = cells
    template.metadata = nbformat.from_dict(dict(spec.template.metadata))
    return Prepared(template, notes, answers, solutions)
