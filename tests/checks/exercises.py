"""The graded exercises as the solution notebooks define them (shared by the package-wide tests).

The answer names and reference answers come from the solution cells, executed with the imports of
the notebook; the check calls from the test cells (the default call is the self-check, the others
the hidden tests).
"""

from __future__ import annotations

import ast
import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import nbformat

from ..tools import ROOT, TUTORIALS


@dataclass(frozen=True)
class TestCall:
    """One check call of a test cell."""

    __test__ = False  # not a pytest class
    tutorial: str
    grade_id: str
    call: str

    def __str__(self) -> str:
        return f"{self.grade_id}: {self.call}"


@dataclass(frozen=True)
class Slot:
    """One answer of one check call: ``call`` with ``answers[name]`` replaced by a candidate."""

    tutorial: str
    grade_id: str
    call: str
    name: str

    def __str__(self) -> str:
        return f"{self.grade_id}: {self.call} [{self.name}]"


def _imports_of(source: str) -> str:
    """The top-level import statements of a cell (its other code is not run here)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def _check_calls(source: str) -> list[str]:
    """Every ``check_...(...)`` statement of a test cell."""
    return [ast.unparse(statement.value) for statement in ast.parse(source).body
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name)
            and statement.value.func.id.startswith("check_")]


def _default_calls(source: str, answers: set[str]) -> Iterator[tuple[str, list[str]]]:
    """The check calls of a test cell whose arguments are answers or constants (its self-check)."""
    for statement in ast.parse(source).body:
        call = getattr(statement, "value", None)
        if not (isinstance(statement, ast.Expr) and isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name) and call.func.id.startswith("check_")):
            continue
        def answer(node: ast.AST) -> bool:
            return isinstance(node, ast.Name) and node.id in answers

        args = [*call.args, *(k.value for k in call.keywords)]
        # default settings: answers, and constants only in place of a positional mode ("zero")
        if (all(isinstance(a, ast.Constant) or answer(a) for a in call.args)
                and all(answer(k.value) for k in call.keywords)):
            names = [a.id for a in args if isinstance(a, ast.Name)]
            yield ast.unparse(call), names


def exercises() -> tuple[list[Slot], dict[str, dict[str, Any]], list[TestCall]]:
    """The answer slots of every default check call, each tutorial's namespace (its imports and
    solution cells executed), and every check call of the test cells (hidden ones included)."""
    slots, namespaces, calls = [], {}, []
    for tutorial in TUTORIALS:
        nb = nbformat.read(ROOT / "solutions" / tutorial / f"{tutorial}.ipynb", as_version=4)
        namespace: dict[str, Any] = {}
        answers: set[str] = set()
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if cell.cell_type != "code":
                    continue
                if not meta.get("grade"):
                    exec(compile(_imports_of(cell.source), f"{tutorial}:imports", "exec"), namespace)
                if meta.get("solution"):
                    before = set(namespace)
                    exec(compile(cell.source, f"{tutorial}:{meta['grade_id']}", "exec"), namespace)
                    answers |= set(namespace) - before
                elif meta.get("grade"):
                    calls += [TestCall(tutorial, meta["grade_id"], c) for c in _check_calls(cell.source)]
                    for call, names in _default_calls(cell.source, answers):
                        slots += [Slot(tutorial, meta["grade_id"], call, n) for n in names]
        namespaces[tutorial] = namespace
    return slots, namespaces, calls
