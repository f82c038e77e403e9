"""Expected values of the checks: shipped for the self-checks, computed live on the grader.

The reference implementations of the graded exercises are not part of this package (students install
it): they live in the instructor's repository (``dlnn_reference``), which registers, for every check,
a function of the check's *settings* (seed, shapes, hyper-parameters) that returns everything the
check compares with — the correct values under ``"correct"`` and the output of each known mistake
under a name of its own.

:func:`expected` gives that dictionary:

1. from the data shipped with the package (``checks/expected/*.json``): the values of the settings
   that the notebooks' self-check cells use, precomputed by the reference when the student release is
   made (``python scripts/course.py expected``);
2. else, where ``dlnn_reference`` is importable (the instructor's repository, the grader), computed
   live — the hidden tests' settings;
3. else it raises :class:`ReferenceUnavailable`: those settings are judged by the course's grader.

Two rules keep a check correct in the grader's sandbox (which holds the student package only): a
check makes *every* call of the student's code (for all its settings) before its first call of
:func:`expected` — in the kernel that call raises for hidden settings, and a student call never made
there is missing from the recording the grader replays — and it asks once per setting (the
mistakes' values come in the same dictionary), so that every branch of a diagnosis finds its data.
The shipped file is read on every call (it is small) and never kept in memory, so a student's code
can only reach it by reading it, which the check notices (:mod:`._shortcuts`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import _shortcuts

SHIPPED = Path(__file__).parent / "expected"
"""The folder of the shipped expected values: one JSON file per check module."""

REFERENCE_PACKAGE = "dlnn_reference"
"""The instructor-side package that computes expected values (absent from the student release)."""

_capture: dict[str, dict[str, Any]] | None = None
_live_only = False
_shipped_only = False


class ReferenceUnavailable(RuntimeError):
    """The expected values of these settings are neither shipped nor computable here."""


def settings_key(check: str, settings: dict[str, Any]) -> str:
    """The canonical text of ``check`` with ``settings`` (sorted keys, tuples as lists)."""
    return json.dumps([check, _plain(settings)], sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Settings as JSON values (tuples become lists; classes and functions their qualified name)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, type) or callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    raise TypeError(f"a check setting must be plain data, not {type(value).__name__}")


def encode(value: Any) -> Any:
    """``value`` as JSON data that :func:`decode` turns back into equal tensors, arrays, numbers."""
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        return {"tensor": str(array.dtype).removeprefix("torch."), "shape": list(array.shape),
                "data": [_number(x) for x in array.reshape(-1).tolist()]}
    if isinstance(value, np.ndarray):
        return {"array": str(value.dtype), "shape": list(value.shape),
                "data": [_number(x) for x in value.reshape(-1).tolist()]}
    if isinstance(value, dict):
        return {"dict": [[k, encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return {"float": _number(float(value))}
    raise TypeError(f"cannot ship an expected value of type {type(value).__name__}")


def _number(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    return x


def _float(x: Any) -> float:
    return float(x) if isinstance(x, str) else x


def decode(data: Any) -> Any:
    """The value :func:`encode` wrote."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "tensor" in data:
        values = [_float(x) for x in data["data"]]
        dtype = getattr(torch, data["tensor"])
        return torch.tensor(values, dtype=dtype).reshape(data["shape"])
    if "array" in data:
        values = [_float(x) for x in data["data"]]
        return np.array(values, dtype=data["array"]).reshape(data["shape"])
    if "dict" in data:
        return {k: decode(v) for k, v in data["dict"]}
    if "tuple" in data:
        return tuple(decode(v) for v in data["tuple"])
    if "float" in data:
        return _float(data["float"])
    raise ValueError(f"not an encoded expected value: {sorted(data)}")


def _shipped_file(check: str) -> Path:
    module = _MODULES.get(check)
    if module is None:
        raise KeyError(check)
    return SHIPPED / f"{module}.json"


_MODULES: dict[str, str] = {}
"""Check name -> the check module whose shipped file holds it (filled by :func:`register_check`)."""


def register_check(check: str, module: str) -> None:
    """Say which shipped file (``checks/expected/<module>.json``) holds ``check``'s values."""
    _MODULES[check] = module


def _from_shipped(check: str, key: str) -> Any:
    try:
        path = _shipped_file(check)
    except KeyError:
        return None
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as stream:  # read each time: nothing stays in memory
        table = json.load(stream)
    if key not in table:
        return None
    return decode(table[key])


def _reference_function(check: str) -> Callable[..., dict] | None:
    try:
        package = importlib.import_module(REFERENCE_PACKAGE)
    except ImportError:
        return None
    return package.EXPECTED.get(check)


def expected(check: str, **settings: Any) -> dict[str, Any]:
    """Everything ``check`` compares with for ``settings``: ``"correct"`` and each known mistake.

    Parameters
    ----------
    check : str
        The check's name, e.g. ``"check_net_svd"``.
    **settings
        The check's settings (plain data: numbers, strings, tuples, lists, classes by name).

    Returns
    -------
    dict
        ``{"correct": ..., "<mistake>": ...}`` as the reference computes it.

    Raises
    ------
    ReferenceUnavailable
        When the values are neither shipped nor computable here (hidden tests outside the grader).
    """
    _shortcuts.note_expected_lookup(check)
    key = settings_key(check, settings)
    if _capture is None and not _live_only:
        found = _from_shipped(check, key)
        if found is not None:
            return found
    compute = None if _shipped_only else _reference_function(check)
    if compute is None:
        raise ReferenceUnavailable(
            f"{check} with {settings} is judged by the course's grader (its expected values are "
            "not part of the student package); the self-check cell runs the shipped settings"
        )
    value = compute(**settings)
    if not isinstance(value, dict) or "correct" not in value:
        raise TypeError(f"the reference of {check} must return a dict with a 'correct' entry")
    if _capture is not None:
        _capture.setdefault(_MODULES.get(check, "unknown"), {})[key] = encode(value)
        return decode(encode(value))  # exactly what a student will get from the shipped file
    return value


@contextlib.contextmanager
def _mode(name: str, value: Any) -> Iterator[Any]:
    """Set the module's switch ``name`` to ``value`` inside the block."""
    previous = globals()[name]
    globals()[name] = value
    try:
        yield value
    finally:
        globals()[name] = previous


def capture() -> contextlib.AbstractContextManager[dict[str, dict[str, Any]]]:
    """Compute every :func:`expected` call live and collect it (module -> key -> encoded value)."""
    return _mode("_capture", {})


def shipped_only() -> contextlib.AbstractContextManager[bool]:
    """Use the shipped values only, as in the student release (tests)."""
    return _mode("_shipped_only", True)


def live_only() -> contextlib.AbstractContextManager[bool]:
    """Ignore the shipped values and compute every expected value live (tests)."""
    return _mode("_live_only", True)


def write_shipped(captured: dict[str, dict[str, Any]], folder: Path = SHIPPED) -> list[Path]:
    """Write captured values as ``folder/<module>.json`` (sorted keys: the same values give the
    same bytes); return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for module, table in sorted(captured.items()):
        path = folder / f"{module}.json"
        lines = [json.dumps(key) + ":" + json.dumps(table[key], sort_keys=True, separators=(",", ":"))
                 for key in sorted(table)]
        text = "{\n" + ",\n".join(lines) + "\n}\n"  # one setting a line
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
