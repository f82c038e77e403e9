"""The diagnosis toolkit of the checks: compare, try the known mistakes, report the first bad entry.

Every check that compares values does it the same way:

1. the student's value (a float64 copy, see :mod:`~dlnn_helpers.checks._contract`) is compared with
   the expected one within a relative tolerance (:func:`close`);
2. if they differ, each known :class:`Mistake` — what a common wrong answer computes, and what to
   say about it — is tried in turn, and the first that reproduces the student's value is named;
3. otherwise the message reports how many entries differ and the first of them, with its index,
   the expected and the returned value (:func:`first_bad_entry`).

:func:`judge` does the three steps for one value; :func:`find_mistake` does step 2 for anything
(several values at once, a whole optimisation trajectory, a standard deviation) with a comparison
given by the caller.

A mistake is always described the same way: ``Mistake(why, answer)``, where ``why`` says what is
wrong and how to fix it (one clause, no final full stop) and ``answer`` is what that mistake
returns (an array, a tuple of arrays, a number, or a function computing it when it is tried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._core import CheckFailure, close


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer.

    Attributes
    ----------
    why : str
        What is wrong and how to fix it, e.g. ``"the bias is missing (out = x Wᵀ + b)"``.
    answer : Any
        What the mistake returns: an array, a tuple of arrays, a number, or a function of no
        argument computing it (evaluated only when the mistake is tried).
    """

    why: str
    answer: Any

    def value(self) -> Any:
        """The wrong answer itself (computed now when ``answer`` is a function)."""
        return self.answer() if callable(self.answer) else self.answer


def matches(got: Any, candidate: Any, rtol: float = 1e-4) -> bool:
    """True when ``got`` equals ``candidate`` within ``rtol``: same shapes, item by item for tuples."""
    if isinstance(candidate, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(candidate):
            return False
        return all(matches(g, c, rtol) for g, c in zip(got, candidate, strict=True))
    got_array = np.asarray(got, dtype=np.float64)
    candidate_array = np.asarray(candidate, dtype=np.float64)
    return bool(np.all(np.isfinite(candidate_array))) and close(got_array, candidate_array, rtol)


def find_mistake(
    got: Any,
    mistakes: Iterable[Mistake],
    *,
    rtol: float = 1e-4,
    same: Callable[[Any, Any], bool] | None = None,
) -> Mistake | None:
    """The first mistake whose answer reproduces ``got``, or None.

    Parameters
    ----------
    got : Any
        The student's value(s), as float64 copies.
    mistakes : iterable of Mistake
        Tried in order; put the most specific first.
    rtol : float
        Relative tolerance of the default comparison, :func:`matches`.
    same : callable, optional
        ``same(got, answer) -> bool``, another comparison (a trajectory, a ratio of standard
        deviations).
    """
    for mistake in mistakes:
        answer = mistake.value()
        if answer is None:
            continue
        if same(got, answer) if same is not None else matches(got, answer, rtol):
            return mistake
    return None


def _number(value: float) -> str:
    return f"{value:.6g}"


def first_bad_entry(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-4) -> str:
    """Where ``got`` and ``expected`` (of the same shape) differ: how many entries, and the first.

    The tolerance is relative to the largest magnitude of ``expected``, as in :func:`close`.
    """
    if got.ndim == 0:
        return f"expected {_number(float(expected))}, got {_number(float(got))}"
    scale = max(float(np.max(np.abs(expected))), 1e-300) if expected.size else 1.0
    bad = np.argwhere(~(np.abs(got - expected) <= rtol * scale))
    if len(bad) == 0:  # only the largest entry scale differs: report the worst one
        bad = np.array([np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)])
    index = tuple(int(i) for i in bad[0])
    shown = index[0] if len(index) == 1 else index
    return (f"{len(bad)} of {got.size} entries differ; the first is at index {shown}: expected "
            f"{_number(float(expected[index]))}, got {_number(float(got[index]))}")


def judge(
    what: str,
    got: np.ndarray,
    expected: np.ndarray,
    mistakes: Iterable[Mistake] = (),
    *,
    rtol: float = 1e-4,
    where: str = "",
    advice: str = "",
) -> None:
    """Return when ``got`` is ``expected``; otherwise raise a CheckFailure naming the mistake.

    Parameters
    ----------
    what : str
        Name of the value (``"grad_w"``).
    got, expected : np.ndarray
        The student's value and the right one (same shape: the contract was checked before).
    mistakes : iterable of Mistake
        Known wrong answers, tried in order.
    rtol : float
        Relative tolerance (relative to the largest magnitude of ``expected``).
    where : str
        The case, shown in parentheses after ``what`` (``"B=3, n_in=4"``).
    advice : str
        A sentence added when no known mistake matches (the formula to follow).
    """
    if close(got, expected, rtol):
        return
    label = f"{what} ({where})" if where else what
    mistake = find_mistake(got, mistakes, rtol=rtol)
    if mistake is not None:
        raise CheckFailure(f"{label} is wrong: {mistake.why}.")
    message = f"{label} is wrong: {first_bad_entry(got, expected, rtol)}."
    raise CheckFailure(message + (f" {advice}" if advice else ""))
