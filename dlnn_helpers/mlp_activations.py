"""Tutorial 5: common activation functions, their derivatives and a figure of both.

Every derivative here is written out by hand (no autograd), so that the figure shows the formulas
the text discusses, except ReLU's: writing it is part of an exercise of the tutorial
(``ex_relu_backward``), so the figure takes it from autograd.  The tests compare each one with
autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch

LEAKY_SLOPE = 0.1
"""Slope of LeakyReLU for negative inputs (PyTorch's default is 0.01; 0.1 is easier to see)."""


def _phi(x: torch.Tensor) -> torch.Tensor:
    """Standard normal density."""
    return torch.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)


def _relu_derivative(x: torch.Tensor) -> torch.Tensor:
    """ReLU's derivative by autograd (0 at 0, as PyTorch defines it); the exercise writes it by hand."""
    point = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        torch.relu(point).sum().backward()
    return point.grad


def _cdf(x: torch.Tensor) -> torch.Tensor:
    """Standard normal cumulative distribution function."""
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class Activation:
    """An activation function with its derivative, both elementwise.

    Attributes
    ----------
    name : str
    formula : str
        LaTeX of the function, for figure titles.
    function, derivative : callable
        ``Tensor -> Tensor`` of the same shape.
    """

    name: str
    formula: str
    function: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor], torch.Tensor]


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(
        "sigmoid", r"$\sigma(x) = 1 / (1 + e^{-x})$",
        torch.sigmoid, lambda x: torch.sigmoid(x) * (1.0 - torch.sigmoid(x)),
    ),
    "tanh": Activation(
        "tanh", r"$\tanh(x)$", torch.tanh, lambda x: 1.0 - torch.tanh(x) ** 2,
    ),
    "relu": Activation(
        "ReLU", r"$\max(0, x)$", torch.relu, _relu_derivative,
    ),
    "leaky_relu": Activation(
        "LeakyReLU", rf"$\max({LEAKY_SLOPE:g}x, x)$",
        lambda x: torch.where(x > 0, x, LEAKY_SLOPE * x),
        lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, LEAKY_SLOPE)),
    ),
    "gelu": Activation(
        "GELU", r"$x\,\Phi(x)$", lambda x: x * _cdf(x), lambda x: _cdf(x) + x * _phi(x),
    ),
    "silu": Activation(
        "SiLU (swish)", r"$x\,\sigma(x)$",
        lambda x: x * torch.sigmoid(x),
        lambda x: torch.sigmoid(x) * (1.0 + x * (1.0 - torch.sigmoid(x))),
    ),
}
"""The activations of the tutorial, by short name."""


def plot_activations(
    names: tuple[str, ...] = tuple(ACTIVATIONS), x_range: tuple[float, float] = (-4.0, 4.0)
) -> None:
    """One panel per activation: the function (solid) and its derivative (dashed).

    Parameters
    ----------
    names : tuple of str
        Keys of :data:`ACTIVATIONS`.
    x_range : (float, float)
    """
    if isinstance(names, str) or not all(isinstance(name, str) and name in ACTIVATIONS for name in names):
        raise ValueError(f"plot_activations: names must be a tuple of keys of ACTIVATIONS "
                         f"{tuple(ACTIVATIONS)}")
    x = torch.linspace(*x_range, 801)
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.2 * rows), sharex=True)
    for ax, name in zip(axes.ravel(), names, strict=False):
        act = ACTIVATIONS[name]
        ax.axhline(0, c="lightgrey", lw=0.8)
        ax.axvline(0, c="lightgrey", lw=0.8)
        ax.plot(x, act.function(x), lw=2, label="f(x)")
        ax.plot(x, act.derivative(x), "--", lw=2, label="f'(x)")
        ax.set_title(f"{act.name}: {act.formula}", fontsize=10)
        ax.set_ylim(-1.5, 4.0 if name not in ("sigmoid", "tanh") else 1.5)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(loc="upper left")
    fig.tight_layout()
    plt.show()
