"""Record what a student's function returns, inside the sandboxed kernel (staged as a module).

The grader rewrites every test call ``check_x(func, seed=3)`` of a test cell into
``_dlnn_grading_recorder.record(CELL, INDEX, "check_x", func, {"seed": 3})``.  Here the check runs
with ``func`` wrapped: each call of the student's function is recorded (its return value, or the
exception it raised, and the state of its arguments afterwards) and written to
``records/CELL.pt`` with :func:`torch.save`.  The verdict of the check computed here is *not*
used for plain functions: the grader replays the recording in its own clean process
(:mod:`autograder.grading.replay`) and computes the verdict there, so a notebook that patches numpy,
torch, ``builtins`` or the check functions, or returns objects that lie, only changes what is
recorded — the student's own answers — never how they are judged.  Exercises that are classes
(the check drives their methods) or functions that receive callbacks from the check cannot be
replayed; for them the verdict computed here is recorded, used, and flagged in the report.

This module is imported by untrusted code and trusts nothing it finds at run time; it uses only the
standard library, ``numpy`` and ``torch``.  It prints nothing.
"""

from __future__ import annotations

import os
import types

import numpy as np
import torch

_SAVE = torch.save
_TENSOR = torch.Tensor
_NDARRAY = np.ndarray
_RECORDS: dict[str, list] = {}
_FOLDER = os.path.join(os.getcwd(), "records")
MAX_DEPTH = 3


def _plain_tensor(value):
    return _TENSOR.clone(_TENSOR.detach(_TENSOR.cpu(value))).as_subclass(_TENSOR)


def _encode(value, depth: int = 0):
    """A structure of tensors, numbers and strings that ``torch.load(weights_only=True)`` reads."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return {"kind": "value", "value": value}
    if isinstance(value, _TENSOR):
        return {"kind": "tensor", "exact": kind is _TENSOR, "value": _plain_tensor(value)}
    if isinstance(value, _NDARRAY):
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            return {
                "kind": "ndarray",
                "exact": kind is _NDARRAY,
                "value": torch.from_numpy(np.array(array, copy=True)),
            }
        return {"kind": "opaque", "type": f"numpy.ndarray[{array.dtype}]"}
    if kind in (tuple, list) and depth < MAX_DEPTH:
        items = tuple.__iter__(value) if kind is tuple else list.__iter__(value)
        return {"kind": kind.__name__, "items": [_encode(v, depth + 1) for v in items]}
    if isinstance(value, torch.nn.Module):
        return {"kind": "opaque", "type": "torch.nn.Module"}
    return {"kind": "opaque", "type": f"{kind.__module__}.{kind.__qualname__}"}


def _opaque_inside(encoded) -> bool:
    if encoded.get("kind") == "opaque":
        return True
    return any(_opaque_inside(item) for item in encoded.get("items", []))


def _argument_state(value, before):
    """What a function did to one of its arguments (for in-place exercises)."""
    if isinstance(value, torch.nn.Module):
        params = dict(value.named_parameters())
        return {
            "kind": "module",
            "params": {k: _plain_tensor(p) for k, p in params.items()},
            "replaced": [k for k, p in params.items() if before.get(k) is not p],
        }
    if isinstance(value, (_TENSOR, _NDARRAY)):
        return _encode(value)
    return {"kind": "value", "value": None}


def _wrap(cell: str, func):
    def recorded(*args, **kwargs):
        if any(callable(a) and not isinstance(a, torch.nn.Module)
               for a in (*args, *kwargs.values())):
            _RECORDS[cell][-1]["replayable"] = False  # a callback into the check: not replayable
        before = [
            dict(a.named_parameters()) if isinstance(a, torch.nn.Module) else None for a in args
        ]
        entry: dict = {}
        try:
            result = func(*args, **kwargs)
        except NotImplementedError as exc:
            entry = {"raised": "NotImplementedError", "message": str(exc)[:2000]}
            raise
        except BaseException as exc:
            entry = {"raised": type(exc).__name__, "message": str(exc)[:2000]}
            raise
        else:
            entry = {"returned": _encode(result)}
            if _opaque_inside(entry["returned"]):  # e.g. an nn.Module: only judged here
                _RECORDS[cell][-1]["replayable"] = False
            return result
        finally:
            try:
                entry["args"] = [_argument_state(a, b) for a, b in zip(args, before, strict=False)]
            except Exception as exc:  # the student's objects may refuse to be read
                entry["args_error"] = f"{type(exc).__name__}: {exc}"[:2000]
            _RECORDS[cell][-1]["calls"].append(entry)

    return recorded


def _find_check(name: str):
    """The check called ``name`` in ``dlnn_helpers.checks`` or one of its modules."""
    import importlib
    import pkgutil

    package = importlib.import_module("dlnn_helpers.checks")
    if hasattr(package, name):
        return getattr(package, name)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"dlnn_helpers.checks.{info.name}")
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(name)


def record(cell: str, index: int, check_name: str, func, settings: dict, args=()) -> None:
    """Run ``check_name(func, *args, **settings)`` with ``func`` recorded; save the recording."""
    calls = _RECORDS.setdefault(cell, [])
    while len(calls) <= index:
        calls.append({})
    # A plain function is replayed outside; a class (the check drives its methods) or a function
    # that gets callbacks is not, and then the verdict computed here is used (and reported).
    replayable = isinstance(func, types.FunctionType)
    entry = {"callable": callable(func), "calls": [], "replayable": replayable,
             "passed": False, "message": ""}
    calls[index] = entry
    _RECORDS[cell] = calls[: index + 1]
    try:
        check = _find_check(check_name)
        if callable(func):
            entry["message"] = str(
                check(_wrap(cell, func) if replayable else func, *args, **settings)
            )
            entry["passed"] = True
    except BaseException as exc:  # noqa: BLE001 - recorded; the run goes on
        entry["message"] = (str(exc) or type(exc).__name__)[:4000]
    finally:
        os.makedirs(_FOLDER, exist_ok=True)
        _SAVE(_RECORDS[cell], os.path.join(_FOLDER, f"{cell}.pt"))
