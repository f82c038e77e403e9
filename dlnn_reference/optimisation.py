"""Reference answers of tutorial 2 (optimisation) and the expected values of its checks.

The reference implementations of the graded exercises (instructor side only):

* :func:`gradient_descent` — the bare gradient-descent loop on one tensor;
* :class:`SimpleGradientDescent` — gradient descent with (coupled) weight decay, step for step
  ``torch.optim.SGD(params, lr, weight_decay=...)``;
* :func:`gradient_mean_rms` — per-coordinate mean and root-mean-square of a gradient history;
* :func:`ema_update` — one step of a bias-corrected exponential moving average;
* :class:`ADAMOptimizer` — Adam built from two EMAs, step for step ``torch.optim.Adam``;
* :func:`ema_history` — :func:`ema_update` run along a series;
* :class:`MomentumSGD` — tutorial 3's heavy-ball momentum, step for step
  ``torch.optim.SGD(params, lr, momentum=..., weight_decay=...)``.

For every check of :mod:`dlnn_helpers.checks.optimisation`, a function of the check's settings
(registered with :func:`~dlnn_reference.expects`) regenerates the check's inputs with the check
module's own builders and returns ``{"correct": ..., <mistake>: ...}``: the right values and what
each known mistake gives (the check holds the words, keyed by the same names).  Optimiser
trajectories are the parameters' float32 values after every step, every tensor flattened and
concatenated (``(n_steps, n_values)``), packed by
:func:`~dlnn_helpers.checks.optimisation.pack_trajectory`; a mistake's trajectory keeps only the
steps of :func:`~dlnn_helpers.checks.optimisation.mistake_steps`, which is all the check compares,
so that the shipped file stays small.

:func:`write_fallback_data` writes ``dlnn_helpers/optimisation_data.py``: the values the notebook's
demonstrations use until the student's own answer passes its self-check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlnn_helpers.checks.optimisation import (
    Problem,
    ema_cases,
    gradient_history,
    mistake_steps,
    pack_trajectory,
)
from dlnn_helpers.optimisation_demos import make_jump_series, record_gradients
from dlnn_helpers.optimisation_surface import START, LossFunctionWithPlot

from . import answers, expects

# ================================================================================ reference answers


@answers("check_gradient_descent")
def gradient_descent(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    learning_rate: float | torch.Tensor,
    n_steps: int,
) -> None:
    """Minimise ``loss_fn`` by plain gradient descent, updating ``x`` in place.

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


@answers("check_simple_gradient_descent")
class SimpleGradientDescent:
    """Gradient descent with weight decay, θ ← θ − η (g + λ θ): ``torch.optim.SGD`` with weight decay.

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


@answers("check_ema_update")
def ema_update(x_t: Any, beta: float, t: int, ema_star_old: Any) -> tuple[Any, Any]:
    """One step of an exponential moving average with bias correction.

    Parameters
    ----------
    x_t : float or torch.Tensor
        The new observation (a tensor of any shape averages element-wise).
    beta : float
        Smoothing factor, 0 ≤ β < 1.
    t : int
        Index of the observation, starting at 1.
    ema_star_old : float or torch.Tensor
        EMA*_{t−1} (0 before the first observation); same shape as ``x_t``.

    Returns
    -------
    ema : float or torch.Tensor
        The bias-corrected average EMA_t = EMA*_t / (1 − β^t).
    ema_star : float or torch.Tensor
        EMA*_t = β EMA*_{t−1} + (1 − β) x_t, to pass back at step t + 1.
    """
    ema_star = beta * ema_star_old + (1 - beta) * x_t
    ema = ema_star / (1 - beta**t)
    return ema, ema_star


@answers("check_adam_optimizer")
class ADAMOptimizer:
    """Adam as a PyTorch-style optimiser, written with :func:`ema_update` (``torch.optim.Adam``).

    Parameters
    ----------
    parameters : iterable of torch.Tensor
        The tensors to optimise; stored in a list.
    lr : float
        Learning rate η.
    betas : (float, float)
        Smoothing factors β₁ (gradient) and β₂ (squared gradient).
    eps : float
        ε, keeps the denominator away from zero.
    weight_decay : float
        Weight-decay coefficient λ (added to the gradient, as ``torch.optim.Adam`` does).
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
        """Forget the gradients (set them to ``None``)."""
        for x in self.parameters:
            x.grad = None


@answers("check_momentum_sgd")
class MomentumSGD:
    """Gradient descent with heavy-ball momentum and weight decay (``torch.optim.SGD`` with momentum).

    Per step, for every parameter x with a gradient: g = ∇L + λ x, v ← μ v + g, x ← x − η v.

    Parameters
    ----------
    parameters : iterable of torch.Tensor
        The tensors to optimise; stored in a list.
    lr : float
        Learning rate η.
    momentum : float
        Momentum μ, 0 ≤ μ < 1.
    weight_decay : float
        Weight-decay coefficient λ (added to the gradient).
    """

    def __init__(self, parameters: Iterable[torch.Tensor], lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.parameters = list(parameters)
        self.velocities = [torch.zeros_like(x) for x in self.parameters]

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient, and its velocity, in place."""
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is None:
                continue
            v.mul_(self.momentum).add_(x.grad + self.weight_decay * x)
            x -= self.lr * v

    def zero_grad(self) -> None:
        """Forget the gradients (set them to ``None``)."""
        for x in self.parameters:
            x.grad = None


@answers("check_gradient_mean_rms")
def gradient_mean_rms(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate mean and root-mean-square of a gradient history of shape (N, n_coordinates)."""
    return grads.mean(dim=0), grads.square().mean(dim=0).sqrt()


def ema_history(series: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Run :func:`ema_update` along a series of shape (T,); return EMA and EMA* after every step."""
    ema = torch.empty_like(series)
    ema_star = torch.empty_like(series)
    star = torch.zeros(())
    for t, value in enumerate(series, start=1):
        ema[t - 1], star = ema_update(value, beta, t, star)
        ema_star[t - 1] = star
    return ema, ema_star


# ========================================================================================= helpers


def _rounded(values: Any, digits: int) -> np.ndarray:
    """A float64 copy rounded to ``digits`` significant digits (short in the shipped JSON)."""
    array = np.asarray(values, dtype=np.float64)
    flat = [float(f"{v:.{digits}g}") for v in array.reshape(-1).tolist()]
    return np.array(flat, dtype=np.float64).reshape(array.shape)


def _flat(params: Sequence[torch.Tensor]) -> np.ndarray:
    return np.concatenate([p.detach().double().reshape(-1).numpy() for p in params])


def _trajectory(history: list[np.ndarray], steps: Sequence[int] | None = None) -> tuple:
    """The packed float32 values of the parameters after every step (or after ``steps`` only)."""
    rows = np.stack(history) if steps is None else np.stack([history[i] for i in steps])
    return pack_trajectory(rows)


# ================================================================================ gradient descent


def _descent(bowl, start, learning_rate, n_steps: int, *, sign: float = 1.0,
             accumulate: bool = False) -> np.ndarray | None:
    if n_steps < 0:
        return None
    loss_fn = LossFunctionWithPlot(None if bowl is None else torch.tensor(bowl, dtype=torch.float32))
    lr = torch.tensor(learning_rate, dtype=torch.float32)
    x = torch.tensor(start, dtype=torch.float32).requires_grad_(True)
    for _ in range(n_steps):
        loss_fn(x).backward()
        with torch.no_grad():
            x -= sign * lr * x.grad
        if not accumulate:
            x.grad = None
    return _rounded(x.detach(), 9)


@expects("check_gradient_descent")
def gradient_descent_expected(start, learning_rate, n_steps, bowl) -> dict[str, Any]:
    """The final x of gradient descent, and of each known mistake (keys of the check's table)."""
    return {
        "correct": _descent(bowl, start, learning_rate, n_steps),
        "accumulate": _descent(bowl, start, learning_rate, n_steps, accumulate=True),
        "ascent": _descent(bowl, start, learning_rate, n_steps, sign=-1.0),
        "one_fewer": _descent(bowl, start, learning_rate, n_steps - 1),
        "one_more": _descent(bowl, start, learning_rate, n_steps + 1),
        "no_learning_rate": _descent(bowl, start, 1.0, n_steps),
    }


# ===================================================================================== mean / RMS


@expects("check_gradient_mean_rms")
def gradient_mean_rms_expected(seed, shape) -> dict[str, Any]:
    """Mean and RMS of the check's gradient history (float64), and what the known mistakes give."""
    g = gradient_history(seed, shape).double().numpy()
    n_steps = g.shape[0]
    mean = g.mean(axis=0)
    rms = np.sqrt((g**2).mean(axis=0))
    return {
        "correct": (_rounded(mean, 12), _rounded(rms, 12)),
        "abs_mean": _rounded(np.abs(g).mean(axis=0), 12),
        "mean_square": _rounded((g**2).mean(axis=0), 12),
        "std": _rounded(g.std(axis=0), 12),
        "sample_std": _rounded(g.std(axis=0, ddof=1), 12) if n_steps > 1 else None,
        "norm": _rounded(np.sqrt((g**2).sum(axis=0)), 12),
        "abs_of_mean": _rounded(np.abs(mean), 12),
    }


# ===================================================================================== ema_update


def _ema_values(x, beta: float, t: int, old) -> dict[str, Any]:
    star = beta * old + (1 - beta) * x
    ema = star / (1 - beta**t)
    swapped = (1 - beta) * old + beta * x
    values = {
        "correct": (ema, star),
        "no_correction": (star, star),
        "swapped_output": (star, ema),
        "swapped_beta": (swapped / (1 - beta**t), swapped),
        "multiplies": (star * (1 - beta**t), star),
        "corrects_old": (old / (1 - beta**t), star),
        "t_plus_one": (star / (1 - beta ** (t + 1)), star),
        "one_minus_beta_power": (star / (1 - beta) ** t, star),
        "t_minus_one": (star / (1 - beta ** (t - 1)), star) if t > 1 else None,
    }
    return {k: None if v is None else tuple(_rounded(a, 8) for a in v) for k, v in values.items()}


@expects("check_ema_update")
def ema_update_expected(seed, beta, shape, large_t) -> dict[str, Any]:
    """For every case of the check, in order: (ema, ema_star) and each known mistake's pair."""
    table: dict[str, list] = {}
    for case in ema_cases(seed, beta, shape, large_t):
        if case.tensors:
            x, old = case.x.double().numpy(), case.old.double().numpy()
        else:
            x, old = np.array(float(case.x)), np.array(float(case.old))
        for key, value in _ema_values(x, case.beta, case.t, old).items():
            table.setdefault(key, []).append(value)
    return table


# ======================================================================== the optimisers' runs


def _torch_run(problem: Problem, make: Callable[[list], Any], n_steps: int) -> np.ndarray:
    params = problem.fresh()
    optimiser = make(params)
    history = []
    for _ in range(n_steps):
        problem.loss(params).backward()
        optimiser.step()
        optimiser.zero_grad()
        history.append(_flat(params))
    return _trajectory(history)


def _sgd_variant(problem: Problem, lr: float, weight_decay: float, n_steps: int,
                 mistake: str) -> np.ndarray:
    params = problem.fresh()
    steps = mistake_steps(n_steps)
    history = []
    for _ in range(steps[-1] + 1):  # a mistake is compared at these steps only
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
    return _trajectory(history, steps)


SGD_MISTAKES = ("wd_unscaled", "wd_ignored", "wd_sign", "wd_half", "ascent", "lr_ignored",
                "wd_times_lr_twice")
"""The known mistakes of SimpleGradientDescent (the check says what each means)."""


@expects("check_simple_gradient_descent")
def simple_gradient_descent_expected(seed, shapes, lr, weight_decay, n_steps) -> dict[str, Any]:
    """Trajectories with weight decay 0 and ``weight_decay``: torch.optim.SGD and each mistake.

    Every entry is a list of two trajectories (weight decay 0, then ``weight_decay``); a mistake
    about weight decay is None at weight decay 0.
    """
    problem = Problem(seed, shapes)
    decays = (0.0, weight_decay)
    table: dict[str, list] = {"correct": [
        _torch_run(problem, lambda p, wd=wd: torch.optim.SGD(p, lr=lr, weight_decay=wd, foreach=False),
                   n_steps)
        for wd in decays]}
    for kind in SGD_MISTAKES:
        table[kind] = [None if not wd and kind.startswith("wd") else
                       _sgd_variant(problem, lr, wd, n_steps, kind) for wd in decays]
    return table


ADAM_FLAGS = {"bias_correction": True, "t_per_parameter": False, "keep_m": True, "keep_v": True,
              "weight_decay_mode": "coupled", "swap_betas": False}
"""Adam as it is: a mistake of :func:`_adam_variant` changes some of these."""


def _adam_variant(problem: Problem, settings: dict[str, Any], n_steps: int,
                  mistake: dict[str, Any] | None = None) -> np.ndarray:
    unknown = sorted(set(mistake or {}) - set(ADAM_FLAGS))
    if unknown:
        raise TypeError(f"not a flag of Adam's mistakes: {', '.join(unknown)}")
    flags = {**ADAM_FLAGS, **(mistake or {})}
    bias_correction, t_per_parameter = flags["bias_correction"], flags["t_per_parameter"]
    keep_m, keep_v, swap_betas = flags["keep_m"], flags["keep_v"], flags["swap_betas"]
    weight_decay_mode = flags["weight_decay_mode"]
    lr, eps, wd = settings["lr"], settings["eps"], settings["weight_decay"]
    b1, b2 = settings["betas"]
    if swap_betas:
        b1, b2 = b2, b1
    params = problem.fresh()
    m_star = [torch.zeros_like(p) for p in params]
    v_star = [torch.zeros_like(p) for p in params]
    t = 0
    steps = mistake_steps(n_steps)
    history = []
    for _ in range(steps[-1] + 1):  # a mistake is compared at these steps only
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
    return _trajectory(history, steps)


ADAM_MISTAKES: dict[str, dict[str, Any]] = {
    "no_bias_correction": {"bias_correction": False},
    "t_per_parameter": {"t_per_parameter": True},
    "both_buffers_rebound": {"keep_m": False, "keep_v": False},
    "m_rebound": {"keep_m": False},
    "v_rebound": {"keep_v": False},
    "swapped_betas": {"swap_betas": True},
    "no_bias_correction_t_per_parameter": {"bias_correction": False, "t_per_parameter": True},
    "wd_unscaled": {"weight_decay_mode": "unscaled"},
    "wd_decoupled": {"weight_decay_mode": "decoupled"},
    "wd_ignored": {"weight_decay_mode": "none"},
}
"""The known mistakes of ADAMOptimizer, as options of the replay (the check says what each means)."""


@expects("check_adam_optimizer")
def adam_optimizer_expected(seed, shapes, lr, betas, eps, weight_decay, n_steps) -> dict[str, Any]:
    """Trajectories with weight decay 0 and ``weight_decay``: torch.optim.Adam and each mistake.

    Every entry is a list of two trajectories (weight decay 0, then ``weight_decay``); a mistake
    about weight decay is None at weight decay 0.
    """
    problem = Problem(seed, shapes)
    runs = [{"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": wd}
            for wd in (0.0, weight_decay)]
    table: dict[str, list] = {"correct": [
        _torch_run(problem, lambda p, s=s: torch.optim.Adam(p, foreach=False, **s), n_steps)
        for s in runs]}
    for kind, options in ADAM_MISTAKES.items():
        table[kind] = [None if not s["weight_decay"] and kind.startswith("wd") else
                       _adam_variant(problem, s, n_steps, options) for s in runs]
    return table


def _momentum_variant(problem: Problem, settings: dict[str, Any], n_steps: int,
                      mistake: str) -> np.ndarray:
    lr, mu, wd = settings["lr"], settings["momentum"], settings["weight_decay"]
    params = problem.fresh()
    velocities = [torch.zeros_like(p) for p in params]
    steps = mistake_steps(n_steps)
    history = []
    for _ in range(steps[-1] + 1):  # a mistake is compared at these steps only
        problem.loss(params).backward()
        with torch.no_grad():
            for x, v in zip(params, velocities, strict=True):
                grad = x.grad
                g = grad if mistake in ("wd_after_momentum", "wd_ignored", "wd_unscaled") else \
                    grad + wd * x
                if mistake == "no_memory":
                    v.copy_(g)
                elif mistake == "dampened":
                    v.mul_(mu).add_((1 - mu) * g)
                else:
                    v.mul_(mu).add_(g)
                if mistake == "nesterov":
                    x -= lr * (g + mu * v)
                elif mistake == "wd_after_momentum":
                    x -= lr * (v + wd * x)
                elif mistake == "wd_unscaled":
                    x -= lr * v + wd * x
                elif mistake == "ascent":
                    x += lr * v
                else:
                    x -= lr * v
                x.grad = None
        history.append(_flat(params))
    return _trajectory(history, steps)


MOMENTUM_MISTAKES = ("no_memory", "dampened", "nesterov", "wd_after_momentum", "wd_ignored",
                     "wd_unscaled", "ascent")
"""The known mistakes of MomentumSGD (the check says what each means)."""


@expects("check_momentum_sgd")
def momentum_sgd_expected(seed, shapes, lr, momentum, weight_decay, n_steps) -> dict[str, Any]:
    """Trajectories with weight decay 0 and ``weight_decay``: torch.optim.SGD with momentum and
    each mistake (a mistake about weight decay is None at weight decay 0)."""
    problem = Problem(seed, shapes)
    runs = [{"lr": lr, "momentum": momentum, "weight_decay": wd} for wd in (0.0, weight_decay)]
    table: dict[str, list] = {"correct": [
        _torch_run(problem, lambda p, s=s: torch.optim.SGD(p, foreach=False, **s), n_steps)
        for s in runs]}
    for kind in MOMENTUM_MISTAKES:
        table[kind] = [None if not s["weight_decay"] and kind.startswith("wd") else
                       _momentum_variant(problem, s, n_steps, kind) for s in runs]
    return table


# ============================================================== data of the notebook's stand-ins

FALLBACK_DATA = Path(__file__).resolve().parent.parent / "dlnn_helpers" / "optimisation_data.py"
SERIES_SEED = 2021
"""The notebook's SEED: the jump series of Section 4 is ``make_jump_series(random_state=2021)``."""
SERIES_BETA = 0.9


def fallback_values() -> dict[str, list[float]]:
    """The values the T2 demonstrations show until the student's answer passes its self-check."""
    series = make_jump_series(random_state=SERIES_SEED)
    ema, ema_star = ema_history(series, SERIES_BETA)
    grads, _ = record_gradients(LossFunctionWithPlot(), torch.tensor(START),
                                lambda params: torch.optim.SGD(params, lr=0.1), 50)
    mean, rms = gradient_mean_rms(grads)
    return {name: [float(f"{v:.8g}") for v in values.tolist()] for name, values in (
        ("SECTION3_MEAN", mean), ("SECTION3_RMS", rms), ("JUMP_SERIES_EMA", ema),
        ("JUMP_SERIES_EMA_STAR", ema_star))}


def fallback_source() -> str:
    """The text of ``dlnn_helpers/optimisation_data.py``."""
    lines = [
        '"""Values precomputed by the course for the demonstrations of tutorial 2 (generated file).',
        "",
        "Written by :func:`dlnn_reference.optimisation.write_fallback_data` (instructor side); do not",
        "edit.  The notebook shows them until the student's own answer passes its self-check.",
        '"""',
        "",
        f"SERIES_SEED = {SERIES_SEED}",
        f"SERIES_BETA = {SERIES_BETA}",
    ]
    for name, values in fallback_values().items():
        lines.append(f"{name} = (")
        for start in range(0, len(values), 8):
            lines.append("    " + " ".join(f"{v!r}," for v in values[start:start + 8]))
        lines.append(")")
    return "\n".join(lines) + "\n"


def write_fallback_data(path: Path = FALLBACK_DATA) -> Path:
    """Write :func:`fallback_source` to ``path``; return it."""
    path.write_text(fallback_source(), encoding="utf-8")
    return path
