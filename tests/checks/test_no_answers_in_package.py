"""No callable of the student package answers a graded exercise.

Every function, class and method reachable from the modules of ``dlnn_helpers`` (public or private)
is put in place of each answer of every graded exercise, and the exercise's self-check is run on
the values shipped with the package (what a student has): none may pass.  The exercises and their
answer slots are read from the solution notebooks' test cells (the default call of each check), and
the reference answers from the solution cells, which must pass in the same slots — so that this
test fails if a check stops rejecting anything.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pkgutil
import signal
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import matplotlib
import pytest
import torch

import dlnn_helpers
from dlnn_helpers import checks
from dlnn_helpers.checks import _expected

from ..tools import ROOT
from .exercises import Slot, exercises

matplotlib.use("Agg")
SECONDS_PER_TRY = 10


SLOTS, NAMESPACES, _ = exercises()


def _package_callables() -> dict[str, Callable]:
    """Every function, class and method defined in dlnn_helpers, by its qualified name, and the
    callables its modules hold in objects: the methods of module-level instances (bound), their
    attributes, and the items of module-level dicts, lists and tuples (``ACTIVATIONS["relu"]
    .derivative``, ``mlp_backprop.AUTOGRAD_LINEAR.backward``, ``PRECOMPUTED.array``)."""
    found: dict[str, Callable] = {}
    modules = [dlnn_helpers] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(dlnn_helpers.__path__, "dlnn_helpers.")
    ]

    def ours(value: Any) -> bool:
        return str(getattr(value, "__module__", "") or "").startswith("dlnn_helpers")

    def add(key: str, value: Any) -> bool:
        if any(existing is value for existing in found.values()):
            return False
        found[key] = value
        return True

    def visit(owner_name: str, obj: Any, depth: int) -> None:
        if depth > 3:
            return
        for attr, value in list(vars(obj).items()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                value = value.fget
            key = f"{owner_name}.{attr}"
            if not isinstance(obj, type) and not callable(value):
                held(key, value, depth)
                continue
            if not callable(value) or isinstance(value, types.ModuleType) or not ours(value):
                continue
            if add(key, value) and isinstance(value, type):
                visit(key, value, depth + 1)

    def held(key: str, value: Any, depth: int) -> None:
        """Callables inside a value a module (or an object) holds."""
        if depth > 3:
            return
        if isinstance(value, dict):
            for name, item in list(value.items())[:50]:
                held(f"{key}[{name!r}]", item, depth + 1)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value[:50]):
                held(f"{key}[{index}]", item, depth + 1)
        elif callable(value) and not isinstance(value, types.ModuleType):
            if ours(value):
                add(key, value)
        elif ours(type(value)) and not isinstance(value, type):
            for name, member in vars(type(value)).items():
                if isinstance(member, types.FunctionType) and not name.startswith("__"):
                    add(f"{key}.{name}", getattr(value, name))
            if hasattr(value, "__dict__"):
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
    """Whether the slot's self-check passes with ``candidate`` as the answer ``slot.name``.

    Every try starts from the same state: the torch modes a candidate entered and left on torch's
    mode stacks (the checks' own watches, ``_CallsMode.__enter__`` called as a candidate) are
    popped after it, so that no try runs under the watches an earlier candidate left behind (each
    one intercepts every later torch call: the search took three times as long with the twenty
    that piled up)."""
    namespace = dict(NAMESPACES[slot.tutorial])
    namespace.update(vars(checks))
    namespace[slot.name] = candidate
    modes = _mode_depths()
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
        _pop_modes_to(modes)
    return True


def _mode_depths() -> tuple[int, int]:
    """How many torch function and dispatch modes are entered now."""
    return torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()


def _pop_modes_to(depths: tuple[int, int]) -> None:
    """Pop the torch modes entered since :func:`_mode_depths` gave ``depths``."""
    from torch.utils._python_dispatch import _pop_mode

    while torch._C._len_torch_function_stack() > depths[0]:
        torch._C._pop_torch_function_stack()
    while torch._C._len_torch_dispatch_stack() > depths[1]:
        _pop_mode()


def test_every_registered_check_has_a_slot():
    """Every check of the registry is called by a test cell with the notebook's answers (its
    self-check call), so that every check is tried with every package callable."""
    called = {slot.call.partition("(")[0] for slot in SLOTS}
    assert called == set(checks.CHECKS), called ^ set(checks.CHECKS)
    assert len(CALLABLES) > 100, "the enumeration found too few callables"


@pytest.mark.parametrize("held", ["mlp_activations.ACTIVATIONS['relu'].derivative",
                                  "mlp_backprop.AUTOGRAD_LINEAR.backward",
                                  "mlp_backprop.AUTOGRAD_RELU.backward",
                                  "mlp_backprop.AUTOGRAD_LOSS.backward",
                                  "relu_features.PRECOMPUTED.array"])
def test_callables_held_in_objects_are_candidates_too(held):
    """The stand-ins and figure routines that come closest are among the candidates."""
    value = eval(f"dlnn_helpers.{held}", {"dlnn_helpers": dlnn_helpers})  # noqa: S307 - a name
    assert any(c is value or c == value for c in CALLABLES.values()), held


@pytest.mark.parametrize("slot", SLOTS, ids=str)
def test_the_reference_answer_passes_its_slot(slot):
    """The slot is sound: the solution's own answer passes, on the shipped values alone."""
    assert _passes(slot, NAMESPACES[slot.tutorial][slot.name])


def _passing_slots(candidate: Any) -> list[int]:
    """The indices of the slots ``candidate`` passes (run in a child process)."""
    return [i for i, slot in enumerate(SLOTS) if _passes(slot, candidate)]


def find_passing() -> dict[int, list[str]]:
    """Slot index -> the package callables that pass it.

    Run in a fresh interpreter of its own (``python -m tests.checks.test_no_answers_in_package``,
    see :func:`passing`): the package's private machinery (a routine that installs a watch or a
    patch) may change global state when called with a check's arguments, and that must not reach
    the rest of the test session.
    """
    return {i: [name for name, candidate in CALLABLES.items() if _passes(slot, candidate)]
            for i, slot in enumerate(SLOTS)}


@pytest.fixture(scope="module")
def passing() -> dict[int, list[str]]:
    """:func:`find_passing`, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.checks.test_no_answers_in_package"], cwd=ROOT,
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {int(k): v for k, v in json.loads(result.stdout.splitlines()[-1]).items()}


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SLOTS)), ids=[str(s) for s in SLOTS])
def test_no_package_callable_passes(index, passing):
    assert passing[index] == [], f"package callables answer {SLOTS[index]}: {passing[index]}"


if __name__ == "__main__":
    print(json.dumps(find_passing()))
