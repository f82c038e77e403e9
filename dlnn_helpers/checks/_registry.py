"""The registry of the checks: each check is registered once, next to its code, by :func:`registered`.

A check module writes, above each check::

    @registered("ex_net_svd", refuses=("multi_dot",))
    def check_net_svd(ex_net_svd, ...) -> str:
        ...

and everything else about the check is derived from :data:`CHECKS`:

* the public namespace :mod:`dlnn_helpers.checks` (``from dlnn_helpers.checks import check_x``);
* the refused routines the grader looks for in the submitted text
  (:data:`~._shortcuts.DECLARED`, through :func:`~._shortcuts.declare`);
* the shipped file that holds the check's expected values (``checks/expected/<topic>.json``,
  through :func:`~._expected.register_check`), the topic being the check module's name;
* in the instructor's repository: the reference module that computes them
  (``dlnn_reference.<topic>``), the self-check calls whose values ship (``dlnn_reference.answers``),
  the library routine the grader compares an optimiser with (``library``), and the tests that run
  over every check (contract, calls first, no answers in the package, shortcuts).

CONTRIBUTING.md ("Adding a check") gives the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ._expected import register_check
from ._shortcuts import declare

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Registered:
    """What the course knows of one check."""

    name: str
    """The check's name, ``check_...`` (the function's own name)."""
    function: Callable[..., str]
    topic: str
    """The check module's name (``deep_linear``): its shipped file and its reference module."""
    exercise: str
    """The exercise's name as the student knows it (``ex_net_svd``; a pattern such as
    ``ex_*_weights`` where one check serves several exercises)."""
    refuses: tuple[str, ...]
    """Keys of :data:`~._shortcuts.ROUTINES` the exercise exists to replace."""
    library: str
    """The library class the exercise re-implements (``torch.optim.SGD``), for the grader's
    review flag (a trajectory bitwise identical to it); ``""`` for none."""


CHECKS: dict[str, Registered] = {}
"""Check name -> its registration, in the order the check modules define them."""


def registered(exercise: str, *, refuses: tuple[str, ...] = (), library: str = "") -> Callable[[F], F]:
    """Register the decorated check (returned unchanged).

    Parameters
    ----------
    exercise : str
        The exercise's name as the student knows it (for the shortcut messages).
    refuses : tuple of str
        The routines the exercise exists to replace (keys of :data:`~._shortcuts.ROUTINES`).
    library : str
        The ``torch.optim`` class an optimiser exercise re-implements (``"torch.optim.SGD"``).

    Returns
    -------
    callable
        The decorator.
    """

    def register(check: F) -> F:
        name = check.__name__
        if not name.startswith("check_"):
            raise ValueError(f"a check's name starts with 'check_', not {name!r}")
        if name in CHECKS and CHECKS[name].function is not check:
            raise ValueError(f"{name} is registered twice")
        topic = check.__module__.rpartition(".")[2]
        declare(name, exercise, tuple(refuses))
        register_check(name, topic)
        CHECKS[name] = Registered(name, check, topic, exercise, tuple(refuses), library)
        return check

    return register


def topics() -> list[str]:
    """The check modules that register checks, in registration order."""
    return list(dict.fromkeys(entry.topic for entry in CHECKS.values()))
