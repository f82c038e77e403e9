"""Weight initialisation (tutorial 4): initialisers, activation statistics through depth, figures.

A weight matrix here has shape ``(n_in, n_out)`` and a layer computes ``act(x @ W)`` for a batch
``x`` of shape ``(batch, n_in)``, so ``n_in`` (the fan-in) is the number of rows.

The reference initialisers:

=====================  ===============================  ===========================================
function               distribution                     for
=====================  ===============================  ===========================================
:func:`zero_weights`   all 0                            (shows why symmetry must be broken)
:func:`random_weights` N(0, 1) · scale                  a fixed small (0.01) or larger (0.05) scale
:func:`xavier_weights` N(0, 1 / n_in)                   tanh (Glorot & Bengio, 2010; LeCun, 1998)
:func:`he_weights`     N(0, 2 / n_in)                   ReLU (He et al., 2015)
=====================  ===============================  ===========================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .deep_training import Supervise

InitFunction = Callable[[int, int], torch.Tensor]


def zero_weights(n_in: int, n_out: int) -> torch.Tensor:
    """All-zero weights of shape (n_in, n_out)."""
    return torch.zeros(n_in, n_out)


def random_weights(n_in: int, n_out: int, scale: float = 0.01) -> torch.Tensor:
    """Weights of shape (n_in, n_out) drawn from N(0, 1) and multiplied by ``scale``.

    Draws from torch's global generator (seed it with ``torch.manual_seed``).
    """
    return torch.randn(n_in, n_out) * scale


def xavier_weights(n_in: int, n_out: int) -> torch.Tensor:
    """Weights of shape (n_in, n_out) from N(0, 1 / n_in): the variance-preserving choice for tanh."""
    return torch.randn(n_in, n_out) / math.sqrt(n_in)


def he_weights(n_in: int, n_out: int) -> torch.Tensor:
    """Weights of shape (n_in, n_out) from N(0, 2 / n_in): Kaiming He's choice for ReLU."""
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in)


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


# ------------------------------------------------------------------------------------------------
# Supervised networks with a chosen initialisation (graded in the tutorial)
# ------------------------------------------------------------------------------------------------


class SuperviseRandomWeights(Supervise):
    """:class:`Supervise` that re-draws every Linear weight of ``net`` from N(0, 0.01²).

    (The tutorial calls it ``Supervise_random_weights``; biases keep PyTorch's default.)
    """

    def __init__(self, criterion: nn.Module, net: nn.Module) -> None:
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)


class SuperviseKaimingWeights(Supervise):
    """:class:`Supervise` that re-draws every Linear weight of ``net`` with ``kaiming_normal_``.

    ``kaiming_normal_`` with its defaults draws from N(0, 2 / fan_in), fan_in = in_features.
    (The tutorial calls it ``Supervise_Kaiming_weights``.)
    """

    def __init__(self, criterion: nn.Module, net: nn.Module) -> None:
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight)


def pytorch_default_bound(fan_in: int) -> float:
    """Bound b of PyTorch's default ``nn.Linear`` weights U(-b, b): ``kaiming_uniform_`` with
    a = √5 gives b = gain · √(3 / fan_in) with gain = √(2 / (1 + a²)), i.e. b = 1 / √fan_in."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    return gain * math.sqrt(3.0 / fan_in)
