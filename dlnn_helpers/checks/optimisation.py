"""Checks of the graded exercises of tutorial 2 (optimisation).

* :func:`check_gradient_descent` — the gradient-descent loop ``gradient_descent(loss_fn, x, lr, n)``;
* :func:`check_gradient_mean_rms` — ``gradient_mean_rms(grads) -> (mean, rms)`` per coordinate;
* :func:`check_simple_gradient_descent` — the class ``SimpleGradientDescent`` against
  ``torch.optim.SGD``;
* :func:`check_ema_update` — ``ema_update(x_t, beta, t, ema_star_old) -> (ema, ema_star)``;
* :func:`check_adam_optimizer` — the class ``ADAMOptimizer`` against ``torch.optim.Adam``;
* :func:`check_momentum_sgd` — tutorial 3's class ``MomentumSGD`` (heavy-ball momentum) against
  ``torch.optim.SGD(..., momentum=...)``.

The optimiser checks run the student's class the way a PyTorch training loop does — built from a
generator of parameters, ``loss.backward()``, ``step()`` outside ``torch.no_grad()``, then
``zero_grad()`` — on several parameter tensors of different shapes for 50 steps, and compare the
whole trajectory with PyTorch's optimiser to a relative tolerance of 1e-4 (float32 rounding in a
different order of operations stays far below; every listed mistake is far above).  When the
trajectories differ, the check names the first step that differs, or the common mistake (weight
decay not scaled by the learning rate, no bias correction, ``t`` advanced per parameter, moment
buffers rebound instead of updated in place, …) whose trajectory the student's reproduces.

Refused shortcuts (declared next to each check, :mod:`._shortcuts`): ``gradient_descent``,
``SimpleGradientDescent``, ``ADAMOptimizer`` and ``MomentumSGD`` refuse ``torch.optim`` (the
exercise is to write the update; a subclass of any ``torch.optim`` optimiser, or a wrapper of one,
is refused too); ``gradient_mean_rms`` and ``ema_update`` refuse nothing.  Every call of the
student's code (the function, the constructor, every ``step()`` and ``zero_grad()``) runs inside a
:func:`~._shortcuts.student_code` window.

Expected values (:mod:`._expected`): each check first runs the student's code for all its
settings, then asks :func:`~._expected.expected` once for everything it compares with — the
correct values and each known mistake's, computed by the instructor's reference — and judges.
A failure of the student's code (a crash, a broken protocol) found while running is reported where
the old step-by-step order would have reported it: after the comparisons of the runs before it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..optimisation_surface import LossFunctionWithPlot
from ._contract import expect_number, expect_tensor, verify_dependencies
from ._core import (
    _TENSOR_CPU,
    _TENSOR_DETACH,
    _TENSOR_NUMPY,
    CheckFailure,
    NotImplementedYet,
    call_student,
    captured_warnings,
    close,
    to_array,
    unpack,
    warning_note,
)
from ._diagnosis import Mistake, find_mistake, judge, matches
from ._expected import expected
from ._registry import registered
from ._shortcuts import ShortcutUsed, student_code

_RTOL = 1e-4


_REFUSED_DESCENT = ("torch.optim",)
_REFUSED_MEAN_RMS = ()
_REFUSED_SGD = ("torch.optim",)
_REFUSED_EMA = ()
_REFUSED_ADAM = ("torch.optim",)
_REFUSED_MOMENTUM = ("torch.optim",)

_NO_GRAD_HINT = (
    "A tensor that requires grad can only be changed in place without autograd watching: wrap the "
    "update in `with torch.no_grad():` (in an optimiser, inside step(), since training loops call "
    "step() outside torch.no_grad())."
)
_NONE_GRAD_HINT = (
    "A parameter that took no part in the loss has .grad None: skip it (`if x.grad is None: "
    "continue`), as torch.optim does."
)
_ERROR_HINTS = {
    "a leaf Variable that requires grad": _NO_GRAD_HINT,
    "NoneType": _NONE_GRAD_HINT,
    "'list' object is not callable": (
        "self.parameters is a list here, not a method: iterate over it directly "
        "(`for x in self.parameters`)."
    ),
    "division by zero": (
        "t counts the observations from 1, so at t = 1 the correction is 1 − β¹ = 1 − β: use "
        "beta**t (not beta**(t − 1))."
    ),
    "does not require grad": (
        "x must stay the leaf tensor that requires grad: update it in place (`x -= ...` inside "
        "`with torch.no_grad():`) rather than creating a new tensor with `x = x - ...`."
    ),
}


def _call(name: str, func: Callable[..., Any], *args: Any, hint: str = "", **kwargs: Any) -> Any:
    """:func:`call_student`, adding this tutorial's advice for the error the student raised."""
    try:
        return call_student(name, func, *args, hint=hint, **kwargs)
    except CheckFailure as exc:
        cause = exc.__cause__
        if cause is None or isinstance(exc, NotImplementedYet):
            raise
        text = str(exc)
        extra = " ".join(
            advice
            for key, advice in _ERROR_HINTS.items()
            if key in f"{type(cause).__name__}: {cause}" and advice not in text
        )
        if not extra:
            raise
        text += (" " if "Hint:" in text else "\nHint: ") + extra
        raise CheckFailure(text) from cause


def _student(exercise: str, refused: tuple[str, ...], label: str, func: Callable[..., Any],
             *args: Any, hint: str = "", **kwargs: Any) -> Any:
    """Call the student's ``func`` inside a shortcut window (:func:`_call` inside).

    A refused routine found while it ran is reported (:class:`ShortcutUsed`) before anything else,
    even when the call then failed.
    """
    failure = None
    result = None
    with student_code(exercise, refused) as window:
        try:
            result = _call(label, func, *args, hint=hint, **kwargs)
        except CheckFailure as exc:
            failure = exc
    window.verdict()
    if failure is not None:
        raise failure
    return result


def _deferred(run: Callable[[], Any]) -> tuple[Any, CheckFailure | None]:
    """Run one part of the student's code: ``(result, None)``, or ``(None, the failure)``.

    A refused shortcut is never deferred: it is raised at once.
    """
    try:
        return run(), None
    except ShortcutUsed:
        raise
    except CheckFailure as exc:
        return None, exc


# ----------------------------------------------------------------------------------------------
# gradient_descent (the loop)
# ----------------------------------------------------------------------------------------------

_DESCENT_MISTAKES = {
    "accumulate": "the gradient is never cleared, so every step adds up the gradients of all "
    "earlier steps: set `x.grad = None` (or `x.grad.zero_()`) after each update",
    "ascent": "x moves up the gradient (gradient ascent): subtract learning_rate * x.grad",
    "one_fewer": "one step too few; run exactly n_steps = {n_steps} updates",
    "one_more": "one step too many; run exactly n_steps = {n_steps} updates",
    "no_learning_rate": "the learning rate is missing: each step is the gradient times the learning rate",
}
"""The known mistakes of gradient_descent, keyed as in the expected values, tried in this order."""


def descent_settings(start: Sequence[float], learning_rate: float | Sequence[float], n_steps: int,
                     bowl: Sequence[Sequence[float]] | None) -> dict[str, Any]:
    """The settings of :func:`check_gradient_descent` as plain data (the expected values' key)."""
    per_coordinate = isinstance(learning_rate, (tuple, list))
    return {
        "start": tuple(float(s) for s in start),
        "learning_rate": tuple(float(r) for r in learning_rate) if per_coordinate
        else float(learning_rate),
        "n_steps": int(n_steps),
        "bowl": None if bowl is None else tuple(tuple(float(v) for v in row) for row in bowl),
    }


@registered("gradient_descent", refuses=_REFUSED_DESCENT)
def check_gradient_descent(
    func: Callable[..., object],
    *,
    start: Sequence[float] = (-1.5, 1.2),
    learning_rate: float | Sequence[float] = 0.1,
    n_steps: int = 21,
    bowl: Sequence[Sequence[float]] | None = None,
    name: str = "gradient_descent",
) -> str:
    """Check ``func(loss_fn, x, learning_rate, n_steps)``, plain gradient descent on ``x`` in place.

    The loss is a :class:`~dlnn_helpers.optimisation_surface.LossFunctionWithPlot`; the final ``x`` must
    be the point reached by ``n_steps`` updates ``x ← x − η ∇L(x)`` (to a relative 1e-4).
    Refuses ``torch.optim``: the exercise is to write the update.

    Parameters
    ----------
    func : callable
        The student's function.
    start : (float, float)
        Starting point.
    learning_rate : float or (float, float)
        Learning rate; a pair is passed as a tensor (one rate per coordinate).
    n_steps : int
        Number of steps.
    bowl : 2x2 nested sequence, optional
        Matrix of the loss (the tutorial's by default).
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    settings = descent_settings(start, learning_rate, n_steps, bowl)
    bowl_t = None if bowl is None else torch.tensor(settings["bowl"], dtype=torch.float32)
    start_t = torch.tensor(settings["start"], dtype=torch.float32)
    per_coordinate = isinstance(settings["learning_rate"], tuple)
    lr_given = (torch.tensor(settings["learning_rate"], dtype=torch.float32) if per_coordinate
                else settings["learning_rate"])

    loss_fn = LossFunctionWithPlot(bowl_t)
    x = start_t.clone().requires_grad_(True)
    with captured_warnings() as caught:
        _student(name, _REFUSED_DESCENT, name, func, loss_fn, x, lr_given, n_steps)
    if type(x) is not torch.Tensor or x.shape != start_t.shape or x.dtype != torch.float32:
        raise CheckFailure(f"{name} changed the type, dtype or shape of x (a float32 tensor of "
                           "shape (2,)); update its values in place.")
    final = to_array(x, "x after gradient descent")
    if len(loss_fn.track) == 0:
        raise CheckFailure(f"{name} never evaluated loss_fn: every step needs the loss at the current x.")
    exp = expected("check_gradient_descent", **settings)
    reached = exp["correct"]
    if close(final, reached, rtol=_RTOL):
        return (
            f"{name} is correct: {n_steps} steps from {tuple(start)} reach "
            f"({final[0]:.4f}, {final[1]:.4f}), loss {loss_fn.losses[-1]:.4f} at the last "
            "evaluation." + warning_note(caught)
        )
    if np.array_equal(final, start_t.double().numpy()):
        raise CheckFailure(
            f"x did not change: {name} must update the tensor it was given in place (`x -= ...` "
            "inside `with torch.no_grad():`); `x = x - ...` only makes a new local tensor."
        )
    mistake = find_mistake(final, [
        Mistake(why.format(n_steps=n_steps), exp[key]) for key, why in _DESCENT_MISTAKES.items()
    ], rtol=_RTOL)
    if mistake is not None:
        raise CheckFailure(f"Wrong final x: {mistake.why}.")
    raise CheckFailure(
        f"After {n_steps} steps x is ({final[0]:.5g}, {final[1]:.5g}) but gradient descent "
        f"reaches ({reached[0]:.5g}, {reached[1]:.5g}). Each step evaluates the loss once, lets "
        "backward() fill x.grad, moves x in place against its gradient times the learning rate "
        "(unrecorded by autograd), and leaves no old gradient for the next step."
    )


# ----------------------------------------------------------------------------------------------
# gradient_mean_rms
# ----------------------------------------------------------------------------------------------


def gradient_history(seed: int, shape: tuple[int, int]) -> torch.Tensor:
    """The gradient history that :func:`check_gradient_mean_rms` gives: float32, ``shape``."""
    n_steps, n_coords = shape
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.linspace(-1.0, 1.0, n_coords)
    scales = torch.linspace(0.3, 3.0, n_coords)
    return offsets + scales * torch.randn(tuple(shape), generator=generator)


_MEAN_MISTAKES = {
    "abs_mean": "it is the mean of |g|; the mean keeps the signs: grads.mean(dim=0)",
}
_RMS_MISTAKES = {
    "mean_square": "it is the mean square: take its square root",
    "std": "it is the standard deviation (it subtracts the mean); the RMS does not: sqrt(mean(g²))",
    "sample_std": "it is the sample standard deviation (it subtracts the mean and divides by N − 1); "
    "the RMS does not: sqrt(mean(g²))",
    "abs_mean": "it is the mean of |g|; square first, average, then take the root",
    "norm": "it is the norm of each column: divide the sum of squares by N before the root",
    "abs_of_mean": "it is |mean|: square each gradient before averaging",
}


@registered("gradient_mean_rms", refuses=_REFUSED_MEAN_RMS)
def check_gradient_mean_rms(
    func: Callable[..., object],
    *,
    seed: int = 2021,
    shape: tuple[int, int] = (50, 2),
    name: str = "gradient_mean_rms",
) -> str:
    """Check ``func(grads) -> (mean, rms)``, per-coordinate mean and root-mean-square over steps.

    The contract (the exercise's docstring): ``grads`` is a float32 tensor (N, n_coordinates);
    ``mean`` and ``rms`` are float32 tensors of shape (n_coordinates,).  Refuses nothing.

    Parameters
    ----------
    func : callable
        The student's function.
    seed : int
        Seed of the random gradient history.
    shape : (int, int)
        ``(n_steps, n_coordinates)`` of ``grads``.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    shape = (int(shape[0]), int(shape[1]))
    n_steps, n_coords = shape
    grads = gradient_history(seed, shape)
    given = grads.clone()
    with captured_warnings() as caught:
        returned = _student(name, _REFUSED_MEAN_RMS, name, func, given)
    if not torch.equal(given, grads):
        raise CheckFailure(f"{name} modified grads in place; compute new tensors instead.")
    mean_ret, rms_ret = unpack(returned, ("mean", "rms"), name)
    per_step = {(n_steps,): "one value per step: average over the steps (dim=0) to get one value "
                "per coordinate"} if n_steps != n_coords else None
    meaning = "(n_coordinates,), one value per coordinate"
    mean = expect_tensor(mean_ret, "mean", shape=(n_coords,), meaning=meaning, shape_hints=per_step)
    rms = expect_tensor(rms_ret, "rms", shape=(n_coords,), meaning=meaning, shape_hints=per_step)
    exp = expected("check_gradient_mean_rms", seed=int(seed), shape=shape)
    ref_mean, ref_rms = exp["correct"]
    swapped = find_mistake((mean, rms), [Mistake("swapped", (ref_rms, ref_mean))], rtol=1e-5)
    if swapped is not None:
        raise CheckFailure(f"{name} returned (rms, mean); return (mean, rms).")
    judge("mean", mean, ref_mean, [Mistake(why, exp[key]) for key, why in _MEAN_MISTAKES.items()],
          rtol=1e-5, advice="The mean is the plain average of each column, (1/N) Σ_t g_t.")
    judge("rms", rms, ref_rms, [Mistake(why, exp[key]) for key, why in _RMS_MISTAKES.items()],
          rtol=1e-5, advice="The RMS is sqrt((1/N) Σ_t g_t²) for each coordinate.")
    return (
        f"{name} is correct for {n_steps} steps × {n_coords} coordinates "
        f"(|mean| ≤ rms in every coordinate: {bool(np.all(np.abs(mean) <= rms + 1e-12))})."
        + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# Optimisers: a test problem, the student's trajectories, then the expected ones
# ----------------------------------------------------------------------------------------------

_DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((3, 4), (4,), (2, 3, 2), (1,))


class Problem:
    """A smooth, non-convex loss of several parameter tensors, with fixed random constants."""

    def __init__(self, seed: int, shapes: Sequence[tuple[int, ...]]) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.inits = [torch.randn(s, generator=generator) for s in self.shapes]
        self.curvatures = [0.2 + 2.8 * torch.rand(s, generator=generator) for s in self.shapes]
        self.centres = [torch.randn(s, generator=generator) for s in self.shapes]

    def loss(self, params: Sequence[torch.Tensor]) -> torch.Tensor:
        total = torch.zeros(())
        coupling = torch.zeros(())
        for p, a, c in zip(params, self.curvatures, self.centres, strict=True):
            total = total + 0.5 * (a * (p - c) ** 2).sum() + 0.3 * torch.sin(2.0 * p).sum()
            coupling = coupling + p.mean()
        return total + 0.05 * coupling**2

    def fresh(self) -> list[torch.Tensor]:
        return [p.clone().requires_grad_(True) for p in self.inits]


def mistake_steps(n_steps: int) -> list[int]:
    """The steps (0-based) at which a known mistake's trajectory is compared with the student's."""
    return [s for s in (0, 1, 2, 4, 9, 19) if s < n_steps]


def pack_trajectory(rows: np.ndarray) -> tuple[int, int, str]:
    """A trajectory ``(n_steps, n_values)`` as shipped: its shape and its float32 bytes in base64."""
    rows = np.asarray(rows, dtype="<f4")
    return int(rows.shape[0]), int(rows.shape[1]), base64.b64encode(rows.tobytes()).decode("ascii")


def unpack_trajectory(packed: Any) -> np.ndarray | None:
    """The float64 array of a :func:`pack_trajectory` value (None stays None)."""
    if packed is None:
        return None
    n_rows, n_columns, text = packed
    values = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)
    return values.reshape(int(n_rows), int(n_columns))


def _shapes(shapes: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(n) for n in s) for s in shapes)


def _optimiser_settings(
    seed: int, shapes: Sequence[Sequence[int]], n_steps: int, weight_decay: float, **hyper: Any,
) -> tuple[dict[str, Any], Problem, list[dict[str, Any]]]:
    """What an optimiser check runs: its settings, its problem and its two runs.

    Parameters
    ----------
    seed, shapes, n_steps, weight_decay
        The check's arguments (normalised here).
    **hyper
        The optimiser's other hyper-parameters, normalised by the caller (``lr``, ``betas``…),
        in the order the check's expected values are keyed by.

    Returns
    -------
    settings : dict
        ``seed``, ``shapes``, the hyper-parameters, ``weight_decay``, ``n_steps``: the key of the
        check's expected values.
    problem : Problem
        The test problem of ``seed`` and ``shapes``.
    runs : list of dict
        The optimiser's keyword arguments of the two runs compared: weight decay 0, then
        ``weight_decay``.
    """
    settings = {"seed": int(seed), "shapes": _shapes(shapes), **hyper,
                "weight_decay": float(weight_decay), "n_steps": int(n_steps)}
    runs = [{**hyper, "weight_decay": wd} for wd in (0.0, settings["weight_decay"])]
    return settings, Problem(settings["seed"], settings["shapes"]), runs


def _flat(params: Sequence[torch.Tensor]) -> np.ndarray:
    """float64 copy of the values of our own parameter tensors, flattened and concatenated
    (through import-time methods)."""
    return np.concatenate([
        np.array(_TENSOR_NUMPY(_TENSOR_CPU(_TENSOR_DETACH(p))), dtype=np.float64, copy=True).reshape(-1)
        for p in params
    ])


def _trajectory_error(actual: np.ndarray, expected: np.ndarray, sizes: Sequence[int]
                      ) -> tuple[float, int]:
    """Largest relative error over the whole run (per tensor) and the first step that exceeds it."""
    bounds = np.cumsum([0, *sizes])
    errors = np.zeros(len(expected))
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        scale = float(np.max(np.abs(expected[:, a:b]))) or 1.0
        errors = np.maximum(errors, np.max(np.abs(actual[:, a:b] - expected[:, a:b]), axis=1) / scale)
    bad = np.flatnonzero(~(errors <= _RTOL))
    return float(np.max(errors)), int(bad[0]) if len(bad) else -1


def _same(sizes: Sequence[int], steps: Sequence[int] | None = None) -> Callable[[Any, Any], bool]:
    """Whether the student's trajectory is ``expected`` (compared at ``steps`` only, if given)."""

    def same(actual: np.ndarray, expected: np.ndarray) -> bool:
        rows = actual if steps is None else actual[list(steps)]
        return bool(np.all(np.isfinite(rows))) and _trajectory_error(rows, expected, sizes)[0] <= _RTOL

    return same


def _student_trajectory(
    cls: Callable[..., Any],
    kwargs: dict[str, Any],
    problem: Problem,
    n_steps: int,
    name: str,
    refused: tuple[str, ...],
    *,
    as_generator: bool = True,
) -> np.ndarray:
    """Run the student's optimiser like a training loop; raise on protocol failures.

    Returns the parameters after every step, shape ``(n_steps, n_values)``.
    """
    params = problem.fresh()
    given = (p for p in params) if as_generator else list(params)
    optimiser = _student(
        name, refused, f"{name}(parameters, ...)", cls, given, **kwargs,
        hint="The constructor receives the parameters (any iterable, e.g. model.parameters()) "
        "and the hyper-parameters as keywords: " + ", ".join(kwargs) + ".",
    )
    history = []
    for t in range(n_steps):
        problem.loss(params).backward()
        before = _flat(params)
        _student(name, refused, f"{name}.step()", optimiser.step)
        if t == 0 and any(p.grad is None for p in params):
            raise CheckFailure(
                f"{name}.step() removed the gradients (.grad is None after it). Training loops may "
                "still read them after step() (e.g. to report their size); leave them alone in "
                "step() and clear them only in zero_grad()."
            )
        if any(p.shape != s for p, s in zip(params, problem.shapes, strict=True)):
            raise CheckFailure(f"{name}.step() changed the shape of a parameter.")
        if any(type(p) is not torch.Tensor or p.dtype != torch.float32 for p in params):
            raise CheckFailure(
                f"{name}.step() changed the type or dtype of a parameter (it should stay a "
                "float32 torch.Tensor): update the values in place, without conversions."
            )
        after = _flat(params)
        if np.array_equal(before, after):
            if t == 0:
                raise CheckFailure(
                    f"{name}.step() did not change the parameters. Update each parameter in place "
                    "(`x -= ...` under torch.no_grad()); `x = x - ...` only rebinds a local name "
                    "and leaves the model's tensor as it was."
                )
            if as_generator and _moves_with_a_list(cls, kwargs, problem, t + 1, name, refused):
                raise CheckFailure(
                    f"{name}.step() changed the parameters at the first step only when given a "
                    "generator (like model.parameters()), but goes on changing them when given a "
                    "list: a generator can be iterated once, so store the parameters in a list in "
                    "__init__ (`list(parameters)`)."
                )
        history.append(after)
        _student(name, refused, f"{name}.zero_grad()", optimiser.zero_grad)
        # after every zero_grad(), every gradient must be gone (None) or zero
        uncleared = [
            i for i, p in enumerate(params)
            if p.grad is not None and bool(torch.any(p.grad.detach() != 0))
        ]
        if uncleared and as_generator:
            try:  # the same class given a list: the generator may be the culprit
                _student_trajectory(cls, kwargs, problem, 1, name, refused, as_generator=False)
            except ShortcutUsed:
                raise
            except CheckFailure:
                pass  # it fails with a list too: report zero_grad itself below
            else:
                raise CheckFailure(
                    f"{name}.zero_grad() clears the gradients when given a list but not when "
                    "given a generator (like model.parameters()), which can be iterated "
                    "only once: store the parameters in a list in __init__."
                )
        if uncleared:
            raise CheckFailure(
                f"{name}.zero_grad() does not clear the gradients: after it, .grad of "
                f"{len(uncleared)} of {len(params)} parameters still holds the old gradient, so "
                "the next backward() adds to it. Set `x.grad = None` (or call "
                "`x.grad.zero_()`) for every parameter."
            )
    return np.stack(history) if history else np.zeros((0, sum(problem.sizes)))


def _moves_with_a_list(cls: Callable[..., Any], kwargs: dict[str, Any], problem: Problem,
                       n_steps: int, name: str, refused: tuple[str, ...]) -> bool:
    """True when the class, given a list of parameters, still changes them at step ``n_steps``."""
    try:
        history = _student_trajectory(cls, kwargs, problem, n_steps, name, refused,
                                      as_generator=False)
    except ShortcutUsed:
        raise
    except CheckFailure:
        return False
    if len(history) < 2:
        return False
    return not np.array_equal(history[-2], history[-1])


def _check_skips_missing_grads(cls: Callable[..., Any], kwargs: dict[str, Any], problem: Problem,
                               name: str, refused: tuple[str, ...]) -> None:
    """A parameter outside the loss has ``grad is None``: it must be skipped and stay unchanged."""
    params = problem.fresh()
    unused = torch.full((2, 2), 0.75, requires_grad=True)
    optimiser = _student(name, refused, f"{name}(parameters, ...)", cls, iter([*params, unused]),
                         **kwargs)
    for _ in range(3):
        problem.loss(params).backward()
        _student(name, refused, f"{name}.step()", optimiser.step, hint=_NONE_GRAD_HINT)
        _student(name, refused, f"{name}.zero_grad()", optimiser.zero_grad, hint=_NONE_GRAD_HINT)
    if not torch.equal(unused.detach(), torch.full((2, 2), 0.75)):
        raise CheckFailure(
            f"{name}.step() changed a parameter whose .grad is None (it took no part in the loss); "
            "skip such parameters entirely, weight decay included, as torch.optim does."
        )


def _describe_mismatch(name: str, actual: np.ndarray, expected: np.ndarray, sizes: Sequence[int],
                       settings: str) -> str:
    for t, step in enumerate(actual):
        if not np.all(np.isfinite(step)):
            return (
                f"{name} made the parameters NaN or infinite at step {t + 1} ({settings}). Look for "
                "a division by zero (is t ≥ 1 in 1 − β^t?) or the square root of a negative number."
            )
    worst, first_bad = _trajectory_error(actual, expected, sizes)
    return (
        f"{name} does not follow the same trajectory as torch.optim ({settings}): it first "
        f"differs at step {first_bad + 1}, by up to {worst:.3g} relative to the size of the "
        "parameters."
    )


def _run_optimiser(cls: Callable[..., Any], runs: Sequence[dict[str, Any]], problem: Problem,
                   n_steps: int, name: str, refused: tuple[str, ...]
                   ) -> tuple[list[np.ndarray], CheckFailure | None]:
    """The student's trajectories for each hyper-parameter set, then the run with a parameter
    that gets no gradient; stops at the first failure and returns it (judged after the runs
    before it)."""
    trajectories: list[np.ndarray] = []
    for kwargs in runs:
        trajectory, failure = _deferred(
            lambda kwargs=kwargs: _student_trajectory(cls, dict(kwargs), problem, n_steps, name, refused))
        if failure is not None:
            return trajectories, failure
        trajectories.append(trajectory)
    _, failure = _deferred(
        lambda: _check_skips_missing_grads(cls, dict(runs[-1]), problem, name, refused))
    return trajectories, failure


def _judge_runs(name: str, trajectories: list[np.ndarray], exp: dict[str, Any],
                problem: Problem, n_steps: int, whys: dict[str, str], described: list[str],
                advice: str) -> None:
    """Compare each of the student's trajectories with the expected one; name the mistake."""
    sizes = problem.sizes
    steps = mistake_steps(n_steps)
    for i, actual in enumerate(trajectories):
        correct = unpack_trajectory(exp["correct"][i])
        if _same(sizes)(actual, correct):
            continue
        mistake = find_mistake(actual, [
            Mistake(why, lambda key=key, i=i: unpack_trajectory(exp[key][i]))
            for key, why in whys.items()
        ], same=_same(sizes, steps))
        if mistake is not None:
            raise CheckFailure(f"{name} is wrong ({described[i]}): {mistake.why}.")
        raise CheckFailure(_describe_mismatch(name, actual, correct, sizes, described[i]) + advice)


# ----------------------------------------------------------------------------------------------
# SimpleGradientDescent
# ----------------------------------------------------------------------------------------------

_SGD_MISTAKES = {
    "wd_unscaled": "weight decay is not multiplied by the learning rate: the update is "
    "x -= lr * (grad + weight_decay * x), not x -= lr * grad + weight_decay * x",
    "wd_ignored": "weight_decay is ignored: add weight_decay * x to the gradient",
    "wd_sign": "the weight-decay term has the wrong sign: the gradient of (λ/2)‖x‖² is +λx",
    "wd_half": "the weight-decay term is halved: the gradient of (λ/2)‖x‖² is λx, not λx/2",
    "ascent": "the parameters move up the gradient: subtract lr * (grad + weight_decay * x)",
    "lr_ignored": "the learning rate is missing: multiply the step by lr",
    "wd_times_lr_twice": "the weight-decay term is multiplied by lr twice",
}
"""The known mistakes of SimpleGradientDescent, keyed as in the expected values, in this order."""


@registered("SimpleGradientDescent", refuses=_REFUSED_SGD, library="torch.optim.SGD")
def check_simple_gradient_descent(
    cls: Callable[..., Any],
    *,
    seed: int = 2021,
    shapes: Sequence[tuple[int, ...]] = _DEFAULT_SHAPES,
    lr: float = 0.1,
    weight_decay: float = 0.05,
    n_steps: int = 50,
    name: str = "SimpleGradientDescent",
) -> str:
    """Check a gradient-descent optimiser class against ``torch.optim.SGD`` with weight decay.

    Runs 50 steps with weight decay 0 and with ``weight_decay``, on parameter tensors of the given
    shapes, then a run in which one parameter never receives a gradient.  Refuses ``torch.optim``
    (its optimisers, subclasses and wrappers of them): the exercise is to write the update.

    Parameters
    ----------
    cls : callable
        The student's class, ``cls(parameters, lr=..., weight_decay=...)``.
    seed : int
        Seed of the test problem (initial values and constants of the loss).
    shapes : sequence of tuples
        Shapes of the parameter tensors.
    lr : float
        Learning rate.
    weight_decay : float
        The non-zero weight decay tried after weight decay 0.
    n_steps : int
        Number of steps compared.
    name : str
        Name of the class, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    settings, problem, runs = _optimiser_settings(seed, shapes, n_steps, weight_decay, lr=float(lr))
    with captured_warnings() as caught:
        trajectories, failure = _run_optimiser(cls, runs, problem, n_steps, name, _REFUSED_SGD)
        if trajectories:
            exp = expected("check_simple_gradient_descent", **settings)
            _judge_runs(name, trajectories, exp, problem, n_steps, _SGD_MISTAKES,
                        [f"lr={lr}, weight_decay={run['weight_decay']}" for run in runs],
                        " Each step applies the update of Think! 2.A to every parameter, in place.")
        if failure is not None:
            raise failure
    return (
        f"{name} matches torch.optim.SGD for {n_steps} steps on {len(problem.shapes)} tensors of "
        f"shapes {', '.join(str(s) for s in problem.shapes)} (lr={lr}, weight decay 0 and "
        f"{weight_decay}); zero_grad clears; parameters without a gradient are skipped."
        + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ema_update
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmaCase:
    """One call of the student's ``ema_update`` made by :func:`check_ema_update`."""

    label: str
    x: Any
    beta: float
    t: int
    old: Any
    tensors: bool


def ema_cases(seed: int, beta: float, shape: tuple[int, ...], large_t: int) -> list[EmaCase]:
    """The cases :func:`check_ema_update` tries, in order (the same for every call)."""
    generator = torch.Generator().manual_seed(seed)
    values = (3.0 * torch.randn(8, generator=generator) - 1.0).tolist()
    cases = [EmaCase("floats, t = 1", values[0], beta, 1, 0.0, False)]
    star = star_after_2 = 0.0
    for t, value in enumerate(values[1:6], start=2):  # a short series, fed its running EMA*
        cases.append(EmaCase(f"floats, t = {t}", value, beta, t, star, False))
        star = beta * star + (1 - beta) * value
        if t == 2:
            star_after_2 = star
    cases.append(EmaCase(f"floats, t = {large_t}", values[6], beta, large_t, values[7], False))
    cases.append(EmaCase("β = 0.999, t = 1", values[6], 0.999, 1, 0.0, False))
    cases.append(EmaCase("0-d tensors, t = 3", torch.tensor(values[2]), beta, 3,
                         torch.tensor(star_after_2), True))
    x_tensor = torch.randn(shape, generator=generator)
    old_tensor = torch.randn(shape, generator=generator)
    cases.append(EmaCase(f"tensors {shape}, t = 1", x_tensor, beta, 1, torch.zeros(shape), True))
    cases.append(EmaCase(f"tensors {shape}, t = 4", x_tensor, beta, 4, old_tensor, True))
    cases.append(EmaCase(f"tensors {shape}, t = {large_t}", x_tensor, beta, large_t, old_tensor,
                         True))
    return cases


_EMA_MISTAKES = {
    "no_correction": "EMA without bias correction: ema should be ema_star / (1 − β^t), not "
    "ema_star itself",
    "swapped_output": "the tuple is in the wrong order: return (ema, ema_star)",
    "swapped_beta": "β and 1 − β are swapped: ema_star = β·ema_star_old + (1 − β)·x_t",
    "multiplies": "the bias correction multiplies by (1 − β^t); it should divide",
    "corrects_old": "the bias correction divides ema_star_old instead of the new ema_star",
    "t_plus_one": "the bias correction uses 1 − β^(t+1); with t counted from 1 it is 1 − β^t",
    "one_minus_beta_power": "the bias correction uses (1 − β)^t; it is 1 − β^t",
    "t_minus_one": "the bias correction uses 1 − β^(t−1); with t counted from 1 it is 1 − β^t",
}
"""The known mistakes of ema_update, keyed as in the expected values, tried in this order."""


def _ema_student_case(func: Callable[..., Any], name: str, case: EmaCase
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Call the student's ema_update on one case; the returned pair as float64 arrays."""
    if case.tensors:
        x_arg, old_arg = case.x.clone(), case.old.clone()
    else:
        x_arg, old_arg = case.x, case.old
    returned = _student(
        name, _REFUSED_EMA, name, func, x_arg, case.beta, case.t, old_arg,
        hint="ema_update(x_t, beta, t, ema_star_old) returns (ema, ema_star).",
    )
    label = case.label
    if case.tensors and not (torch.equal(x_arg, case.x) and torch.equal(old_arg, case.old)):
        raise CheckFailure(
            f"{name} modified x_t or ema_star_old in place ({label}); compute new values instead."
        )
    ema_ret, star_ret = unpack(returned, ("ema", "ema_star"), name)
    if case.tensors:
        shape = tuple(case.x.shape)
        meaning = "the shape of x_t: the average is taken element by element"
        ema = expect_tensor(ema_ret, f"ema ({label})", shape=shape, dtype=case.x.dtype,
                            meaning=meaning)
        star = expect_tensor(star_ret, f"ema_star ({label})", shape=shape, dtype=case.x.dtype,
                             meaning=meaning)
    else:
        ema = np.array(expect_number(ema_ret, f"ema ({label})"))
        star = np.array(expect_number(star_ret, f"ema_star ({label})"))
    return ema, star


def _ema_judge(got: tuple[np.ndarray, np.ndarray], exp: dict[str, Any], index: int,
               label: str) -> None:
    """Compare one case with the expected pair; name the mistake."""
    ema, star = got
    ref_ema, ref_star = exp["correct"][index]
    if matches((ema, star), (ref_ema, ref_star), 1e-5):
        return
    mistake = find_mistake((ema, star), [
        Mistake(why, exp[key][index]) for key, why in _EMA_MISTAKES.items()
    ], rtol=1e-5)
    if mistake is not None:
        raise CheckFailure(f"Wrong EMA ({label}): {mistake.why}.")
    judge(f"ema_star ({label})", star, ref_star, rtol=1e-5,
          advice="ema_star = β·ema_star_old + (1 − β)·x_t.")
    judge(f"ema ({label})", ema, ref_ema, rtol=1e-5, advice="ema = ema_star / (1 − β^t).")


@registered("ema_update", refuses=_REFUSED_EMA)
def check_ema_update(
    func: Callable[..., object],
    *,
    seed: int = 2021,
    beta: float = 0.9,
    shape: tuple[int, ...] = (3, 4),
    large_t: int = 400,
    name: str = "ema_update",
) -> str:
    """Check ``func(x_t, beta, t, ema_star_old) -> (ema, ema_star)`` with bias correction.

    The contract (the exercise's docstring): for float inputs, two numbers (a float, or a 0-d
    tensor); for tensor inputs, two tensors of the shape and dtype of ``x_t``.  Refuses nothing.

    Tried on Python floats, on a 0-d tensor, on tensors of ``shape``, at t = 1, along a short series
    and at a large t, and with β = 0.999 at t = 1 (where the correction is a factor 1000).

    Parameters
    ----------
    func : callable
        The student's function.
    seed : int
        Seed of the random values.
    beta : float
        Smoothing factor.
    shape : tuple of int
        Shape of the tensor case.
    large_t : int
        The large step index tried.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    settings = {"seed": int(seed), "beta": float(beta), "shape": tuple(int(n) for n in shape),
                "large_t": int(large_t)}
    cases = ema_cases(**settings)
    outputs: list[tuple[np.ndarray, np.ndarray]] = []
    failure = None
    with captured_warnings() as caught:
        for case in cases:
            got, failure = _deferred(lambda case=case: _ema_student_case(func, name, case))
            if failure is not None:
                break
            outputs.append(got)
        if outputs:
            exp = expected("check_ema_update", **settings)
            for index, got in enumerate(outputs):
                _ema_judge(got, exp, index, cases[index].label)
        if failure is not None:
            raise failure
    shape = settings["shape"]
    return (
        f"{name} is correct: bias-corrected EMA for floats and tensors of shape {shape}, at t = 1, "
        f"along a series and at t = {large_t} (β = {beta} and 0.999)." + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ADAMOptimizer
# ----------------------------------------------------------------------------------------------

_ADAM_MISTAKES = {
    "no_bias_correction": "the moments are not bias-corrected (EMA without bias correction): "
    "divide m* by (1 − β₁^t) and v* by (1 − β₂^t)",
    "t_per_parameter": "t is advanced once per parameter instead of once per step: increment "
    "self.t once at the start of step(), outside the loop over parameters",
    "both_buffers_rebound": "the moment buffers are rebound instead of updated in place "
    "(`m_star = ...` only renames a local variable, so the stored m* and v* stay 0 and nothing is "
    "remembered between steps): write into them with `m_star[...] = ...` or `m_star.copy_(...)`",
    "m_rebound": "the first-moment buffer m* is rebound instead of updated in place (`m_star = ...` "
    "only renames a local variable): write into it with `m_star[...] = ...`",
    "v_rebound": "the second-moment buffer v* is rebound instead of updated in place (`v_star = ...` "
    "only renames a local variable): write into it with `v_star[...] = ...`",
    "swapped_betas": "β₁ and β₂ are swapped: β₁ smooths the gradient, β₂ its square",
    "no_bias_correction_t_per_parameter": "the moments are not bias-corrected and t is advanced per "
    "parameter",
    "wd_unscaled": "weight decay is not multiplied by the learning rate (x -= lr * m / (sqrt(v) + "
    "eps) + weight_decay * x): add weight_decay * x to the gradient g before the moments, as "
    "torch.optim.Adam does",
    "wd_decoupled": "weight decay is decoupled (AdamW: x -= lr * weight_decay * x): this exercise "
    "follows torch.optim.Adam, which adds weight_decay * x to the gradient g before the moments",
    "wd_ignored": "weight_decay is ignored: add weight_decay * x to the gradient g",
}
"""The known mistakes of ADAMOptimizer, keyed as in the expected values, tried in this order."""


@registered("ADAMOptimizer", refuses=_REFUSED_ADAM, library="torch.optim.Adam")
def check_adam_optimizer(
    cls: Callable[..., Any],
    *,
    seed: int = 2021,
    shapes: Sequence[tuple[int, ...]] = _DEFAULT_SHAPES,
    lr: float = 0.05,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.1,
    n_steps: int = 50,
    name: str = "ADAMOptimizer",
) -> str:
    """Check an Adam optimiser class against ``torch.optim.Adam`` (coupled weight decay).

    Its dependency first: when the class calls ``ema_update`` (the previous exercise), that
    function is checked with :func:`check_ema_update` before anything else, and a failure there
    is reported as such ("ADAMOptimizer calls your ema_update, which is not correct yet …").

    Runs 50 steps with weight decay 0 and with ``weight_decay``, on parameter tensors of the given
    shapes, then a run in which one parameter never receives a gradient.  Refuses ``torch.optim``
    (its optimisers, subclasses and wrappers of them): the exercise is to write the update.

    Parameters
    ----------
    cls : callable
        The student's class, ``cls(parameters, lr=..., betas=..., eps=..., weight_decay=...)``.
    seed : int
        Seed of the test problem.
    shapes : sequence of tuples
        Shapes of the parameter tensors (several, so that per-parameter mistakes show).
    lr, betas, eps : float, (float, float), float
        Hyper-parameters passed to the optimiser.
    weight_decay : float
        The non-zero weight decay tried after weight decay 0.
    n_steps : int
        Number of steps compared.
    name : str
        Name of the class, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    settings, problem, runs = _optimiser_settings(
        seed, shapes, n_steps, weight_decay,
        lr=float(lr), betas=(float(betas[0]), float(betas[1])), eps=float(eps),
    )
    with captured_warnings() as caught:
        uses = verify_dependencies(name, cls, {"ema_update": check_ema_update})
        trajectories, failure = _run_optimiser(cls, runs, problem, n_steps, name, _REFUSED_ADAM)
        if trajectories:
            exp = expected("check_adam_optimizer", **settings)
            _judge_runs(
                name, trajectories, exp, problem, n_steps, _ADAM_MISTAKES,
                [f"lr={lr}, betas={tuple(betas)}, eps={eps}, weight_decay={run['weight_decay']}"
                 for run in runs],
                " Per step: t += 1 once; for each parameter g = grad + weight_decay * x, "
                "m, m* = ema_update(g, β₁, t, m*), v, v* = ema_update(g², β₂, t, v*) with m* and "
                "v* updated in place, x -= lr * m / (sqrt(v) + eps).",
            )
        if failure is not None:
            raise failure
    return (
        f"{name} matches torch.optim.Adam for {n_steps} steps on {len(problem.shapes)} tensors of "
        f"shapes {', '.join(str(s) for s in problem.shapes)} (lr={lr}, betas={tuple(betas)}, "
        f"weight decay 0 and {weight_decay}); the moment state persists across steps; zero_grad "
        "clears; parameters without a gradient are skipped"
        + (" (your ema_update is correct too)." if uses else ".") + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# MomentumSGD (tutorial 3)
# ----------------------------------------------------------------------------------------------

_MOMENTUM_MISTAKES = {
    "no_memory": "the steps are those of plain gradient descent, without momentum: the velocity "
    "is not remembered between steps (`buffer = ...` only rebinds a local name, so the stored "
    "buffer stays 0), or momentum is not used. Update the stored buffer in place "
    "(`buffer.mul_(momentum).add_(g)` or `buffer[...] = ...`)",
    "dampened": "the velocity is an average, v = momentum * v + (1 − momentum) * g: torch.optim.SGD "
    "adds the whole gradient, v = momentum * v + g (its dampening is 0 by default)",
    "nesterov": "this is Nesterov's momentum (the step uses g + momentum * v): this exercise is "
    "the heavy-ball form of torch.optim.SGD's default, x -= lr * v with v = momentum * v + g",
    "wd_after_momentum": "weight decay is added after the velocity (x -= lr * (v + weight_decay * "
    "x)): torch.optim.SGD adds weight_decay * x to the gradient g before it enters the velocity",
    "wd_ignored": "weight_decay is ignored: add weight_decay * x to the gradient g",
    "wd_unscaled": "weight decay is not multiplied by the learning rate: add weight_decay * x to "
    "the gradient g before it enters the velocity",
    "ascent": "the parameters move up the gradient: subtract lr * v",
}
"""The known mistakes of MomentumSGD, keyed as in the expected values, tried in this order."""

_MOMENTUM_SHAPES: tuple[tuple[int, ...], ...] = ((2, 3), (4,), (1,))
"""Fewer values than the T2 checks' shapes: the shipped trajectories stay small."""


@registered("MomentumSGD", refuses=_REFUSED_MOMENTUM, library="torch.optim.SGD")
def check_momentum_sgd(
    cls: Callable[..., Any],
    *,
    seed: int = 7150,
    shapes: Sequence[tuple[int, ...]] = _MOMENTUM_SHAPES,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 0.05,
    n_steps: int = 50,
    name: str = "MomentumSGD",
) -> str:
    """Check a heavy-ball momentum optimiser class against ``torch.optim.SGD(..., momentum=...)``.

    The contract (the exercise's docstring): ``cls(parameters, lr=..., momentum=...,
    weight_decay=...)`` takes an iterable of float32 leaf tensors (any shapes); ``step()`` updates
    every parameter that has a gradient in place (float32, same shape) with g = grad +
    weight_decay * x, v ← momentum * v + g, x ← x − lr * v, one velocity per parameter kept between
    steps; ``zero_grad()`` clears the gradients.  Runs ``n_steps`` steps with weight decay 0 and
    with ``weight_decay`` on parameter tensors of the given shapes, then a run in which one
    parameter never receives a gradient, and compares the trajectories with torch.optim.SGD's to a
    relative 1e-4.  Refuses ``torch.optim`` (its optimisers, subclasses and wrappers of them): the
    exercise is to write the update.

    Parameters
    ----------
    cls : callable
        The student's class.
    seed : int
        Seed of the test problem (initial values and constants of the loss).
    shapes : sequence of tuples
        Shapes of the parameter tensors.
    lr, momentum : float
        Hyper-parameters passed to the optimiser.
    weight_decay : float
        The non-zero weight decay tried after weight decay 0.
    n_steps : int
        Number of steps compared.
    name : str
        Name of the class, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    settings, problem, runs = _optimiser_settings(
        seed, shapes, n_steps, weight_decay, lr=float(lr), momentum=float(momentum),
    )
    with captured_warnings() as caught:
        trajectories, failure = _run_optimiser(cls, runs, problem, n_steps, name, _REFUSED_MOMENTUM)
        if trajectories:
            exp = expected("check_momentum_sgd", **settings)
            _judge_runs(
                name, trajectories, exp, problem, n_steps, _MOMENTUM_MISTAKES,
                [f"lr={lr}, momentum={momentum}, weight_decay={run['weight_decay']}"
                 for run in runs],
                " Per step, for each parameter with a gradient: g = grad + weight_decay * x, the "
                "stored velocity updated in place to momentum * v + g, x -= lr * v.",
            )
        if failure is not None:
            raise failure
    return (
        f"{name} matches torch.optim.SGD with momentum for {n_steps} steps on "
        f"{len(problem.shapes)} tensors of shapes {', '.join(str(s) for s in problem.shapes)} "
        f"(lr={lr}, momentum={momentum}, weight decay 0 and {weight_decay}); the velocity persists "
        "across steps; zero_grad clears; parameters without a gradient are skipped."
        + warning_note(caught)
    )
