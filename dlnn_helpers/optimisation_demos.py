"""Tools of tutorial 2 (optimisation) that are not exercises: data, a recording loop, stand-ins.

The optimisers, the EMA and the gradient statistics are the tutorial's exercises: the package does
not hold them.  Until a student's answer passes its self-check, the demonstrations use a stand-in
(:func:`~dlnn_helpers.checks.own_or_fallback`): a ``torch.optim`` routine (the exercises refuse
``torch.optim``, so none of these passes a check) or values precomputed by the course.

* :func:`record_gradients` — optimise with any optimiser and return every gradient on the way;
* :func:`make_jump_series` — the time series on which the EMA is demonstrated;
* :func:`descend_with_torch_sgd` — gradient descent on one tensor with ``torch.optim.SGD``;
* :func:`precomputed_gradient_mean_rms` and :func:`precomputed_ema` — the values the demonstrations
  of Sections 3 and 4 show, precomputed by the course (:mod:`dlnn_helpers.optimisation_data`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import optimisation_data
from .optimisation_surface import START, LossFunctionWithPlot


def record_gradients(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    make_optimiser: Callable[[list[torch.Tensor]], Any],
    n_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimise a copy of ``x0`` and return every gradient seen on the way.

    Parameters
    ----------
    loss_fn : callable
        Maps the parameter tensor to a scalar loss.
    x0 : torch.Tensor of shape (n,)
        Starting point (copied; not changed).
    make_optimiser : callable
        ``make_optimiser([x])`` returns an optimiser, e.g. ``lambda p: torch.optim.SGD(p, lr=0.1)``.
    n_steps : int
        Number of steps.

    Returns
    -------
    grads : torch.Tensor of shape (n_steps, n)
        The gradient at every step (before the update).
    x : torch.Tensor of shape (n,)
        The final point (detached).
    """
    x = x0.detach().clone().requires_grad_(True)
    optimiser = make_optimiser([x])
    grads = torch.empty(n_steps, *x.shape)
    for step in range(n_steps):
        loss_fn(x).backward()
        grads[step] = x.grad
        optimiser.step()
        optimiser.zero_grad()
    return grads, x.detach()


def make_jump_series(
    n_per_part: int = 100,
    levels: tuple[float, float] = (-10.0, 0.5),
    noise: tuple[float, float] = (0.1, 1.0),
    *,
    random_state: int = 0,
) -> torch.Tensor:
    """A noisy series that sits at one level and then jumps to another.

    Parameters
    ----------
    n_per_part : int
        Length of each of the two parts.
    levels : (float, float)
        Mean of the first and of the second part.
    noise : (float, float)
        Standard deviation of the Gaussian noise of each part.
    random_state : int
        Seed of a private generator (the global one is not touched).

    Returns
    -------
    torch.Tensor of shape (2 * n_per_part,)
    """
    generator = torch.Generator().manual_seed(random_state)
    parts = [
        level + scale * torch.randn(n_per_part, generator=generator)
        for level, scale in zip(levels, noise, strict=True)
    ]
    return torch.cat(parts)


def descend_with_torch_sgd(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    learning_rate: float | torch.Tensor,
    n_steps: int,
) -> None:
    """``n_steps`` of gradient descent on ``x`` in place, taken by ``torch.optim.SGD``.

    The stand-in for the tutorial's ``gradient_descent`` exercise (which refuses ``torch.optim``):
    a per-coordinate ``learning_rate`` scales the gradient before an SGD step of size 1.

    Parameters
    ----------
    loss_fn : callable
        Maps ``x`` to a scalar tensor.
    x : torch.Tensor
        A leaf tensor with ``requires_grad=True``; updated in place.
    learning_rate : float or torch.Tensor
        Step size; a tensor broadcastable to ``x.shape`` gives one rate per coordinate.
    n_steps : int
        Number of steps.
    """
    optimiser = torch.optim.SGD([x], lr=1.0)
    for _ in range(n_steps):
        loss_fn(x).backward()
        x.grad.mul_(learning_rate)
        optimiser.step()
        optimiser.zero_grad()


def _section3_gradients() -> torch.Tensor:
    grads, _ = record_gradients(LossFunctionWithPlot(), torch.tensor(START),
                                lambda params: torch.optim.SGD(params, lr=0.1), 50)
    return grads


def precomputed_gradient_mean_rms(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and RMS of the gradient history of Section 3, as precomputed by the course.

    Parameters
    ----------
    grads : torch.Tensor of shape (50, 2)
        The gradients of 50 steps of ``torch.optim.SGD`` with learning rate 0.1 from ``START`` on
        the default loss (the demonstration's history); any other history is refused.

    Returns
    -------
    mean, rms : torch.Tensor of shape (2,)

    Raises
    ------
    ValueError
        For any other gradient history (the values are precomputed for that one only).
    """
    known = _section3_gradients()
    if not (isinstance(grads, torch.Tensor) and grads.shape == known.shape
            and torch.allclose(grads.detach().float(), known, rtol=1e-5, atol=1e-6)):
        raise ValueError("precomputed_gradient_mean_rms holds the values of the gradient history of "
                         "Section 3 only (50 steps of SGD, learning rate 0.1, from START)")
    return (torch.tensor(optimisation_data.SECTION3_MEAN, dtype=torch.float32),
            torch.tensor(optimisation_data.SECTION3_RMS, dtype=torch.float32))


def precomputed_ema(series: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """EMA and EMA* after every observation of the jump series of Section 4, precomputed.

    Parameters
    ----------
    series : torch.Tensor of shape (200,)
        ``make_jump_series(random_state=2021)``, the demonstration's series; any other is refused.
    beta : float
        0.9, the demonstration's smoothing factor.

    Returns
    -------
    ema, ema_star : torch.Tensor of shape (200,)

    Raises
    ------
    ValueError
        For any other series or β.
    """
    known = make_jump_series(random_state=optimisation_data.SERIES_SEED)
    if not (isinstance(series, torch.Tensor) and series.shape == known.shape
            and torch.equal(series.detach().float(), known) and beta == optimisation_data.SERIES_BETA):
        raise ValueError(f"precomputed_ema holds the averages of make_jump_series(random_state="
                         f"{optimisation_data.SERIES_SEED}) with beta = {optimisation_data.SERIES_BETA} "
                         "only")
    return (torch.tensor(optimisation_data.JUMP_SERIES_EMA, dtype=torch.float32),
            torch.tensor(optimisation_data.JUMP_SERIES_EMA_STAR, dtype=torch.float32))
