"""Reference optimisers and gradient statistics of tutorial 2 (optimisation).

The classes follow the protocol of ``torch.optim`` closely enough for any training loop written for
PyTorch's optimisers: they take an iterable of parameters (``model.parameters()``, a generator, is
fine), ``step()`` updates every parameter that has a gradient in place (it may be called with or
without ``torch.no_grad()``), and ``zero_grad()`` clears the gradients.

* :class:`SimpleGradientDescent` — plain gradient descent with (coupled) weight decay, step for step
  the same as ``torch.optim.SGD(params, lr, weight_decay=...)``;
* :func:`ema_update` — one step of a bias-corrected exponential moving average;
* :class:`ADAMOptimizer` — Adam built from two EMAs, step for step the same as
  ``torch.optim.Adam`` (weight decay added to the gradient, not the decoupled AdamW form);
* :func:`gradient_descent` — the bare gradient-descent loop on one tensor;
* :func:`gradient_mean_rms` and :func:`record_gradients` — per-coordinate statistics of gradients;
* :func:`make_jump_series` — the time series on which the EMA is demonstrated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def gradient_descent(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    learning_rate: float | torch.Tensor,
    n_steps: int,
) -> None:
    """Minimise ``loss_fn`` by plain gradient descent, updating ``x`` in place.

    Each step evaluates the loss once at the current ``x``, back-propagates, moves ``x`` by
    ``-learning_rate * x.grad`` and clears the gradient for the next step.

    Parameters
    ----------
    loss_fn : callable
        Maps ``x`` to a scalar tensor.
    x : torch.Tensor
        A leaf tensor with ``requires_grad=True``; any shape.
    learning_rate : float or torch.Tensor
        Step size; a tensor broadcastable to ``x.shape`` gives one rate per coordinate.
    n_steps : int
        Number of updates (and of evaluations of ``loss_fn``).
    """
    for _ in range(n_steps):
        loss = loss_fn(x)
        loss.backward()
        with torch.no_grad():
            x -= learning_rate * x.grad
        x.grad = None


class SimpleGradientDescent:
    """Gradient descent with weight decay, as a PyTorch-style optimiser.

    Every step applies, to each parameter θ that has a gradient g,

    .. math:: θ ← θ − η (g + λ θ),

    the gradient step on the loss plus :math:`\\frac{λ}{2}\\lVert θ \\rVert^2`.  This is exactly
    ``torch.optim.SGD(params, lr=η, weight_decay=λ)``.

    Parameters
    ----------
    parameters : iterable of torch.Tensor
        The tensors to optimise (e.g. ``model.parameters()``); stored in a list.
    lr : float
        Learning rate η.
    weight_decay : float
        Weight-decay coefficient λ.
    """

    def __init__(
        self, parameters: Iterable[torch.Tensor], lr: float = 0.1, weight_decay: float = 0.0
    ) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.parameters = list(parameters)

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for x in self.parameters:
            if x.grad is None:
                continue
            x -= self.lr * (x.grad + self.weight_decay * x)

    def zero_grad(self) -> None:
        """Forget the gradients (set them to ``None``, as ``torch.optim`` does by default)."""
        for x in self.parameters:
            x.grad = None


def ema_update(x_t: Any, beta: float, t: int, ema_star_old: Any) -> tuple[Any, Any]:
    """One step of an exponential moving average with bias correction.

    .. math::

        \\mathrm{EMA}^*_t = β\\,\\mathrm{EMA}^*_{t-1} + (1 − β)\\,x_t, \\qquad
        \\mathrm{EMA}_t = \\frac{\\mathrm{EMA}^*_t}{1 − β^t}, \\qquad \\mathrm{EMA}^*_0 = 0.

    Parameters
    ----------
    x_t : float or torch.Tensor
        The new observation (a tensor of any shape averages element-wise).
    beta : float
        Smoothing factor, 0 ≤ β < 1.
    t : int
        Index of the observation, starting at 1.
    ema_star_old : float or torch.Tensor
        :math:`\\mathrm{EMA}^*_{t-1}` (0 before the first observation); same shape as ``x_t``.

    Returns
    -------
    ema : float or torch.Tensor
        The bias-corrected average :math:`\\mathrm{EMA}_t`.
    ema_star : float or torch.Tensor
        The running numerator :math:`\\mathrm{EMA}^*_t`, to pass back at step t + 1.
    """
    ema_star = beta * ema_star_old + (1 - beta) * x_t
    ema = ema_star / (1 - beta**t)
    return ema, ema_star


class ADAMOptimizer:
    """Adam as a PyTorch-style optimiser, written with :func:`ema_update`.

    With one step counter t for the optimiser, each parameter θ with gradient g is updated by

    .. math::

        g ← g + λθ, \\quad m, m^* = \\mathrm{EMA}_{β_1}(g), \\quad v, v^* = \\mathrm{EMA}_{β_2}(g^2),
        \\quad θ ← θ − η \\frac{m}{\\sqrt{v} + ε},

    which is ``torch.optim.Adam(params, lr, betas, eps, weight_decay)`` (weight decay added to the
    gradient; AdamW would instead subtract ηλθ from θ directly).  The moment numerators
    :math:`m^*` and :math:`v^*` are updated in place, so the state lives in ``self.m_star`` and
    ``self.v_star`` from one step to the next.

    Parameters
    ----------
    parameters : iterable of torch.Tensor
        The tensors to optimise (e.g. ``model.parameters()``); stored in a list.
    lr : float
        Learning rate η.
    betas : (float, float)
        Smoothing factors β₁ (gradient) and β₂ (squared gradient).
    eps : float
        ε, keeps the denominator away from zero.
    weight_decay : float
        Weight-decay coefficient λ.
    """

    def __init__(
        self,
        parameters: Iterable[torch.Tensor],
        lr: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = lr
        self.beta_1, self.beta_2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.parameters = list(parameters)
        self.m_star = [torch.zeros_like(x) for x in self.parameters]
        self.v_star = [torch.zeros_like(x) for x in self.parameters]

    @torch.no_grad()
    def step(self) -> None:
        """Advance the step counter once, then update every parameter that has a gradient."""
        self.t += 1
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            if x.grad is None:
                continue
            g = x.grad + self.weight_decay * x
            m, m_star[...] = ema_update(g, self.beta_1, self.t, m_star)
            v, v_star[...] = ema_update(g * g, self.beta_2, self.t, v_star)
            x -= self.lr * m / (v.sqrt() + self.eps)

    def zero_grad(self) -> None:
        """Forget the gradients (set them to ``None``, as ``torch.optim`` does by default)."""
        for x in self.parameters:
            x.grad = None


def gradient_mean_rms(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate mean and root-mean-square of a history of gradients.

    Parameters
    ----------
    grads : torch.Tensor of shape (n_steps, n_coordinates)
        Row t is the gradient at step t.

    Returns
    -------
    mean : torch.Tensor of shape (n_coordinates,)
        :math:`\\frac{1}{N}\\sum_t g_{t,i}`.
    rms : torch.Tensor of shape (n_coordinates,)
        :math:`\\sqrt{\\frac{1}{N}\\sum_t g_{t,i}^2}`.
    """
    return grads.mean(dim=0), grads.square().mean(dim=0).sqrt()


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


def ema_history(series: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Run :func:`ema_update` along a series; return the EMA and EMA* after every observation.

    Parameters
    ----------
    series : torch.Tensor of shape (T,)
    beta : float

    Returns
    -------
    ema, ema_star : torch.Tensor of shape (T,)
    """
    ema = torch.empty_like(series)
    ema_star = torch.empty_like(series)
    star = torch.zeros(())
    for t, value in enumerate(series, start=1):
        ema[t - 1], star = ema_update(value, beta, t, star)
        ema_star[t - 1] = star
    return ema, ema_star
