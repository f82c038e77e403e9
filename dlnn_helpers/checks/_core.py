"""Machinery shared by every exercise check.

A *check* is a function ``check_x(func, **settings)`` that calls a student's function on data it
makes itself, inspects what comes back without trusting it, and either returns a one-line summary or
raises :class:`CheckFailure` (an ``AssertionError``, so that nbgrader scores the test cell 0) with a
message that says exactly what is wrong.  The same checks serve two places:

* the self-check cell of a notebook, through :func:`self_check`, which prints the verdict and never
  raises, so "run all" goes on;
* the nbgrader test cell, which calls the check directly (with other seeds and shapes in the hidden
  part) so that a failure raises.

Values returned by the student are held to the exercise's documented type, dtype and shape and
copied into fresh float64 NumPy arrays by :mod:`~dlnn_helpers.checks._contract` (through unbound
methods of the exact types ``torch.Tensor`` and ``np.ndarray``; subclasses, whose ``__eq__``,
``__bool__`` or ``numpy`` could lie, are rejected), and every comparison is computed on those copies
by :mod:`~dlnn_helpers.checks._diagnosis`.  CONTRIBUTING.md ("The check contract") states the rules.
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

# References taken when the package is imported, so that a notebook that later rebinds these names
# (``torch.allclose = lambda *a: True``) cannot change what the checks compute.
_TENSOR_DETACH = torch.Tensor.detach
_TENSOR_CPU = torch.Tensor.cpu
_TENSOR_NUMPY = torch.Tensor.numpy
_NP_ARRAY = np.array
_NP_ABS = np.abs
_NP_MAX = np.max
_NP_ISFINITE = np.isfinite
_NP_ALL = np.all


class CheckFailure(AssertionError):
    """The answer is wrong; the message says what is wrong and how to find it."""


class NotImplementedYet(CheckFailure):
    """The exercise still raises ``NotImplementedError``: nothing to check yet."""


def call_student(
    name: str,
    func: Callable[..., Any],
    *args: Any,
    hint: str = "",
    hints: dict[str, str] | None = None,
    **kwargs: Any,
):
    """Call the student's ``func`` and turn its failures into clear check failures.

    Parameters
    ----------
    name : str
        Name of the exercise function, used in messages.
    func : callable
        The student's function.
    *args, **kwargs
        Passed to ``func``.
    hint : str
        Advice appended to any error ``func`` raises (say only what is true of every error).
    hints : dict, optional
        ``{text: advice}``: advice appended when the error's text contains ``text`` (added to
        :data:`ERROR_HINTS`, which apply to every check).

    Returns
    -------
    The value ``func`` returned.

    Raises
    ------
    NotImplementedYet
        When ``func`` raises ``NotImplementedError``.
    CheckFailure
        When ``func`` raises anything else; the original exception is chained (``from``), so its
        traceback stays visible.
    """
    if not callable(func):
        raise CheckFailure(f"{name} should be a function, got {type(func).__name__}")
    try:
        return func(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotImplementedYet(f"{name} is not implemented yet.") from exc
    except Exception as exc:  # the student's own error: report it in full, never hide it
        message = f"{name} raised {type(exc).__name__}: {exc}"
        extra = []
        for key, advice in {**ERROR_HINTS, **(hints or {})}.items():
            if key in str(exc) and advice not in extra:
                extra.append(advice)
        if hint:
            extra.append(hint)
        if extra:
            message += "\nHint: " + " ".join(extra)
        raise CheckFailure(message) from exc


ERROR_HINTS: dict[str, str] = {
    "shapes cannot be multiplied": (
        "Two matrices were multiplied in an order whose inner sizes do not match; write down the "
        "shape of each factor."
    ),
    "mismatch in its core dimension": (
        "Two matrices were multiplied in an order whose inner sizes do not match; write down the "
        "shape of each factor."
    ),
    "to have the same dtype": (
        "Two tensors of different dtypes met (float32 and float64): one was created with another "
        "dtype (torch.eye(..., dtype=torch.float64), torch.tensor of NumPy values, .double()). "
        "Keep every tensor in the dtype of the data you are given."
    ),
    "expected scalar type": (
        "Two tensors of different dtypes met: keep every tensor in the dtype of the data you are "
        "given (no .double(), no NumPy float64 values)."
    ),
    "must be real number, not NoneType": "A value is still `...` or None; complete every line.",
    "Ellipsis": "A placeholder `...` is still in your code; replace it with an expression.",
}


def to_array(value: Any, what: str, *, allow_numpy: bool = False) -> np.ndarray:
    """Copy a tensor (or array) into a new float64 NumPy array, trusting nothing.

    For the check's own tensors; what a student's function returns goes through
    :func:`~dlnn_helpers.checks._contract.expect_tensor` (or ``expect_array``, ``expect_number``),
    which also hold it to the documented dtype and shape.

    Parameters
    ----------
    value : Any
        What the student returned.
    what : str
        How to call it in messages (e.g. ``"U"``).
    allow_numpy : bool
        Accept an exact ``np.ndarray`` as well as an exact ``torch.Tensor``.

    Returns
    -------
    np.ndarray
        A float64 copy; the student's object is never used again.
    """
    kind = type(value)
    if kind is torch.Tensor:
        if value.is_complex():
            raise CheckFailure(f"{what} is a complex tensor; it should be real.")
        array = _TENSOR_NUMPY(_TENSOR_CPU(_TENSOR_DETACH(value)))
    elif allow_numpy and kind is np.ndarray:
        array = value
        if array.dtype.kind not in "fiub":
            raise CheckFailure(f"{what} has dtype {array.dtype}; it should hold real numbers.")
    else:
        wanted = "a torch.Tensor or a np.ndarray" if allow_numpy else "a torch.Tensor"
        got = f"{kind.__module__}.{kind.__qualname__}"
        raise CheckFailure(f"{what} should be {wanted}, got {got}.")
    copy = _NP_ARRAY(array, dtype=np.float64, copy=True)
    if not _NP_ALL(_NP_ISFINITE(copy)):
        raise CheckFailure(f"{what} contains NaN or infinite values.")
    return copy


def unpack(value: Any, names: tuple[str, ...], func_name: str) -> list[Any]:
    """Split a returned tuple into its items without calling any of its (possibly lying) methods.

    Parameters
    ----------
    value : Any
        What the student's function returned.
    names : tuple of str
        Names of the expected items, e.g. ``("U", "S", "V")``.
    func_name : str
        Name of the function, for messages.
    """
    expected = f"({', '.join(names)})"
    if not isinstance(value, (tuple, list)):
        raise CheckFailure(
            f"{func_name} should return the tuple {expected}, got {type(value).__name__}."
        )
    base = tuple if isinstance(value, tuple) else list
    length = base.__len__(value)
    if length != len(names):
        raise CheckFailure(
            f"{func_name} should return {len(names)} values {expected}, got {length}."
        )
    return [base.__getitem__(value, i) for i in range(length)]


def max_rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference divided by the largest magnitude of ``expected``."""
    scale = float(_NP_MAX(_NP_ABS(expected))) or 1.0
    return float(_NP_MAX(_NP_ABS(actual - expected))) / scale


def close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-4) -> bool:
    """True when both arrays have the same shape and agree within ``rtol`` of the largest entry."""
    return actual.shape == expected.shape and max_rel_error(actual, expected) <= rtol


@contextlib.contextmanager
def captured_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings raised inside the block instead of printing them to stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def warning_note(caught: list[warnings.WarningMessage]) -> str:
    """Summarise recorded warnings for the verdict (a warning is not an error, but worth fixing)."""
    if not caught:
        return ""
    texts = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    return "\nNote: your code raised a warning; fix it so that it runs cleanly:\n  " + "\n  ".join(
        texts
    )


class Verdict:
    """The outcome of :func:`self_check`: true when the answer is correct.

    It shows nothing when it is the last value of a notebook cell (the verdict is already printed),
    so a self-check cell displays no stray ``True``.
    """

    __slots__ = ("passed",)

    def __init__(self, passed: bool) -> None:
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"Verdict(passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Display nothing in IPython."""


def self_check(check: Callable[..., str], func: Callable[..., Any], **settings: Any) -> Verdict:
    """Run a check for a notebook's self-check cell and print a verdict; never raises.

    Parameters
    ----------
    check : callable
        One of the ``check_*`` functions.
    func : callable
        The student's function.
    **settings
        Passed to ``check`` (seed, shapes, …).

    Returns
    -------
    Verdict
        True (in a boolean context) when the answer is correct.
    """
    try:
        summary = check(func, **settings)
    except NotImplementedYet as exc:
        print(f"⏳ {exc} Complete the exercise, then run this cell again.")
        return Verdict(False)
    except CheckFailure as exc:
        print(f"❌ {exc}")
        cause = exc.__cause__
        if cause is not None:
            print("\nThe error raised by your code:")
            print("".join(traceback.format_exception(type(cause), cause, cause.__traceback__)))
        return Verdict(False)
    print(f"✅ {summary}")
    return Verdict(True)
