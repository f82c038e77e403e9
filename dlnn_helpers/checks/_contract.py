"""The contract every check enforces on what a student's function returns, and its dependencies.

An exercise's docstring documents what its function returns: a ``torch.Tensor`` or a
``np.ndarray``, of a given shape; its dtype is the dtype of the data the function receives
(float32 tensors in, float32 tensors out; float64 NumPy arrays in, float64 arrays out), or torch's
default float32 when it receives no tensor.  A check takes what comes back through one of

* :func:`expect_tensor` — an exact ``torch.Tensor`` of the documented dtype and shape;
* :func:`expect_array` — an exact ``np.ndarray`` of the documented dtype and shape;
* :func:`expect_number` — a single number: a Python float (or int) or a 0-d tensor;

each of which either returns a float64 NumPy copy (the student's object is never used again) or
raises :class:`~dlnn_helpers.checks._core.CheckFailure` with a message that names what was returned
and what was expected.  Anything else inside the contract is judged on its values only.

:func:`verify_dependencies` runs, before anything else, the checks of the earlier exercises that a
student's answer calls (``ADAMOptimizer`` calls ``ema_update``), so that a failure is reported where
it is: "ADAMOptimizer calls your ema_update, which is not correct yet: …".
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ._core import (
    _NP_ALL,
    _NP_ARRAY,
    _NP_ISFINITE,
    _TENSOR_CPU,
    _TENSOR_DETACH,
    _TENSOR_NUMPY,
    CheckFailure,
    NotImplementedYet,
)

Shape = tuple[int, ...]


def describe_type(value: Any) -> str:
    """How a returned value is named in messages: ``torch.Tensor (float64, shape (3, 4))``."""
    kind = type(value)
    if kind is torch.Tensor:
        return f"a torch.Tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    if kind is np.ndarray:
        return f"a np.ndarray of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, torch.Tensor):
        return f"a {kind.__module__}.{kind.__qualname__} (a subclass of torch.Tensor)"
    if isinstance(value, np.ndarray):
        return f"a {kind.__module__}.{kind.__qualname__} (a subclass of np.ndarray)"
    if value is None:
        return "None (is a `return` missing?)"
    if kind in (list, tuple):
        return f"a {kind.__name__} of {len(value)} items"
    return f"a {kind.__module__}.{kind.__qualname__}".replace("builtins.", "")


def shape_problem(got: Shape, expected: Shape) -> str:
    """Why ``got`` is not ``expected``, in words ('' when they are equal)."""
    if got == expected:
        return ""
    squeezed_got = tuple(s for s in got if s != 1)
    squeezed_expected = tuple(s for s in expected if s != 1)
    if squeezed_got == squeezed_expected and len(got) > len(expected):
        extra = len(got) - len(expected)
        return (f"it has {'an extra axis' if extra == 1 else f'{extra} extra axes'} of size 1: "
                "remove it (reshape to the expected shape, or squeeze the extra axis)")
    if squeezed_got == squeezed_expected and len(got) < len(expected):
        return ("an axis of size 1 is missing: keep it (index with a slice, e.g. x[:, :1], or "
                "unsqueeze)")
    if len(got) == len(expected) == 2 and got == expected[::-1]:
        return "it looks transposed"
    if sorted(got) == sorted(expected) and len(got) > 2:
        return "its axes are in another order"
    return ""


def _shape_failure(
    what: str, got: Shape, expected: Shape, meaning: str, hints: dict[Shape, str] | None = None
) -> CheckFailure:
    why = (hints or {}).get(got) or shape_problem(got, expected)
    named = f" = {meaning}" if meaning else ""
    return CheckFailure(
        f"{what} has shape {got}; it should have shape {expected}{named}"
        + (f": {why}." if why else ".")
    )


def _finite_copy(array: np.ndarray, what: str) -> np.ndarray:
    copy = _NP_ARRAY(array, dtype=np.float64, copy=True)
    if not _NP_ALL(_NP_ISFINITE(copy)):
        raise CheckFailure(f"{what} contains NaN or infinite values.")
    return copy


def expect_tensor(
    value: Any,
    what: str,
    *,
    shape: Sequence[int] | None,
    dtype: torch.dtype = torch.float32,
    meaning: str = "",
    dtype_reason: str = "the dtype of the data it receives",
    shape_hints: dict[Shape, str] | None = None,
) -> np.ndarray:
    """Require an exact ``torch.Tensor`` of ``dtype`` and ``shape``; return a float64 NumPy copy.

    Parameters
    ----------
    value : Any
        What the student's function returned.
    what : str
        Its name in messages (``"grad_w"``).
    shape : sequence of int or None
        The documented shape; None when the caller checks the shape itself.
    dtype : torch.dtype
        The documented dtype (that of the function's inputs).
    meaning : str
        The documented shape in words, e.g. ``"(n, width): one row per point"``.
    dtype_reason : str
        Why this dtype is expected, for the message.
    shape_hints : dict, optional
        ``{wrong shape: what it reveals}``, for wrong shapes that a known mistake gives.

    Returns
    -------
    np.ndarray
        A float64 copy of the values, with the documented shape.
    """
    expected_shape = None if shape is None else tuple(int(s) for s in shape)
    wanted = f"a torch.Tensor of dtype {dtype}" + (
        "" if expected_shape is None else f" and shape {expected_shape}")
    kind = type(value)
    if kind is not torch.Tensor:
        advice = ""
        if kind is np.ndarray:
            advice = (" Compute it with torch operations (a NumPy detour changes the type, and "
                      "often the dtype).")
        elif isinstance(value, torch.nn.Parameter):
            advice = " Return a plain tensor: .detach() it, or compute a new tensor."
        elif kind in (float, int) or isinstance(value, np.generic):
            advice = " Keep the result as a tensor (no .item() or float())."
        raise CheckFailure(f"{what} is {describe_type(value)}; it should be {wanted}.{advice}")
    if value.is_complex():
        raise CheckFailure(f"{what} is a complex tensor ({value.dtype}); it should be real, "
                           f"{dtype}.")
    if value.dtype != dtype:
        raise CheckFailure(
            f"{what} has dtype {value.dtype}; it should be {dtype} ({dtype_reason}). A "
            f"{value.dtype} result comes from a conversion (.double(), .float(), .long(), NumPy, "
            f"or a tensor created with another dtype): keep every tensor {dtype}."
        )
    got_shape = tuple(int(s) for s in value.shape)
    if expected_shape is not None and got_shape != expected_shape:
        raise _shape_failure(what, got_shape, expected_shape, meaning, shape_hints)
    return _finite_copy(_TENSOR_NUMPY(_TENSOR_CPU(_TENSOR_DETACH(value))), what)


def expect_array(
    value: Any,
    what: str,
    *,
    shape: Sequence[int] | None,
    dtype: np.dtype | type = np.float64,
    meaning: str = "",
    shape_hints: dict[Shape, str] | None = None,
) -> np.ndarray:
    """Require an exact ``np.ndarray`` of ``dtype`` and ``shape``; return a float64 copy.

    Parameters
    ----------
    value : Any
        What the student's function returned.
    what : str
        Its name in messages.
    shape : sequence of int or None
        The documented shape; None when the caller checks the shape itself.
    dtype : numpy dtype
        The documented dtype (that of the function's inputs).
    meaning : str
        The documented shape in words.
    shape_hints : dict, optional
        ``{wrong shape: what it reveals}``, for wrong shapes that a known mistake gives.

    Returns
    -------
    np.ndarray
        A float64 copy of the values.
    """
    expected_shape = None if shape is None else tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    wanted = f"a np.ndarray of dtype {dtype}" + (
        "" if expected_shape is None else f" and shape {expected_shape}")
    kind = type(value)
    if kind is not np.ndarray:
        advice = ""
        if isinstance(value, torch.Tensor):
            advice = (" The exercise works with the NumPy arrays it is given: use NumPy "
                      "functions (np.linalg...), not torch.")
        raise CheckFailure(f"{what} is {describe_type(value)}; it should be {wanted}.{advice}")
    if value.dtype != dtype:
        raise CheckFailure(
            f"{what} has dtype {value.dtype}; it should be {dtype}, the dtype of the arrays it "
            "receives: do not convert it."
        )
    if expected_shape is not None and value.shape != expected_shape:
        raise _shape_failure(what, value.shape, expected_shape, meaning, shape_hints)
    return _finite_copy(value, what)


def expect_number(value: Any, what: str, *, dtype: torch.dtype | None = None) -> float:
    """Require a single number: a Python float or int, or a 0-d ``torch.Tensor`` (of ``dtype``).

    A float subclass such as ``np.float64`` is read through ``float.__float__`` (it cannot lie).

    Parameters
    ----------
    value : Any
        What the student's function returned.
    what : str
        Its name in messages.
    dtype : torch.dtype, optional
        The dtype a 0-d tensor must have.

    Returns
    -------
    float
    """
    kind = type(value)
    if kind is bool:
        raise CheckFailure(f"{what} is a bool; it should be a number.")
    if kind is int:
        number = float(int.__index__(value))
    elif isinstance(value, float):
        number = float.__float__(value)
    elif kind is torch.Tensor:
        if value.dim() != 0:
            raise _shape_failure(what, tuple(int(s) for s in value.shape), (),
                                 "a single number: a 0-d tensor or a float")
        number = float(expect_tensor(value, what, shape=(), dtype=dtype or value.dtype))
    else:
        raise CheckFailure(
            f"{what} is {describe_type(value)}; it should be a single number (a float or a 0-d "
            "torch.Tensor)."
        )
    if number != number or number in (float("inf"), float("-inf")):
        raise CheckFailure(f"{what} is {number}; it should be a finite number.")
    return number


# ------------------------------------------------------------------------------------------------
# Dependencies: an answer that calls the answer of an earlier exercise
# ------------------------------------------------------------------------------------------------


def _code_objects(obj: Any) -> Iterator[types.CodeType]:
    """Code objects of a function, or of every method of a class, nested functions included."""
    functions: list[Any] = []
    if isinstance(obj, type):
        for klass in obj.__mro__:
            if klass is object or str(klass.__module__).startswith("torch."):
                continue
            for attribute in vars(klass).values():
                if isinstance(attribute, (staticmethod, classmethod)):
                    attribute = attribute.__func__
                if isinstance(attribute, types.FunctionType):
                    functions.append(attribute)
    elif isinstance(obj, types.FunctionType):
        functions.append(obj)
    stack = [f.__code__ for f in functions]
    while stack:
        code = stack.pop()
        yield code
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


def _globals_of(obj: Any) -> dict:
    if isinstance(obj, types.FunctionType):
        return obj.__globals__
    for klass in getattr(obj, "__mro__", ()):
        for attribute in vars(klass).values():
            if isinstance(attribute, (staticmethod, classmethod)):
                attribute = attribute.__func__
            if isinstance(attribute, types.FunctionType):
                return attribute.__globals__
    return {}


def called_answers(obj: Any, names: Sequence[str]) -> dict[str, Any]:
    """The functions among ``names`` that ``obj`` (a function or a class) refers to by name.

    They are looked up where ``obj`` was defined (the notebook's namespace).
    """
    try:
        used = {name for code in _code_objects(obj) for name in code.co_names}
        namespace = _globals_of(obj)
    except Exception:  # an unusual object: no dependency can be found
        return {}
    return {name: namespace[name] for name in names if name in used and name in namespace}


class DependencyFailure(CheckFailure):
    """The answer calls the answer of an earlier exercise, which is itself wrong."""


def verify_dependencies(
    name: str, answer: Any, dependencies: dict[str, Callable[..., str]]
) -> list[str]:
    """Run the check of every earlier exercise that ``answer`` calls, before checking ``answer``.

    Parameters
    ----------
    name : str
        Name of the exercise being checked (``"ADAMOptimizer"``).
    answer : function or class
        The student's answer.
    dependencies : dict
        ``{function name: its check}``, e.g. ``{"ema_update": check_ema_update}``.

    Returns
    -------
    list of str
        The names of the dependencies found and verified.

    Raises
    ------
    NotImplementedYet
        When a dependency is not implemented yet.
    DependencyFailure
        When a dependency fails its own check; the message says which exercise to fix, and
        repeats that check's message.
    """
    verified = []
    for dep_name, func in called_answers(answer, list(dependencies)).items():
        try:
            dependencies[dep_name](func)
        except NotImplementedYet as exc:
            raise NotImplementedYet(
                f"{name} calls {dep_name}, which is not implemented yet: complete {dep_name} "
                "(the earlier exercise) first."
            ) from exc.__cause__
        except CheckFailure as exc:
            raise DependencyFailure(
                f"{name} calls your {dep_name}, which is not correct yet, so {name} cannot be "
                f"right: fix {dep_name} first (the earlier exercise). Its check says: {exc}"
            ) from exc.__cause__
        verified.append(dep_name)
    return verified
