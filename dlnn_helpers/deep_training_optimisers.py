"""Optimisers compared from the same start (tutorial 3's demonstration of the student's momentum).

* :func:`same_start_runs` — one full-batch training run per optimiser, every run from the same
  initial weights, recording the loss at every step and the final weights;
* :func:`plot_same_start_runs` — their loss curves in one figure.

The network and the optimisers are the caller's (the notebook builds the network and passes the
student's optimiser class or ``torch.optim``'s): nothing here is an exercise's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .utils import torch_threads


@dataclass
class SameStartRun:
    """One run of :func:`same_start_runs`."""

    losses: list[float]
    """The loss before each step (length ``n_steps``)."""
    weights: torch.Tensor
    """Every parameter after the last step, flattened and concatenated: float32, shape (n_weights,)."""


def same_start_runs(
    build: Callable[[], nn.Module],
    makers: dict[str, Callable[[Iterable[torch.Tensor]], object]],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_steps: int = 100,
    seed: int = 0,
) -> dict[str, SameStartRun]:
    """Train a fresh ``build()`` once per optimiser, full-batch, from the same initial weights.

    Parameters
    ----------
    build : callable
        Returns the model, a module whose call ``model(x, y)`` is the scalar loss (e.g. a
        ``Supervise``); called after ``torch.manual_seed(seed)`` for every run.
    makers : dict of str to callable
        Label -> function building the optimiser from ``model.parameters()``; the optimiser has
        ``step()`` and ``zero_grad()``.
    x : torch.Tensor of shape (n, n_in), float32
        Inputs.
    y : torch.Tensor of shape (n,), float32
        Targets.
    n_steps : int
        Steps per run: loss, ``backward()``, ``step()``, ``zero_grad()``.
    seed : int
        Seed of the initial weights (the global generator is reseeded with it before every run).

    Returns
    -------
    dict of str to SameStartRun
        One run per label, in the order of ``makers``.
    """
    runs = {}
    with torch_threads(1):
        for label, make in makers.items():
            torch.manual_seed(seed)
            model = build()
            optimizer = make(model.parameters())
            losses = []
            for _ in range(n_steps):
                loss = model(x, y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                losses.append(float(loss.detach()))
            weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            runs[label] = SameStartRun(losses, weights)
    return runs


def plot_same_start_runs(runs: dict[str, SameStartRun], title: str = "", *, show: bool = True):
    """Draw the loss curves of :func:`same_start_runs` (the last one dashed, so that it stays
    visible where it lies on an earlier one).

    Parameters
    ----------
    runs : dict of str to SameStartRun
    title : str
    show : bool
        Show the figure now (and return None), or return it without showing.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, (label, run) in enumerate(runs.items()):
        last = i == len(runs) - 1 and i > 0
        ax.plot(range(1, len(run.losses) + 1), run.losses, label=label,
                linestyle="--" if last else "-", linewidth=2.0 if last else 1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (BCE)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig
