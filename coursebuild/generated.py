"""Every generated file of the student package, and the one writer of them all (``dlnn-course expected``).

The student package ships files that the instructor's answer key (``dlnn_reference``) computes: the
self-checks' expected values and the data that the notebooks show in place of a long computation.
:data:`GENERATED` lists them all, each with the function of ``dlnn_reference`` that computes it;
``dlnn-course expected`` (= ``python scripts/course.py expected``) writes the stale ones and
``--check`` names each stale file and exits with status 1.  The release refuses to run on a stale
file (``coursebuild.release.preconditions``), and the tests check them the same way.

**Fresh or stale is judged with a tolerance, never bitwise** (another CPU or BLAS changes the last
bits): the expected values by :mod:`dlnn_reference.shipped`'s rule, the other files by the same
relative tolerance (:data:`dlnn_reference.shipped.RTOL` of the largest magnitude of each array or
list of numbers, with :data:`~dlnn_reference.shipped.ATOL` as a floor and, for arrays stored in a
coarser float type, that type's resolution), integers, strings, keys, shapes and dtypes exactly.  A
fresh file is left as it is, byte for byte, so that another machine leaves ``git status`` clean.

Two files come from training runs (minutes): ``data/precomputed_runs.json`` (the solution notebooks
of T3 and T4 executed) and ``data/relu_features.npz`` (T6's networks trained).  They are written and
checked only with ``--training``; without it they are listed as not checked.  The first is the
course's record of chaotic runs, which the notebooks quote: it is fresh while it records the same
experiments (:func:`compare_recorded_runs`), so that ``--training`` never replaces the record by this
CPU's runs of the same experiments; the second likewise holds the same arrays and spectra
(:func:`compare_feature_record`).
"""

from __future__ import annotations

import ast
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from courselayout import course_layout


@dataclass(frozen=True)
class Generated:
    """One generated file (or folder) of the student package."""

    path: str
    """Inside the student package (``data/relu_features.npz``)."""
    topic: str
    """The topic of the tutorial that uses it (see :data:`courselayout.TUTORIALS`)."""
    writer: str
    """``module:function`` of ``dlnn_reference`` that writes it, given the path to write."""
    compare: Callable[[Path, Path], str]
    """(fresh, shipped) -> why they differ beyond the tolerance ('' when they do not)."""
    training: bool = False
    """Written by training runs (minutes): only with ``--training``."""

    @property
    def where(self) -> Path:
        return course_layout().student_package / self.path

    def write(self, path: Path) -> None:
        """Compute the file and write it to ``path``."""
        import importlib

        module, function = self.writer.split(":")
        getattr(importlib.import_module(module), function)(path)


# ------------------------------------------------------------------------------------------------
# Comparison within the tolerance
# ------------------------------------------------------------------------------------------------


def _tolerance() -> tuple[float, float]:
    from dlnn_reference.shipped import ATOL, RTOL

    return RTOL, ATOL


def numbers_differ(fresh: Any, shipped: Any, where: str = "", resolution: float = 0.0) -> str:
    """The first difference beyond the tolerance between two trees of JSON-like values ('' if none).

    Dictionaries must have the same keys, lists the same lengths, strings, booleans and integers the
    same values; floats may differ by ``max(RTOL, resolution)`` times the largest magnitude of the
    list of numbers they belong to (of themselves, when alone), and by ``ATOL`` at least.
    """
    rtol, atol = _tolerance()
    rtol = max(rtol, resolution)
    if isinstance(fresh, dict) and isinstance(shipped, dict):
        if set(fresh) != set(shipped):
            return f"{where}: keys {sorted(shipped)[:4]} shipped, {sorted(fresh)[:4]} now"
        for key in sorted(fresh):
            why = numbers_differ(fresh[key], shipped[key], f"{where}/{key}", resolution)
            if why:
                return why
        return ""
    if isinstance(fresh, (list, tuple)) and isinstance(shipped, (list, tuple)):
        if len(fresh) != len(shipped):
            return f"{where}: {len(shipped)} items shipped, {len(fresh)} now"
        floats = [abs(v) for v in (*fresh, *shipped) if _is_float(v) and math.isfinite(v)]
        scale = max(floats, default=0.0)
        for index, (a, b) in enumerate(zip(fresh, shipped, strict=True)):
            if _is_float(a) and _is_float(b):
                why = _float_differs(a, b, max(rtol * scale, atol))
                if why:
                    return f"{where}[{index}]: {why}"
                continue
            why = numbers_differ(a, b, f"{where}[{index}]", resolution)
            if why:
                return why
        return ""
    if _is_float(fresh) and _is_float(shipped):
        why = _float_differs(fresh, shipped, max(rtol * abs(shipped), atol))
        return f"{where}: {why}" if why else ""
    if type(fresh) is not type(shipped) or fresh != shipped:
        return f"{where}: {shipped!r} shipped, {fresh!r} now"
    return ""


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _float_differs(a: float, b: float, bound: float) -> str:
    if math.isfinite(a) and math.isfinite(b):
        return "" if abs(a - b) <= bound else f"{b!r} shipped, {a!r} now"
    return "" if a == b or (math.isnan(a) and math.isnan(b)) else f"{b!r} shipped, {a!r} now"


def compare_json(fresh: Path, shipped: Path) -> str:
    """Two JSON files, number by number within the tolerance."""
    return numbers_differ(json.loads(fresh.read_text("utf-8")), json.loads(shipped.read_text("utf-8")))


RECORD_IDENTITY = ("label", "n_parameters", "max_epochs")
"""What makes a recorded run the same experiment: its label, its architecture's size, its budget."""


def compare_recorded_runs(fresh: Path, shipped: Path) -> str:
    """Two records of training runs (``precomputed_runs.json``): the same experiments.

    The runs of tutorial 3 are chaotic: made again on another CPU (or BLAS, or thread count) a run
    can part from the recorded one after a few dozen epochs and stop at another epoch for another
    reason, and each record holds its wall time.  The file is the course's *record* of its runs (the
    notebooks quote it), so fresh means the same experiments: the same labels and, for each, the same
    number of parameters and the same epoch budget.  Whether the runs made now still end where the
    record does, for the runs whose outcome did not depend on the CPU, is a claims test of
    tutorial 3 (``test_the_precomputed_runs_are_the_runs_of_the_reference_notebooks``).
    """
    now = json.loads(fresh.read_text("utf-8"))
    then = json.loads(shipped.read_text("utf-8"))
    if sorted(now) != sorted(then):
        return f"runs {sorted(set(then) ^ set(now))[:4]} in only one of the record and the notebooks"
    for label in sorted(now):
        for key in RECORD_IDENTITY:
            if now[label].get(key) != then[label].get(key):
                return f"{label!r}: {key} {then[label].get(key)!r} recorded, {now[label].get(key)!r} now"
    return ""


SPECTRUM_RTOL = 0.05
"""How far a recorded spectrum may lie from this machine's, relative to its largest singular value
(measured: 1.5 % for the two-hidden-layer width-40 network between an AMD EPYC and an Intel Xeon;
tutorial 6's claims tests hold the largest singular values to 1 % of the notebook's own runs)."""


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive, read once."""
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def _layout_differs(fresh: dict[str, np.ndarray], shipped: dict[str, np.ndarray]) -> str:
    """The first difference in two archives' arrays' names, dtypes and shapes ('' when none)."""
    if sorted(fresh) != sorted(shipped):
        return f"arrays {sorted(set(fresh) ^ set(shipped))[:4]} in only one of them"
    for name in sorted(fresh):
        x, y = fresh[name], shipped[name]
        if x.dtype != y.dtype or x.shape != y.shape:
            return f"{name}: {y.dtype}{list(y.shape)} shipped, {x.dtype}{list(x.shape)} now"
    return ""


def _archives_differ(fresh: Path, shipped: Path,
                     array_differs: Callable[[str, np.ndarray, np.ndarray], str]) -> str:
    """The first difference of two ``.npz`` archives ('' when none): in their arrays' names,
    dtypes and shapes, then by ``array_differs(name, fresh_array, shipped_array)``, array by
    array in name order."""
    a, b = _load_npz(fresh), _load_npz(shipped)
    why = _layout_differs(a, b)
    if why:
        return why
    for name in sorted(a):
        why = array_differs(name, a[name], b[name])
        if why:
            return why
    return ""


def compare_feature_record(fresh: Path, shipped: Path) -> str:
    """Two records of tutorial 6's trained networks' features (``relu_features.npz``).

    Made again on another CPU the file differs far beyond float rounding and is still right: the
    networks are trained for thousands of SGD steps (rounding grows along the way), and a singular
    vector's sign (so a principal feature's curve) is LAPACK's choice.  The file is the course's
    record of its runs: fresh while it holds the same arrays (names, dtypes, shapes) and the same
    spectra, each singular value within :data:`SPECTRUM_RTOL` of the largest.  Tutorial 6's claims
    tests compare the record with the solution notebook's own runs.
    """
    return _archives_differ(fresh, shipped, _spectrum_differs)


def _spectrum_differs(name: str, x: np.ndarray, y: np.ndarray) -> str:
    """A spectrum (``s-…``) farther than :data:`SPECTRUM_RTOL` of its largest value; other
    arrays of the feature record only keep their layout."""
    if not name.startswith("s-"):
        return ""
    top = float(np.abs(y.astype(np.float64)).max(initial=0.0))
    gap = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max(initial=0.0))
    if gap > SPECTRUM_RTOL * top:
        return f"{name}: singular values differ by {gap:.3g} (largest {top:.3g})"
    return ""


def _literals(path: Path) -> dict[str, Any]:
    """The module-level ``NAME = literal`` assignments of a generated Python module."""
    values = {}
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def compare_module(fresh: Path, shipped: Path) -> str:
    """Two generated Python modules of literals, value by value within the tolerance."""
    return numbers_differ(_literals(fresh), _literals(shipped))


def compare_npz(fresh: Path, shipped: Path) -> str:
    """Two ``.npz`` archives: the same arrays (names, dtypes, shapes); integers equal, floats within
    the tolerance, or the resolution of their float type when it is coarser (float16)."""
    return _archives_differ(fresh, shipped, _values_differ)


def _values_differ(name: str, x: np.ndarray, y: np.ndarray) -> str:
    """Integers not equal, or floats farther apart than the tolerance (see :func:`compare_npz`)."""
    if not np.issubdtype(x.dtype, np.floating):
        return "" if np.array_equal(x, y) else f"{name}: other values"
    rtol, atol = _tolerance()
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    finite = np.isfinite(y64)
    scale = float(np.abs(y64[finite]).max(initial=0.0))
    bound = max(max(rtol, float(np.finfo(x.dtype).eps)) * scale, atol)
    if not np.array_equal(np.isfinite(x64), finite) or np.abs(x64 - y64)[finite].max(
            initial=0.0) > bound:
        return f"{name}: values differ by more than {bound:.3g}"
    return ""


# ------------------------------------------------------------------------------------------------
# The files
# ------------------------------------------------------------------------------------------------

EXPECTED = "checks/expected"
"""The self-checks' expected values: one JSON file per check module (``dlnn_reference.shipped``)."""

GENERATED: tuple[Generated, ...] = (
    Generated("optimisation_data.py", "optimisation", "dlnn_reference.optimisation:write_fallback_data",
              compare_module),
    Generated("data/classification_grids.npz", "deep_training",
              "dlnn_reference.deep_training_rules:write_grids", compare_npz),
    Generated("data/precomputed_runs.json", "deep_training",
              "dlnn_reference.deep_training:write_precomputed_runs", compare_recorded_runs,
              training=True),
    Generated("data/relu_features.npz", "relu_features",
              "dlnn_reference.relu_features:write_precomputed", compare_feature_record,
              training=True),
)
"""Every generated file of the student package except the expected values (:data:`EXPECTED`)."""


def stale(training: bool = False) -> dict[str, str]:
    """Path inside the student package -> why it is stale, for every stale generated file.

    ``training``: include the files written by training runs (minutes).
    """
    from dlnn_reference import shipped

    package = course_layout().student_package
    found = {f"{EXPECTED}/{name}": why for name, why in shipped.compare(package / EXPECTED).items()}
    with tempfile.TemporaryDirectory() as tmp:
        for item in GENERATED:
            if item.training and not training:
                continue
            fresh = Path(tmp) / Path(item.path).name
            item.write(fresh)
            why = "missing" if not item.where.is_file() else item.compare(fresh, item.where)
            if why:
                found[item.path] = why
    return found


def write(training: bool = False) -> list[str]:
    """Write every stale generated file (fresh ones are left as they are); return those written.

    ``training``: include the files written by training runs (minutes).
    """
    from dlnn_reference import shipped

    package = course_layout().student_package
    written = [f"{EXPECTED}/{p.name}" for p in shipped.write(package / EXPECTED)]
    with tempfile.TemporaryDirectory() as tmp:
        for item in GENERATED:
            if item.training and not training:
                continue
            fresh = Path(tmp) / Path(item.path).name
            item.write(fresh)
            if not item.where.is_file() or item.compare(fresh, item.where):
                item.where.parent.mkdir(parents=True, exist_ok=True)
                item.where.write_bytes(fresh.read_bytes())
                written.append(item.path)
    return written


def skipped(training: bool) -> list[str]:
    """The files that :func:`stale` and :func:`write` leave out without ``training``."""
    return [] if training else [item.path for item in GENERATED if item.training]
