"""The instructor's reference implementations of the graded exercises (never released to students).

This package is the answer key's code: the reference solution of every graded exercise and, for every
check, the function that computes what the check compares with (:data:`EXPECTED`).  It lives in the
instructor's repository only; ``python scripts/course.py release`` leaves it out of the student
repository, and the student package (``dlnn_helpers``) never imports it directly: its checks ask
:func:`dlnn_helpers.checks._expected.expected`, which uses the values shipped with the release for
the self-checks and, where this package is importable (the instructor's machine, the grader),
computes the hidden tests' values live.

One module per check module of ``dlnn_helpers.checks``.  Each registers its functions with
:func:`expects` and lists, in ``SELF_CHECKS``, the self-check calls whose expected values ship with
the release (``(check, args, kwargs)``, the args being this package's reference answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EXPECTED: dict[str, Callable[..., dict[str, Any]]] = {}
"""Check name -> function of the check's settings returning ``{"correct": ..., <mistake>: ...}``."""

MODULES = ["deep_linear", "optimisation", "deep_training", "initialisation", "mlp", "relu_features"]
"""The reference modules, named as the check modules whose values they compute."""


def expects(check: str) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Register the decorated function as the computation of ``check``'s expected values."""

    def register(function: Callable[..., dict]) -> Callable[..., dict]:
        EXPECTED[check] = function
        return function

    return register


def _load() -> None:
    import importlib

    for name in MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


_load()
