"""Checks of the graded exercises of tutorial 2 (optimisation).

* :func:`check_gradient_descent` — the gradient-descent loop ``gradient_descent(loss_fn, x, lr, n)``;
* :func:`check_gradient_mean_rms` — ``gradient_mean_rms(grads) -> (mean, rms)`` per coordinate;
* :func:`check_simple_gradient_descent` — the class ``SimpleGradientDescent`` against
  ``torch.optim.SGD``;
* :func:`check_ema_update` — ``ema_update(x_t, beta, t, ema_star_old) -> (ema, ema_star)``;
* :func:`check_adam_optimizer` — the class ``ADAMOptimizer`` against ``torch.optim.Adam``.

The optimiser checks run the student's class the way a PyTorch training loop does — built from a
generator of parameters, ``loss.backward()``, ``step()`` outside ``torch.no_grad()``, then
``zero_grad()`` — on several parameter tensors of different shapes for 50 steps, and compare the
whole trajectory with PyTorch's optimiser to a relative tolerance of 1e-4 (float32 rounding in a
different order of operations stays far below; every listed mistake is far above).  When the
trajectories differ, the check replays the common mistakes (weight decay not scaled by the learning
rate, no bias correction, ``t`` advanced per parameter, moment buffers rebound instead of updated in
place, …) and names the one that reproduces the student's trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..loss_surface import LossFunctionWithPlot
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

# PyTorch's own optimisers, taken at import time so that a notebook cannot swap them.
_TORCH_SGD = torch.optim.SGD
_TORCH_ADAM = torch.optim.Adam
_RTOL = 1e-4

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


# ----------------------------------------------------------------------------------------------
# gradient_descent (the loop)
# ----------------------------------------------------------------------------------------------


def _descent_variant(
    bowl: torch.Tensor | None,
    start: torch.Tensor,
    lr: torch.Tensor,
    n_steps: int,
    *,
    sign: float = 1.0,
    accumulate: bool = False,
) -> np.ndarray:
    loss_fn = LossFunctionWithPlot(bowl)
    x = start.clone().requires_grad_(True)
    for _ in range(n_steps):
        loss_fn(x).backward()
        with torch.no_grad():
            x -= sign * lr * x.grad
        if not accumulate:
            x.grad = None
    return x.detach().double().numpy()


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

    The loss is a :class:`~dlnn_helpers.loss_surface.LossFunctionWithPlot`; the final ``x`` must
    be the point reached by ``n_steps`` updates ``x ← x − η ∇L(x)`` (to a relative 1e-4).

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
    bowl_t = None if bowl is None else torch.tensor(bowl, dtype=torch.float32)
    start_t = torch.tensor(start, dtype=torch.float32)
    per_coordinate = isinstance(learning_rate, (tuple, list))
    lr_t = torch.tensor(learning_rate, dtype=torch.float32) if per_coordinate else None
    lr_given = lr_t.clone() if per_coordinate else float(learning_rate)
    lr_sim = lr_t if per_coordinate else torch.tensor(float(learning_rate))

    loss_fn = LossFunctionWithPlot(bowl_t)
    x = start_t.clone().requires_grad_(True)
    with captured_warnings() as caught:
        _call(name, func, loss_fn, x, lr_given, n_steps)
    if type(x) is not torch.Tensor or x.shape != start_t.shape or x.dtype != torch.float32:
        raise CheckFailure(f"{name} changed the type, dtype or shape of x (a float32 tensor of "
                           "shape (2,)); update its values in place.")
    final = to_array(x, "x after gradient descent")
    expected = _descent_variant(bowl_t, start_t, lr_sim, n_steps)
    n_calls = len(loss_fn.track)
    if n_calls == 0:
        raise CheckFailure(f"{name} never evaluated loss_fn: compute `loss = loss_fn(x)` each step.")
    if close(final, expected, rtol=_RTOL):
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
    def run(steps: int = n_steps, lr: torch.Tensor = lr_sim, **options: Any) -> Callable[[], Any]:
        return lambda: _descent_variant(bowl_t, start_t, lr, steps, **options) if steps >= 0 else None

    mistake = find_mistake(final, [
        Mistake("the gradient is never cleared, so every step adds up the gradients of all "
                "earlier steps: set `x.grad = None` (or `x.grad.zero_()`) after each update",
                run(accumulate=True)),
        Mistake("x moves up the gradient (gradient ascent): subtract learning_rate * x.grad",
                run(sign=-1.0)),
        Mistake(f"one step too few; run exactly n_steps = {n_steps} updates", run(n_steps - 1)),
        Mistake(f"one step too many; run exactly n_steps = {n_steps} updates", run(n_steps + 1)),
        Mistake("the learning rate is missing (x -= learning_rate * x.grad)",
                run(lr=torch.tensor(1.0))),
    ], rtol=_RTOL)
    if mistake is not None:
        raise CheckFailure(f"Wrong final x: {mistake.why}.")
    raise CheckFailure(
        f"After {n_steps} steps x is ({final[0]:.5g}, {final[1]:.5g}) but gradient descent "
        f"reaches ({expected[0]:.5g}, {expected[1]:.5g}). Each step: loss = loss_fn(x), "
        "loss.backward(), x -= learning_rate * x.grad (under torch.no_grad()), then clear x.grad."
    )


# ----------------------------------------------------------------------------------------------
# gradient_mean_rms
# ----------------------------------------------------------------------------------------------


def check_gradient_mean_rms(
    func: Callable[..., object],
    *,
    seed: int = 2021,
    shape: tuple[int, int] = (50, 2),
    name: str = "gradient_mean_rms",
) -> str:
    """Check ``func(grads) -> (mean, rms)``, per-coordinate mean and root-mean-square over steps.

    The contract (the exercise's docstring): ``grads`` is a float32 tensor (N, n_coordinates);
    ``mean`` and ``rms`` are float32 tensors of shape (n_coordinates,).

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
    n_steps, n_coords = shape
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.linspace(-1.0, 1.0, n_coords)
    scales = torch.linspace(0.3, 3.0, n_coords)
    grads = offsets + scales * torch.randn(shape, generator=generator)
    given = grads.clone()
    with captured_warnings() as caught:
        returned = _call(name, func, given)
    if not torch.equal(given, grads):
        raise CheckFailure(f"{name} modified grads in place; compute new tensors instead.")
    mean_ret, rms_ret = unpack(returned, ("mean", "rms"), name)
    per_step = {(n_steps,): "one value per step: average over the steps (dim=0) to get one value "
                "per coordinate"} if n_steps != n_coords else None
    meaning = "(n_coordinates,), one value per coordinate"
    mean = expect_tensor(mean_ret, "mean", shape=(n_coords,), meaning=meaning, shape_hints=per_step)
    rms = expect_tensor(rms_ret, "rms", shape=(n_coords,), meaning=meaning, shape_hints=per_step)
    g = grads.double().numpy()
    ref_mean = g.mean(axis=0)
    ref_rms = np.sqrt((g**2).mean(axis=0))
    swapped = find_mistake((mean, rms), [Mistake("swapped", (ref_rms, ref_mean))], rtol=1e-5)
    if swapped is not None:
        raise CheckFailure(f"{name} returned (rms, mean); return (mean, rms).")
    judge("mean", mean, ref_mean, [
        Mistake("it is the mean of |g|; the mean keeps the signs: grads.mean(dim=0)",
                np.abs(g).mean(axis=0)),
    ], rtol=1e-5, advice="The mean is the plain average of each column, (1/N) Σ_t g_t.")
    judge("rms", rms, ref_rms, [
        Mistake("it is the mean square: take its square root", (g**2).mean(axis=0)),
        Mistake("it is the standard deviation (it subtracts the mean); the RMS does not: "
                "sqrt(mean(g²))", g.std(axis=0)),
        Mistake("it is the sample standard deviation (it subtracts the mean and divides by N − 1); "
                "the RMS does not: sqrt(mean(g²))", g.std(axis=0, ddof=1) if n_steps > 1 else None),
        Mistake("it is the mean of |g|; square first, average, then take the root",
                np.abs(g).mean(axis=0)),
        Mistake("it is the norm of each column: divide the sum of squares by N before the root",
                np.sqrt((g**2).sum(axis=0))),
        Mistake("it is |mean|: square each gradient before averaging", np.abs(ref_mean)),
    ], rtol=1e-5, advice="The RMS is sqrt((1/N) Σ_t g_t²) for each coordinate.")
    return (
        f"{name} is correct for {n_steps} steps × {n_coords} coordinates "
        f"(|mean| ≤ rms in every coordinate: {bool(np.all(np.abs(mean) <= rms + 1e-12))})."
        + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# Optimisers: a test problem, PyTorch's trajectories, the student's, and the replayed mistakes
# ----------------------------------------------------------------------------------------------

_DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((3, 4), (4,), (2, 3, 2), (1,))


class _Problem:
    """A smooth, non-convex loss of several parameter tensors, with fixed random constants."""

    def __init__(self, seed: int, shapes: Sequence[tuple[int, ...]]) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.shapes = [tuple(s) for s in shapes]
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


def _flat(params: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """float64 copies of the values of our own parameter tensors (through import-time methods)."""
    return [
        np.array(_TENSOR_NUMPY(_TENSOR_CPU(_TENSOR_DETACH(p))), dtype=np.float64, copy=True)
        for p in params
    ]


def _torch_trajectory(problem: _Problem, make: Callable[[list], Any], n_steps: int) -> list:
    params = problem.fresh()
    optimiser = make(params)
    history = []
    for _ in range(n_steps):
        problem.loss(params).backward()
        optimiser.step()
        optimiser.zero_grad()
        history.append(_flat(params))
    return history


def _trajectory_error(actual: list, expected: list) -> tuple[float, int]:
    """Largest relative error over the whole run (per tensor) and the first step that exceeds it."""
    n_tensors = len(expected[0])
    scales = [max(float(np.max(np.abs(step[i]))) for step in expected) or 1.0 for i in range(n_tensors)]
    worst, first_bad = 0.0, -1
    for t, (got, want) in enumerate(zip(actual, expected, strict=True)):
        err = max(float(np.max(np.abs(g - w))) / s for g, w, s in zip(got, want, scales, strict=True))
        if err > _RTOL and first_bad < 0:
            first_bad = t
        worst = max(worst, err)
    return worst, first_bad


def _same(actual: list, expected: list) -> bool:
    return all(
        np.all(np.isfinite(a)) for step in actual for a in step
    ) and _trajectory_error(actual, expected)[0] <= _RTOL


def _student_trajectory(
    cls: Callable[..., Any],
    kwargs: dict[str, Any],
    problem: _Problem,
    n_steps: int,
    name: str,
    *,
    as_generator: bool = True,
) -> list:
    """Run the student's optimiser like a training loop; raise on protocol failures."""
    params = problem.fresh()
    given = (p for p in params) if as_generator else list(params)
    optimiser = _call(
        f"{name}(parameters, ...)", cls, given, **kwargs,
        hint="The constructor receives the parameters (any iterable, e.g. model.parameters()) "
        "and the hyper-parameters as keywords: " + ", ".join(kwargs) + ".",
    )
    history = []
    for t in range(n_steps):
        problem.loss(params).backward()
        before = _flat(params)
        _call(f"{name}.step()", optimiser.step)
        after = _flat(params)
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
        if all(np.array_equal(b, a) for b, a in zip(before, after, strict=True)):
            if t == 0:
                raise CheckFailure(
                    f"{name}.step() did not change the parameters. Update each parameter in place "
                    "(`x -= ...` under torch.no_grad()); `x = x - ...` only rebinds a local name "
                    "and leaves the model's tensor as it was."
                )
            if as_generator and _moves_with_a_list(cls, kwargs, problem, t + 1, name):
                raise CheckFailure(
                    f"{name}.step() changed the parameters at the first step only when given a "
                    "generator (like model.parameters()), but goes on changing them when given a "
                    "list: a generator can be iterated once, so store the parameters in a list in "
                    "__init__ (`list(parameters)`)."
                )
        history.append(after)
        _call(f"{name}.zero_grad()", optimiser.zero_grad)
        # after every zero_grad(), every gradient must be gone (None) or zero
        uncleared = [
            i for i, p in enumerate(params)
            if p.grad is not None and bool(torch.any(p.grad.detach() != 0))
        ]
        if uncleared and as_generator:
            try:  # the same class given a list: the generator may be the culprit
                _student_trajectory(cls, kwargs, problem, 1, name, as_generator=False)
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
    return history


def _moves_with_a_list(
    cls: Callable[..., Any], kwargs: dict[str, Any], problem: _Problem, n_steps: int, name: str
) -> bool:
    """True when the class, given a list of parameters, still changes them at step ``n_steps``."""
    try:
        history = _student_trajectory(cls, kwargs, problem, n_steps, name, as_generator=False)
    except CheckFailure:
        return False
    if len(history) < 2:
        return False
    return not all(np.array_equal(b, a) for b, a in zip(history[-2], history[-1], strict=True))


def _check_skips_missing_grads(
    cls: Callable[..., Any], kwargs: dict[str, Any], problem: _Problem, name: str
) -> None:
    """A parameter outside the loss has ``grad is None``: it must be skipped and stay unchanged."""
    params = problem.fresh()
    unused = torch.full((2, 2), 0.75, requires_grad=True)
    optimiser = _call(f"{name}(parameters, ...)", cls, iter([*params, unused]), **kwargs)
    for _ in range(3):
        problem.loss(params).backward()
        _call(f"{name}.step()", optimiser.step, hint=_NONE_GRAD_HINT)
        _call(f"{name}.zero_grad()", optimiser.zero_grad, hint=_NONE_GRAD_HINT)
    if not torch.equal(unused.detach(), torch.full((2, 2), 0.75)):
        raise CheckFailure(
            f"{name}.step() changed a parameter whose .grad is None (it took no part in the loss); "
            "skip such parameters entirely, weight decay included, as torch.optim does."
        )


def _describe_mismatch(name: str, actual: list, expected: list, settings: str) -> str:
    for t, step in enumerate(actual):
        if not all(np.all(np.isfinite(a)) for a in step):
            return (
                f"{name} made the parameters NaN or infinite at step {t + 1} ({settings}). Look for "
                "a division by zero (is t ≥ 1 in 1 − β^t?) or the square root of a negative number."
            )
    worst, first_bad = _trajectory_error(actual, expected)
    return (
        f"{name} does not follow the same trajectory as torch.optim ({settings}): it first "
        f"differs at step {first_bad + 1}, by up to {worst:.3g} relative to the size of the "
        "parameters."
    )


# ----------------------------------------------------------------------------------------------
# SimpleGradientDescent
# ----------------------------------------------------------------------------------------------


def _sgd_variant(
    problem: _Problem, lr: float, weight_decay: float, n_steps: int, mistake: str
) -> list:
    params = problem.fresh()
    history = []
    for _ in range(n_steps):
        problem.loss(params).backward()
        with torch.no_grad():
            for x in params:
                g = x.grad
                if mistake == "wd_unscaled":
                    x -= lr * g + weight_decay * x
                elif mistake == "wd_ignored":
                    x -= lr * g
                elif mistake == "wd_sign":
                    x -= lr * (g - weight_decay * x)
                elif mistake == "wd_half":
                    x -= lr * (g + 0.5 * weight_decay * x)
                elif mistake == "ascent":
                    x += lr * (g + weight_decay * x)
                elif mistake == "lr_ignored":
                    x -= g + weight_decay * x
                elif mistake == "wd_times_lr_twice":
                    x -= lr * g + lr * lr * weight_decay * x
                x.grad = None
        history.append(_flat(params))
    return history


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
    shapes, then a run in which one parameter never receives a gradient.

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
    problem = _Problem(seed, shapes)
    with captured_warnings() as caught:
        for wd in (0.0, weight_decay):
            settings = f"lr={lr}, weight_decay={wd}"
            expected = _torch_trajectory(
                problem, lambda p, wd=wd: _TORCH_SGD(p, lr=lr, weight_decay=wd, foreach=False),
                n_steps,
            )
            actual = _student_trajectory(
                cls, {"lr": lr, "weight_decay": wd}, problem, n_steps, name
            )
            if _same(actual, expected):
                continue
            mistake = find_mistake(actual, [
                Mistake(why, lambda kind=kind, wd=wd: _sgd_variant(problem, lr, wd, n_steps, kind))
                for kind, why in _SGD_MISTAKES.items() if wd or not kind.startswith("wd")
            ], same=_same)
            if mistake is not None:
                raise CheckFailure(f"{name} is wrong ({settings}): {mistake.why}.")
            raise CheckFailure(
                _describe_mismatch(name, actual, expected, settings)
                + " Each step: x -= lr * (x.grad + weight_decay * x)."
            )
        _check_skips_missing_grads(cls, {"lr": lr, "weight_decay": weight_decay}, problem, name)
    return (
        f"{name} matches torch.optim.SGD for {n_steps} steps on {len(problem.shapes)} tensors of "
        f"shapes {', '.join(str(s) for s in problem.shapes)} (lr={lr}, weight decay 0 and "
        f"{weight_decay}); zero_grad clears; parameters without a gradient are skipped."
        + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ema_update
# ----------------------------------------------------------------------------------------------


def _ema_reference(x: np.ndarray, beta: float, t: int, old: np.ndarray):
    star = beta * old + (1 - beta) * x
    return star / (1 - beta**t), star


def _ema_mistakes(x, beta, t, old) -> list[Mistake]:
    """What the common wrong versions of ``ema_update`` return, as (ema, ema_star) pairs."""
    ema, star = _ema_reference(x, beta, t, old)
    swapped = (1 - beta) * old + beta * x
    out = [
        Mistake("EMA without bias correction: ema should be ema_star / (1 − β^t), not ema_star "
                "itself", (star, star)),
        Mistake("the tuple is in the wrong order: return (ema, ema_star)", (star, ema)),
        Mistake("β and 1 − β are swapped: ema_star = β·ema_star_old + (1 − β)·x_t",
                (swapped / (1 - beta**t), swapped)),
        Mistake("the bias correction multiplies by (1 − β^t); it should divide",
                (star * (1 - beta**t), star)),
        Mistake("the bias correction divides ema_star_old instead of the new ema_star",
                (old / (1 - beta**t), star)),
        Mistake("the bias correction uses 1 − β^(t+1); with t counted from 1 it is 1 − β^t",
                (star / (1 - beta ** (t + 1)), star)),
        Mistake("the bias correction uses (1 − β)^t; it is 1 − β^t", (star / (1 - beta) ** t, star)),
    ]
    if t > 1:
        out.append(Mistake("the bias correction uses 1 − β^(t−1); with t counted from 1 it is "
                           "1 − β^t", (star / (1 - beta ** (t - 1)), star)))
    return out


def _ema_case(func, name, x, beta, t, old, label, *, tensors: bool):
    """Call the student's ema_update on one case; compare; name the mistake."""
    if tensors:
        x_arg, old_arg = x.clone(), old.clone()
    else:
        x_arg, old_arg = x, old
    returned = _call(
        name, func, x_arg, beta, t, old_arg,
        hint="ema_update(x_t, beta, t, ema_star_old) returns (ema, ema_star).",
    )
    if tensors and not (torch.equal(x_arg, x) and torch.equal(old_arg, old)):
        raise CheckFailure(
            f"{name} modified x_t or ema_star_old in place ({label}); compute new values instead."
        )
    ema_ret, star_ret = unpack(returned, ("ema", "ema_star"), name)
    if tensors:
        shape = tuple(x.shape)
        meaning = "the shape of x_t: the average is taken element by element"
        ema = expect_tensor(ema_ret, f"ema ({label})", shape=shape, dtype=x.dtype, meaning=meaning)
        star = expect_tensor(star_ret, f"ema_star ({label})", shape=shape, dtype=x.dtype,
                             meaning=meaning)
        x_np = x.double().numpy()
        old_np = old.double().numpy()
    else:
        ema = np.array(expect_number(ema_ret, f"ema ({label})"))
        star = np.array(expect_number(star_ret, f"ema_star ({label})"))
        x_np, old_np = np.array(float(x)), np.array(float(old))
    ref_ema, ref_star = _ema_reference(x_np, beta, t, old_np)
    if matches((ema, star), (ref_ema, ref_star), 1e-5):
        return
    mistake = find_mistake((ema, star), _ema_mistakes(x_np, beta, t, old_np), rtol=1e-5)
    if mistake is not None:
        raise CheckFailure(f"Wrong EMA ({label}): {mistake.why}.")
    judge(f"ema_star ({label})", star, ref_star, rtol=1e-5,
          advice="ema_star = β·ema_star_old + (1 − β)·x_t.")
    judge(f"ema ({label})", ema, ref_ema, rtol=1e-5, advice="ema = ema_star / (1 − β^t).")


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
    tensor); for tensor inputs, two tensors of the shape and dtype of ``x_t``.

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
    generator = torch.Generator().manual_seed(seed)
    values = (3.0 * torch.randn(8, generator=generator) - 1.0).tolist()
    with captured_warnings() as caught:
        _ema_case(func, name, values[0], beta, 1, 0.0, "floats, t = 1", tensors=False)
        star = 0.0
        for t, value in enumerate(values[1:6], start=2):  # a short series, fed our own EMA*
            _ema_case(func, name, value, beta, t, star, f"floats, t = {t}", tensors=False)
            star = beta * star + (1 - beta) * value
            if t == 2:
                star_after_2 = star
        _ema_case(func, name, values[6], beta, large_t, values[7], f"floats, t = {large_t}",
                  tensors=False)
        _ema_case(func, name, values[6], 0.999, 1, 0.0, "β = 0.999, t = 1", tensors=False)
        _ema_case(func, name, torch.tensor(values[2]), beta, 3, torch.tensor(star_after_2),
                  "0-d tensors, t = 3", tensors=True)
        x_tensor = torch.randn(shape, generator=generator)
        old_tensor = torch.randn(shape, generator=generator)
        _ema_case(func, name, x_tensor, beta, 1, torch.zeros(shape), f"tensors {shape}, t = 1",
                  tensors=True)
        _ema_case(func, name, x_tensor, beta, 4, old_tensor, f"tensors {shape}, t = 4",
                  tensors=True)
        _ema_case(func, name, x_tensor, beta, large_t, old_tensor,
                  f"tensors {shape}, t = {large_t}", tensors=True)
    return (
        f"{name} is correct: bias-corrected EMA for floats and tensors of shape {shape}, at t = 1, "
        f"along a series and at t = {large_t} (β = {beta} and 0.999)." + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ADAMOptimizer
# ----------------------------------------------------------------------------------------------


def _adam_variant(
    problem: _Problem,
    settings: dict[str, Any],
    n_steps: int,
    *,
    bias_correction: bool = True,
    t_per_parameter: bool = False,
    keep_m: bool = True,
    keep_v: bool = True,
    weight_decay_mode: str = "coupled",
    swap_betas: bool = False,
) -> list:
    lr, eps, wd = settings["lr"], settings["eps"], settings["weight_decay"]
    b1, b2 = settings["betas"]
    if swap_betas:
        b1, b2 = b2, b1
    params = problem.fresh()
    m_star = [torch.zeros_like(p) for p in params]
    v_star = [torch.zeros_like(p) for p in params]
    t = 0
    history = []
    for _ in range(n_steps):
        problem.loss(params).backward()
        if not t_per_parameter:
            t += 1
        with torch.no_grad():
            for i, x in enumerate(params):
                if t_per_parameter:
                    t += 1
                g = x.grad + wd * x if weight_decay_mode == "coupled" else x.grad.clone()
                m_new = b1 * m_star[i] + (1 - b1) * g
                v_new = b2 * v_star[i] + (1 - b2) * g * g
                m = m_new / (1 - b1**t) if bias_correction else m_new
                v = v_new / (1 - b2**t) if bias_correction else v_new
                if keep_m:
                    m_star[i] = m_new
                if keep_v:
                    v_star[i] = v_new
                step = lr * m / (v.sqrt() + eps)
                if weight_decay_mode == "unscaled":
                    step = step + wd * x
                elif weight_decay_mode == "decoupled":
                    step = step + lr * wd * x
                x -= step
                x.grad = None
        history.append(_flat(params))
    return history


def _adam_mistakes(weight_decay: float) -> dict[str, dict[str, Any]]:
    mistakes: dict[str, dict[str, Any]] = {
        "the moments are not bias-corrected (EMA without bias correction): divide m* by "
        "(1 − β₁^t) and v* by (1 − β₂^t)": {"bias_correction": False},
        "t is advanced once per parameter instead of once per step: increment self.t once at "
        "the start of step(), outside the loop over parameters": {"t_per_parameter": True},
        "the moment buffers are rebound instead of updated in place (`m_star = ...` only renames "
        "a local variable, so the stored m* and v* stay 0 and nothing is remembered between "
        "steps): write into them with `m_star[...] = ...` or `m_star.copy_(...)`": {
            "keep_m": False, "keep_v": False},
        "the first-moment buffer m* is rebound instead of updated in place (`m_star = ...` only "
        "renames a local variable): write into it with `m_star[...] = ...`": {"keep_m": False},
        "the second-moment buffer v* is rebound instead of updated in place (`v_star = ...` only "
        "renames a local variable): write into it with `v_star[...] = ...`": {"keep_v": False},
        "β₁ and β₂ are swapped: β₁ smooths the gradient, β₂ its square": {"swap_betas": True},
        "the moments are not bias-corrected and t is advanced per parameter": {
            "bias_correction": False, "t_per_parameter": True},
    }
    if weight_decay:
        mistakes.update({
            "weight decay is not multiplied by the learning rate (x -= lr * m / (sqrt(v) + eps) + "
            "weight_decay * x): add weight_decay * x to the gradient g before the moments, as "
            "torch.optim.Adam does": {"weight_decay_mode": "unscaled"},
            "weight decay is decoupled (AdamW: x -= lr * weight_decay * x): this exercise follows "
            "torch.optim.Adam, which adds weight_decay * x to the gradient g before the moments": {
                "weight_decay_mode": "decoupled"},
            "weight_decay is ignored: add weight_decay * x to the gradient g": {
                "weight_decay_mode": "none"},
        })
    return mistakes


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
    shapes, then a run in which one parameter never receives a gradient.

    Parameters
    ----------
    cls : callable
        The student's class, ``cls(parameters, lr=..., betas=..., eps=..., weight_decay=...)``.
    seed : int
        Seed of the test problem.
    shapes : sequence of tuples
        Shapes of the parameter tensors (several, so that per-parameter mistakes show).
    lr, betas, eps : float, (float, float), float
        Hyper-parameters passed to both optimisers.
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
    problem = _Problem(seed, shapes)
    with captured_warnings() as caught:
        uses = verify_dependencies(name, cls, {"ema_update": check_ema_update})
        for wd in (0.0, weight_decay):
            settings = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": wd}
            described = f"lr={lr}, betas={tuple(betas)}, eps={eps}, weight_decay={wd}"
            expected = _torch_trajectory(
                problem, lambda p, s=settings: _TORCH_ADAM(p, foreach=False, **s), n_steps
            )
            actual = _student_trajectory(cls, dict(settings), problem, n_steps, name)
            if _same(actual, expected):
                continue
            mistake = find_mistake(actual, [
                Mistake(why, lambda o=options, s=settings: _adam_variant(problem, s, n_steps, **o))
                for why, options in _adam_mistakes(wd).items()
            ], same=_same)
            if mistake is not None:
                raise CheckFailure(f"{name} is wrong ({described}): {mistake.why}.")
            raise CheckFailure(
                _describe_mismatch(name, actual, expected, described)
                + " Per step: t += 1 once; for each parameter g = grad + weight_decay * x, "
                "m, m* = ema_update(g, β₁, t, m*), v, v* = ema_update(g², β₂, t, v*) with m* and "
                "v* updated in place, x -= lr * m / (sqrt(v) + eps)."
            )
        _check_skips_missing_grads(
            cls,
            {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay},
            problem,
            name,
        )
    return (
        f"{name} matches torch.optim.Adam for {n_steps} steps on {len(problem.shapes)} tensors of "
        f"shapes {', '.join(str(s) for s in problem.shapes)} (lr={lr}, betas={tuple(betas)}, "
        f"weight decay 0 and {weight_decay}); the moment state persists across steps; zero_grad "
        "clears; parameters without a gradient are skipped"
        + (" (your ema_update is correct too)." if uses else ".") + warning_note(caught)
    )
