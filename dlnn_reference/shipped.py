"""Write the expected values that ship with the student package (``dlnn_helpers/checks/expected``).

Every self-check call listed in a reference module's ``SELF_CHECKS`` is run once with the reference
answer, under :func:`dlnn_helpers.checks._expected.capture`: each expected value the check asks for
is computed live and collected, then written as one JSON file per check module (sorted keys, so the
same references always give the same bytes).  ``python scripts/course.py expected`` runs this, and
``--check`` reports a stale file.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from dlnn_helpers.checks import _expected

from . import MODULES


def capture_all() -> dict[str, dict]:
    """Run every module's ``SELF_CHECKS`` with the reference answers; return what they asked for."""
    with _expected.capture() as captured:
        for name in MODULES:
            try:
                module = importlib.import_module(f"dlnn_reference.{name}")
            except ModuleNotFoundError:
                continue
            for check, args, kwargs in getattr(module, "SELF_CHECKS", []):
                check(*args, **kwargs)
        return {module: dict(table) for module, table in captured.items()}


def write(folder: Path = _expected.SHIPPED) -> list[Path]:
    """Write the shipped expected values into ``folder``; return the files written."""
    captured = capture_all()
    for stale in folder.glob("*.json"):
        if stale.stem not in captured:
            stale.unlink()
    return _expected.write_shipped(captured, folder)


def stale(folder: Path = _expected.SHIPPED) -> list[str]:
    """The shipped files that differ from what the references give now (empty: up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_bytes() for p in write(Path(tmp))}
    current = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    return sorted(name for name in fresh.keys() | current.keys()
                  if fresh.get(name) != current.get(name))
