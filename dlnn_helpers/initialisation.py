"""Weight initialisation (tutorial 4): activation statistics through depth, figures.

A weight matrix here has shape ``(n_in, n_out)`` and a layer computes ``act(x @ W)`` for a batch
``x`` of shape ``(batch, n_in)``, so ``n_in`` (the fan-in) is the number of rows.  The initialisers
themselves (zero, random, LeCun, He) and the ``Supervise`` classes that re-initialise a network
are the tutorial's exercises: this package does not hold them.  :func:`layer_activations` takes any
initialiser ``init(n_in, n_out)``, the student's or a library routine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

InitFunction = Callable[[int, int], torch.Tensor]


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def layer_activations(
    init: InitFunction,
    activation: str = "tanh",
    *,
    n_layers: int = 7,
    width: int = 2048,
    n_samples: int = 16,
    seed: int = 0,
) -> list[torch.Tensor]:
    """Push random inputs through a deep network initialised by ``init``; return every layer.

    The input (layer 1) is a batch of ``n_samples`` standard normal vectors of length ``width``;
    each of the next ``n_layers - 1`` layers computes ``act(h @ W)`` with a fresh ``W = init(width,
    width)`` (no biases).

    Parameters
    ----------
    init : callable
        ``init(n_in, n_out)`` returns a weight tensor of shape (n_in, n_out).
    activation : {"tanh", "relu"}
    n_layers : int
        Number of layers shown, the input included.
    width : int
        Units per layer.
    n_samples : int
        Batch size.
    seed : int
        Seed of the inputs and of the weights (the caller's global generator state is restored).

    Returns
    -------
    list of torch.Tensor of shape (n_samples, width)
    """
    act = ACTIVATIONS[activation]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        h = torch.randn(n_samples, width)
        layers = [h]
        for _ in range(n_layers - 1):
            weight = init(width, width)
            h = act(h @ weight.to(h.dtype))
            layers.append(h)
    return layers


MAX_PANELS = 50
"""The most layers :func:`plot_activation_histograms` draws side by side."""


def plot_activation_histograms(
    layers: list[torch.Tensor], title: str = "", bins: int = 100, *, show: bool = True
):
    """Histogram of every layer's activations, one small panel per layer, side by side.

    Parameters
    ----------
    layers : list of torch.Tensor
        Activations of each layer (as returned by :func:`layer_activations`).
    title : str
    bins : int
    show : bool
        Show the figure now (and return None), or return it without showing.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import matplotlib.pyplot as plt

    if isinstance(layers, torch.Tensor) or not 1 <= len(layers) <= MAX_PANELS:
        what = "one tensor" if isinstance(layers, torch.Tensor) else f"{len(layers)} layers"
        raise ValueError(f"plot_activation_histograms draws one panel per layer: give a list of 1 to "
                         f"{MAX_PANELS} tensors (as layer_activations returns), not {what}")
    n = len(layers)
    fig, axes = plt.subplots(1, n, figsize=(2.1 * n, 2.4), sharey=False)
    for i, (ax, h) in enumerate(zip(np.atleast_1d(axes), layers, strict=True)):
        values = h.detach().reshape(-1).double().numpy()
        spread = float(values.std())
        if spread == 0.0:
            ax.axvline(float(values[0]), color="tab:blue", linewidth=3)
            ax.set_xlim(-1.1, 1.1)
        else:
            ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_title(f"layer {i + 1}\nmean {values.mean():.2g}, std {spread:.2g}", fontsize=8)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig


def activation_stds(layers: list[torch.Tensor]) -> np.ndarray:
    """Standard deviation of each layer's activations, shape (n_layers,)."""
    return np.array([float(h.double().std()) for h in layers])


def saturated_fraction(layers: list[torch.Tensor], threshold: float = 0.99) -> np.ndarray:
    """Fraction of each layer's activations with \\|value\\| above ``threshold``, shape (n_layers,)."""
    return np.array([float((h.abs() > threshold).double().mean()) for h in layers])


def pytorch_default_bound(fan_in: int) -> float:
    """Bound b of PyTorch's default ``nn.Linear`` weights U(-b, b): ``kaiming_uniform_`` with
    a = √5 gives b = gain · √(3 / fan_in) with gain = √(2 / (1 + a²)), i.e. b = 1 / √fan_in."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    return gain * math.sqrt(3.0 / fan_in)
