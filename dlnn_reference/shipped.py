"""Write the expected values that ship with the student package (``dlnn_helpers/checks/expected``).

Every self-check call (:func:`dlnn_reference.self_checks`, derived from the check registry and the
reference answers registered with :func:`dlnn_reference.answers`) is run once with the reference
answer, under :func:`dlnn_helpers.checks._expected.capture`: each expected value the check asks for
is computed live and collected, then written as one JSON file per check module (sorted keys, so the
same values always give the same bytes).  ``python scripts/course.py expected`` runs this, and
``--check`` reports a stale file.

**Fresh or stale is judged with a tolerance, never bitwise.**  Another CPU, another BLAS or another
number of threads adds and multiplies in another order and changes the last bits of float32 results
(the arrays print identically).  A shipped file is *fresh* when it holds the same settings, the
same kinds, dtypes and shapes, the same integers, strings and non-finite values, and floats within
:data:`RTOL` of the largest magnitude of their array (of the number itself, for a lone number, with
:data:`ATOL` as a floor; the optimisers' trajectories, shipped as float32 bytes in base64, are
compared as the arrays they are): float32's resolution is 6e-8, so reordered sums stay far inside, while a
changed reference, setting or seed moves values by far more; and the checks themselves accept
answers within 1e-4 of the largest entry (``dlnn_helpers.checks._core.close``), ten times looser.
:func:`write` rewrites only the files that are stale by that rule, so ``python scripts/course.py
expected`` (and ``all``) on another machine leaves ``git status`` clean; the release and the tests
use :func:`stale`, the same rule.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from dlnn_helpers.checks import _expected

from . import self_checks

RTOL = 5e-5
"""Relative tolerance of shipped floats: of the largest magnitude of their array (or number)."""

ATOL = 1e-7
"""Absolute floor of the tolerance (float32's resolution near 1), for values that are all ~0."""


def capture_all() -> dict[str, dict]:
    """Run every self-check call with the reference answers; return what they asked for."""
    with _expected.capture() as captured:
        for check, args, kwargs in self_checks():
            check(*args, **kwargs)
        return {module: dict(table) for module, table in captured.items()}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _numbers_differ(fresh: list, shipped: list, exact: bool) -> str:
    """Why two flat lists of numbers differ beyond the tolerance ('' when they agree)."""
    if len(fresh) != len(shipped):
        return f"{len(shipped)} values shipped, {len(fresh)} now"
    if exact:
        return "" if fresh == shipped else "integer values differ"
    scale = max((abs(x) for x in shipped if _finite(x)), default=0.0)
    bound = max(RTOL * scale, ATOL)
    for index, (a, b) in enumerate(zip(fresh, shipped, strict=True)):
        if _finite(a) and _finite(b):
            if abs(a - b) > bound:
                return f"value {index}: {b!r} shipped, {a!r} now (tolerance {bound:.3g})"
        elif a != b:  # nan, inf, -inf are written as strings: they must match exactly
            return f"value {index}: {b!r} shipped, {a!r} now"
    return ""


def _trajectory(value: Any) -> np.ndarray | None:
    """A shipped trajectory ``{"tuple": [n_steps, n_values, base64 float32 bytes]}`` as an array
    (how :mod:`dlnn_helpers.checks.optimisation` ships them), else None."""
    items = value.get("tuple") if isinstance(value, dict) else None
    if not (isinstance(items, list) and len(items) == 3 and isinstance(items[2], str)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in items[:2])):
        return None
    try:
        data = base64.b64decode(items[2], validate=True)
    except ValueError:
        return None
    if len(data) != 4 * items[0] * items[1]:
        return None
    return np.frombuffer(data, dtype="<f4").astype(np.float64).reshape(items[0], items[1])


def difference(fresh: Any, shipped: Any, where: str = "") -> str:
    """The first difference beyond the tolerance between two encoded values ('' when none).

    Both are what :func:`dlnn_helpers.checks._expected.encode` writes (read back from JSON).
    """
    if isinstance(fresh, dict) and isinstance(shipped, dict):
        for kind in ("tensor", "array"):
            if kind in fresh or kind in shipped:
                if fresh.get(kind) != shipped.get(kind) or fresh.get("shape") != shipped.get("shape"):
                    return (f"{where}: {shipped.get(kind)} {shipped.get('shape')} shipped, "
                            f"{fresh.get(kind)} {fresh.get('shape')} now")
                exact = not str(fresh[kind]).startswith(("float", "complex", "bfloat"))
                why = _numbers_differ(fresh["data"], shipped["data"], exact)
                return f"{where}: {why}" if why else ""
        if _trajectory(fresh) is not None and _trajectory(shipped) is not None:
            a, b = _trajectory(fresh), _trajectory(shipped)
            if a.shape != b.shape:
                return f"{where}: a trajectory of shape {b.shape} shipped, {a.shape} now"
            why = _numbers_differ(a.ravel().tolist(), b.ravel().tolist(), exact=False)
            return f"{where}: {why}" if why else ""
        if "float" in fresh or "float" in shipped:
            if set(fresh) != set(shipped):
                return f"{where}: another kind of value"
            a, b = fresh["float"], shipped["float"]
            if _finite(a) and _finite(b):
                bound = max(RTOL * abs(b), ATOL)
                return "" if abs(a - b) <= bound else f"{where}: {b!r} shipped, {a!r} now"
            return "" if a == b else f"{where}: {b!r} shipped, {a!r} now"
        if set(fresh) != set(shipped):
            return f"{where}: keys {sorted(shipped)} shipped, {sorted(fresh)} now"
        for key in fresh:
            why = difference(fresh[key], shipped[key], f"{where}/{key}")
            if why:
                return why
        return ""
    if isinstance(fresh, list) and isinstance(shipped, list):
        if len(fresh) != len(shipped):
            return f"{where}: {len(shipped)} items shipped, {len(fresh)} now"
        for index, (a, b) in enumerate(zip(fresh, shipped, strict=True)):
            why = difference(a, b, f"{where}[{index}]")
            if why:
                return why
        return ""
    if type(fresh) is not type(shipped) or fresh != shipped:
        return f"{where}: {shipped!r} shipped, {fresh!r} now"
    return ""


def table_difference(fresh: dict, shipped: dict) -> str:
    """The first difference beyond the tolerance between two files' tables ('' when none)."""
    missing, extra = sorted(set(fresh) - set(shipped)), sorted(set(shipped) - set(fresh))
    if missing or extra:
        return f"settings not shipped: {missing[:2]}; settings no longer used: {extra[:2]}"
    for key in sorted(fresh):
        why = difference(fresh[key], shipped[key], key)
        if why:
            return why
    return ""


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _plain(captured: dict[str, dict]) -> dict[str, dict]:
    """Captured tables as JSON gives them back (what a shipped file holds)."""
    return json.loads(json.dumps(captured))


def compare(folder: Path = _expected.SHIPPED,
            captured: dict[str, dict] | None = None) -> dict[str, str]:
    """Shipped file name -> why it is stale, for every stale file (empty: all fresh)."""
    fresh = _plain(capture_all() if captured is None else captured)
    found = {}
    for module in sorted(fresh):
        shipped = _read(folder / f"{module}.json")
        why = "missing or unreadable" if shipped is None else table_difference(fresh[module], shipped)
        if why:
            found[f"{module}.json"] = why
    for path in sorted(folder.glob("*.json")):
        if path.stem not in fresh:
            found[path.name] = "no self-check uses it any more"
    return found


def stale(folder: Path = _expected.SHIPPED, captured: dict[str, dict] | None = None) -> list[str]:
    """The shipped files that differ beyond the tolerance from what the references give now."""
    return sorted(compare(folder, captured))


def write(folder: Path = _expected.SHIPPED,
          captured: dict[str, dict] | None = None) -> list[Path]:
    """Write the stale shipped files into ``folder`` (fresh ones are left as they are, byte for
    byte); remove files no self-check uses; return the files written."""
    captured = capture_all() if captured is None else captured
    old = compare(folder, captured)
    for name in old:
        path = folder / name
        if Path(name).stem not in captured:
            path.unlink()
    return _expected.write_shipped(
        {module: table for module, table in captured.items() if f"{module}.json" in old}, folder
    )
