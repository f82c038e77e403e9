"""Self-checks and autograder checks of the graded exercises (one module per tutorial).

Notebooks import everything from here (``from dlnn_helpers.checks import check_net_svd,
self_check``), never from a submodule.  Every check holds answers to one contract (the documented
type, dtype and shape; dependencies first), written in CONTRIBUTING.md and built on ``_contract``
(what an answer returns) and ``_diagnosis`` (compare, try the known mistakes, report the first bad
entry).

Every check is registered once, next to its code (:func:`._registry.registered`); this namespace
holds every registered check (each check module is imported here, so a new module needs no line
of its own) and :data:`CHECKS` says what the course knows of each.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from ._core import CheckFailure, NotImplementedYet, self_check
from ._expected import ReferenceUnavailable
from ._fallback import own_or_fallback
from ._registry import CHECKS
from ._shortcuts import ShortcutUsed

for _module in _pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_module.name}")  # registers the module's checks
globals().update({_name: _entry.function for _name, _entry in CHECKS.items()})
del _module

__all__ = [
    "CheckFailure",
    "NotImplementedYet",
    "self_check",
    "own_or_fallback",
    "ReferenceUnavailable",
    "ShortcutUsed",
    "CHECKS",
    *CHECKS,
]
