"""Helpers for the claims tests: find the cell a claim lives in, read an executed cell's output."""

from __future__ import annotations

from functools import cache

import nbformat

from coursebuild.layout import solution_path


@cache
def _solution(tutorial: str) -> nbformat.NotebookNode:
    return nbformat.read(solution_path(tutorial), as_version=4)


def _cell(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return cell
    raise LookupError(f"no cell with id {cell_id!r}: the claim's cell was removed or replaced")


def cell_source(tutorial: str, cell_id: str) -> str:
    """The source of the cell ``cell_id`` of the solution notebook of ``tutorial``.

    A claims test asserts that the wording of its claim is in this text, so that the text cannot
    change without the test that guards it.
    """
    return _cell(_solution(tutorial), cell_id).source


def cell_outputs(nb: nbformat.NotebookNode, cell_id: str) -> str:
    """The text of every stream, result and error output of the cell ``cell_id`` of an executed
    notebook (``text/plain`` for results), joined."""
    parts = []
    for output in _cell(nb, cell_id).get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "".join(parts)
