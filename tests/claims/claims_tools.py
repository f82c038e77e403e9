"""Helpers for the claims tests: find the cell a claim lives in, read an executed cell's output."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import nbformat

from courselayout import solution_path


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


# ---------------------------------------------------------------- runs printed by run_test (T3, T4)


@dataclass
class Run:
    """What one ``run_test`` printed."""

    label: str
    n_parameters: int
    progress: list[tuple[int, float, float, float]] = field(default_factory=list)  # epoch, loss, train, val
    epochs: int = 0
    stop_reason: str = ""
    train_acc: float = float("nan")
    val_acc: float = float("nan")

    @property
    def losses(self) -> list[float]:
        return [loss for _, loss, _, _ in self.progress]


_HEADER = re.compile(r"^(?P<label>.+): (?P<n>\d+) parameters$")
_PROGRESS = re.compile(r"^  epoch +(?P<epoch>\d+)  loss (?P<loss>\S+)  train accuracy (?P<train>\S+)  "
                       r"validation accuracy (?P<val>\S+)$")
_STOP = re.compile(r"^  stopped after (?P<epochs>\d+) epochs \((?P<reason>[^)]*)\): train accuracy "
                   r"(?P<train>\S+), validation accuracy (?P<val>\S+) \[")


def training_runs(nb, cell_id: str) -> dict[str, Run]:
    """The runs a cell of an executed notebook printed, by label, in order."""
    text = re.sub(r"<Figure[^>]*>", "\n", cell_outputs(nb, cell_id))
    runs: dict[str, Run] = {}
    run = None
    for line in text.splitlines():
        if match := _HEADER.match(line):
            run = runs[match["label"]] = Run(match["label"], int(match["n"]))
        elif match := _PROGRESS.match(line):
            run.progress.append((int(match["epoch"]), float(match["loss"]), float(match["train"]),
                                 float(match["val"])))
        elif match := _STOP.match(line):
            run.epochs, run.stop_reason = int(match["epochs"]), match["reason"]
            run.train_acc, run.val_acc = float(match["train"]), float(match["val"])
    assert runs and all(r.stop_reason for r in runs.values()), f"no complete run printed by {cell_id}"
    return runs
