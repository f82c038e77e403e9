"""No callable of the student package answers a graded exercise.

Every function, class and method reachable from the modules of ``dlnn_helpers`` (public or private)
is put in place of each answer of every graded exercise, and the exercise's self-check is run on
the values shipped with the package (what a student has): none may pass.  The exercises and their
answer slots are read from the solution notebooks' test cells (the default call of each check), and
the reference answers from the solution cells, which must pass in the same slots — so that this
test fails if a check stops rejecting anything.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import pkgutil
import signal
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import matplotlib
import nbformat
import pytest

import dlnn_helpers
from dlnn_helpers import checks
from dlnn_helpers.checks import _expected

from ..tools import ROOT, TUTORIALS

matplotlib.use("Agg")
SECONDS_PER_TRY = 10


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


def _exercises() -> tuple[list[Slot], dict[str, dict[str, Any]]]:
    slots, namespaces = [], {}
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
                    for call, names in _default_calls(cell.source, answers):
                        slots += [Slot(tutorial, meta["grade_id"], call, n) for n in names]
        namespaces[tutorial] = namespace
    return slots, namespaces


SLOTS, NAMESPACES = _exercises()


def _package_callables() -> dict[str, Callable]:
    """Every function, class and method defined in dlnn_helpers, by its qualified name."""
    found: dict[str, Callable] = {}
    modules = [dlnn_helpers] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(dlnn_helpers.__path__, "dlnn_helpers.")
    ]

    def visit(owner_name: str, obj: Any, depth: int) -> None:
        if depth > 3:
            return
        for attr, value in list(vars(obj).items()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                value = value.fget
            if not callable(value) or isinstance(value, types.ModuleType):
                continue
            if not str(getattr(value, "__module__", "") or "").startswith("dlnn_helpers"):
                continue
            key = f"{owner_name}.{attr}"
            if any(existing is value for existing in found.values()):
                continue
            found[key] = value
            if isinstance(value, type):
                visit(key, value, depth + 1)

    for module in modules:
        visit(module.__name__, module, 0)
    return found


CALLABLES = _package_callables()


@pytest.fixture(scope="module", autouse=True)
def _torch_func_imported():
    """torch.func's first use imports torch._dynamo (seconds): not on any candidate's clock."""
    importlib.import_module("torch._dynamo")


class _TookTooLong(Exception):
    pass


def _alarm(signum, frame):
    raise _TookTooLong


def _passes(slot: Slot, candidate: Any) -> bool:
    """Whether the slot's self-check passes with ``candidate`` as the answer ``slot.name``."""
    namespace = dict(NAMESPACES[slot.tutorial])
    namespace.update(vars(checks))
    namespace[slot.name] = candidate
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_TRY)
    try:
        with contextlib.redirect_stdout(io.StringIO()), _expected.shipped_only():
            eval(slot.call, namespace)  # noqa: S307 - the course's own test line
    except Exception:  # noqa: BLE001 - any failure is a rejection
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        matplotlib.pyplot.close("all")
    return True


def test_every_graded_exercise_has_a_slot():
    graded = {(s.tutorial, s.grade_id) for s in SLOTS}
    assert len(graded) == 25, sorted(graded)
    assert len(CALLABLES) > 100, "the enumeration found too few callables"


@pytest.mark.parametrize("slot", SLOTS, ids=str)
def test_the_reference_answer_passes_its_slot(slot):
    """The slot is sound: the solution's own answer passes, on the shipped values alone."""
    assert _passes(slot, NAMESPACES[slot.tutorial][slot.name])


@pytest.mark.slow
@pytest.mark.parametrize("slot", SLOTS, ids=str)
def test_no_package_callable_passes(slot):
    passing = [name for name, candidate in CALLABLES.items() if _passes(slot, candidate)]
    assert passing == [], f"package callables answer {slot}: {passing}"
