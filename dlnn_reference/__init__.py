"""The instructor's reference implementations of the graded exercises (never released to students).

This package is the answer key's code: the reference solution of every graded exercise and, for every
check, the function that computes what the check compares with (:data:`EXPECTED`).  It lives in the
instructor's repository only; ``python scripts/course.py release`` leaves it out of the student
repository, and the student package (``dlnn_helpers``) never imports it directly: its checks ask
:func:`dlnn_helpers.checks._expected.expected`, which uses the values shipped with the release for
the self-checks and, where this package is importable (the instructor's machine, the grader),
computes the hidden tests' values live.

One module per check module of ``dlnn_helpers.checks`` (the check's *topic*, its registry entry's
``topic``: ``dlnn_reference.deep_linear`` for ``dlnn_helpers.checks.deep_linear``).  Each registers,
next to the code:

* with :func:`expects`, the function of a check's settings that computes its expected values;
* with :func:`answers`, the reference answer of each self-check call (with the call's settings):
  the self-check calls whose expected values ship with the release (:func:`self_checks`), and the
  answers every test of the checks uses (:func:`answer`; the tests keep no copies of their own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EXPECTED: dict[str, Callable[..., dict[str, Any]]] = {}
"""Check name -> function of the check's settings returning ``{"correct": ..., <mistake>: ...}``."""

ANSWERS: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
"""Check name -> ``[(reference answer, settings)]``, one per self-check call of the notebook."""


def expects(check: str) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Register the decorated function as the computation of ``check``'s expected values."""

    def register(function: Callable[..., dict]) -> Callable[..., dict]:
        EXPECTED[check] = function
        return function

    return register


def answers(check: str, **settings: Any) -> Callable[[Any], Any]:
    """Register the decorated function or class as the reference answer of ``check``'s self-check
    call with ``settings`` (``@answers("check_init_weights", method="zero")``); returned unchanged.

    Every registered check has at least one (a test says so).  An answer whose check also takes
    other answers passes them as settings: ``answers("check_linear_layer",
    backward=linear_backward)(linear_forward)``.
    """

    def register(answer: Any) -> Any:
        ANSWERS.setdefault(check, []).append((answer, settings))
        return answer

    return register


def answer(check: str) -> Any:
    """The reference answer of ``check``'s first self-check call."""
    return ANSWERS[check][0][0]


def self_checks() -> list[tuple[Callable[..., str], tuple[Any, ...], dict[str, Any]]]:
    """Every self-check call of the notebooks, with the reference answers: ``(check, args,
    settings)`` in the registry's order (what the shipped expected values are captured from)."""
    from dlnn_helpers.checks import CHECKS

    return [(entry.function, (found,), dict(settings)) for name, entry in CHECKS.items()
            for found, settings in ANSWERS.get(name, [])]


def modules() -> list[str]:
    """The reference modules: one per topic of the check registry."""
    import dlnn_helpers.checks  # noqa: F401 - registers every check
    from dlnn_helpers.checks._registry import topics

    return topics()


def _load() -> None:
    import importlib

    for name in modules():
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


_load()
