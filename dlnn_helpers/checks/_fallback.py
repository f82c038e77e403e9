"""Go on with the student's own implementation once it works; until then, with a stand-in."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def own_or_fallback(own: Any, check: Callable[..., Any], fallback: T, *, name: str,
                    instead: str) -> Any | T:
    """``own`` when it passes ``check`` (silently), else ``fallback``, saying so in one line.

    Parameters
    ----------
    own : object
        The student's answer (a function or a class); ``None`` or a stub counts as not done.
    check : callable
        Its self-check (``check(own)`` raises when it is wrong).
    fallback : object
        What the tutorial uses meanwhile: a library routine that is not the exercise
        (``torch.optim.Adam`` for ``ADAMOptimizer``) or precomputed data.
    name : str
        The exercise's name, e.g. ``"ADAMOptimizer"``.
    instead : str
        How the message names the stand-in, e.g. ``"torch.optim.Adam"``.

    Returns
    -------
    object
        ``own`` or ``fallback``.
    """
    if own is not None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                check(own)
        except Exception:  # noqa: BLE001 - whatever is wrong, the self-check cell says it
            pass
        else:
            print(f"Using your {name}.")
            return own
    print(f"Your {name} does not pass its self-check yet: using {instead} instead.")
    return fallback
