"""An ill-conditioned 2-D loss that remembers where it was evaluated, and the figures of tutorial 2.

:class:`LossFunctionWithPlot` is the loss every optimiser of tutorial 2 is tried on:

.. math:: \\mathcal{L}(x) = \\lVert B x \\rVert_2, \\qquad x \\in \\mathbb{R}^2,

a cone whose elliptical level sets are long along (roughly) ``x[1]`` and narrow along ``x[0]``:
the loss rises more than six times faster along ``x[0]`` than along ``x[1]``, so no single
learning rate suits both directions.  The minimum is 0, at the origin; the gradient keeps its size
all the way down (it is a unit vector mapped by :math:`B^\\top`), so a fixed step cannot settle
exactly at the bottom, which makes the trouble of plain gradient descent easy to see.

Figures follow the convention of the package: with ``show=True`` (default) the figure is shown and
``None`` returned; with ``show=False`` it is returned, still open.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

DEFAULT_BOWL = ((2.3, -0.3), (-0.5, 0.2))
"""The matrix B of the default loss (steep along x[0], shallow along x[1])."""

START = (-1.5, 1.2)
"""The starting point used throughout tutorial 2."""


def _finish(fig: Figure, show: bool) -> Figure | None:
    if show:
        plt.show()
        return None
    return fig


class LossFunctionWithPlot:
    """The loss :math:`\\lVert B x \\rVert` that records every point it is evaluated at.

    Parameters
    ----------
    bowl : array-like of shape (2, 2), optional
        The matrix B; :data:`DEFAULT_BOWL` by default.  Any invertible B gives a single minimum at
        the origin.

    Attributes
    ----------
    bowl : torch.Tensor of shape (2, 2)
    track : list of torch.Tensor of shape (2,)
        Every evaluated point (detached copies), in order.
    losses : list of float
        The loss at each of those points.
    """

    def __init__(self, bowl=None) -> None:
        matrix = DEFAULT_BOWL if bowl is None else bowl
        self.bowl = torch.as_tensor(matrix, dtype=torch.float32).clone()
        if self.bowl.shape != (2, 2):
            raise ValueError(f"bowl must be a 2x2 matrix, got shape {tuple(self.bowl.shape)}")
        self.track: list[torch.Tensor] = []
        self.losses: list[float] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return ‖B x‖ (differentiable in ``x`` of shape (2,)) and record the point."""
        loss = torch.linalg.vector_norm(self.bowl.to(x.dtype) @ x)
        self.track.append(x.detach().clone())
        self.losses.append(float(loss.detach()))
        return loss

    def reset(self) -> None:
        """Forget the recorded points."""
        self.track.clear()
        self.losses.clear()

    def path(self) -> np.ndarray:
        """The recorded points as an array of shape (n_evaluations, 2)."""
        if not self.track:
            return np.zeros((0, 2))
        return torch.stack(self.track).double().numpy()

    def loss_on_grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """The loss on the grid ``xs × ys``, shape (len(ys), len(xs)) (rows follow ``ys``)."""
        grid_x, grid_y = np.meshgrid(xs, ys)
        points = np.stack([grid_x.ravel(), grid_y.ravel()])
        values = np.linalg.norm(self.bowl.double().numpy() @ points, axis=0)
        return values.reshape(grid_x.shape)

    def plot_history(
        self,
        grads: torch.Tensor | None = None,
        mean_grads: torch.Tensor | None = None,
        rms_grads: torch.Tensor | None = None,
        *,
        title: str | None = None,
        show: bool = True,
    ) -> Figure | None:
        """Draw the loss surface with the recorded path, and the loss at every evaluation.

        Parameters
        ----------
        grads : torch.Tensor of shape (n_steps, 2), optional
            Raw gradients to draw below, one panel per coordinate.
        mean_grads, rms_grads : torch.Tensor of shape (2,), optional
            Per-coordinate mean and RMS of ``grads``, drawn as horizontal lines (the RMS at ±RMS).
        title : str, optional
            Title of the figure.
        show : bool
            Show the figure (and return None) or return it.
        """
        path = self.path()
        rows = 1 if grads is None else 2
        fig, axes = plt.subplots(rows, 2, figsize=(12, 4.6 * rows), layout="constrained", squeeze=False)
        self._draw_surface(axes[0, 0], path)
        self._draw_losses(axes[0, 1])
        if grads is not None:
            values = np.asarray(torch.as_tensor(grads).detach().double().cpu().numpy())
            if values.ndim != 2 or values.shape[1] != 2:
                raise ValueError(f"grads must have shape (n_steps, 2), got {values.shape}")
            for coord, ax in enumerate(axes[1]):
                _draw_gradient_panel(ax, values[:, coord], coord, mean_grads, rms_grads)
        if title:
            fig.suptitle(title)
        return _finish(fig, show)

    def _draw_surface(self, ax, path: np.ndarray) -> None:
        corners = np.vstack([path, [[0.0, 0.0]], [[-2.0, -1.5]], [[2.0, 1.5]]])
        low, high = corners.min(axis=0), corners.max(axis=0)
        margin = 0.1 * (high - low)
        xs = np.linspace(low[0] - margin[0], high[0] + margin[0], 240)
        ys = np.linspace(low[1] - margin[1], high[1] + margin[1], 240)
        surface = self.loss_on_grid(xs, ys)
        filled = ax.contourf(xs, ys, surface, levels=20, cmap="viridis", alpha=0.85)
        ax.contour(xs, ys, surface, levels=20, colors="white", linewidths=0.4, alpha=0.6)
        ax.figure.colorbar(filled, ax=ax, label="loss")
        ax.plot(0.0, 0.0, "P", color="black", markersize=9, label="minimum")
        if len(path):
            ax.plot(path[:, 0], path[:, 1], "-o", color="#ff7f0e", markersize=3, linewidth=1.2,
                    label="path")
            ax.plot(*path[0], "s", color="white", markeredgecolor="black", markersize=8,
                    label="start")
            ax.plot(*path[-1], "*", color="red", markeredgecolor="black", markersize=13,
                    label="last point")
        ax.set_xlabel("x[0]")
        ax.set_ylabel("x[1]")
        ax.set_title("Loss surface and optimisation path")
        ax.legend(loc="lower right", fontsize=8)

    def _draw_losses(self, ax) -> None:
        ax.plot(np.arange(len(self.losses)), self.losses, "-o", markersize=3)
        ax.set_xlabel("evaluation")
        ax.set_ylabel("loss")
        ax.set_title("Loss at every step")
        if self.losses:
            ax.set_title(f"Loss at every step (last: {self.losses[-1]:.3f})")
        ax.grid(alpha=0.3)


def _draw_gradient_panel(ax, values: np.ndarray, coord: int, mean_grads, rms_grads) -> None:
    steps = np.arange(len(values))
    ax.plot(steps, values, "-o", markersize=3, color="tab:blue", label=f"∂L/∂x[{coord}]")
    ax.axhline(0.0, color="black", linewidth=0.6)
    if mean_grads is not None:
        mean = float(torch.as_tensor(mean_grads).detach().reshape(-1)[coord])
        ax.axhline(mean, color="tab:green", linewidth=2, label=f"mean = {mean:.3f}")
    if rms_grads is not None:
        rms = float(torch.as_tensor(rms_grads).detach().reshape(-1)[coord])
        ax.axhline(rms, color="tab:red", linestyle="--", linewidth=2, label=f"±RMS = ±{rms:.3f}")
        ax.axhline(-rms, color="tab:red", linestyle="--", linewidth=2)
    ax.set_xlabel("step")
    ax.set_ylabel("gradient")
    ax.set_title(f"Raw gradient along x[{coord}]")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)


def plot_ema(
    series: torch.Tensor,
    ema: torch.Tensor,
    ema_star: torch.Tensor,
    *,
    beta: float | None = None,
    show: bool = True,
) -> Figure | None:
    """Compare the bias-corrected EMA, the raw EMA* and the ordinary mean of a series.

    Parameters
    ----------
    series : torch.Tensor of shape (T,)
        The observations.
    ema, ema_star : torch.Tensor of shape (T,)
        EMA and EMA* after each observation.
    beta : float, optional
        The smoothing factor, shown in the title.
    show : bool
        Show the figure (and return None) or return it.
    """
    values = torch.as_tensor(series).detach().double().numpy()
    steps = np.arange(1, len(values) + 1)
    fig, (ax, zoom) = plt.subplots(
        1, 2, figsize=(13, 4.4), layout="constrained", gridspec_kw={"width_ratios": [2, 1]}
    )
    n_zoom = min(25, len(values))
    for axis, stop in ((ax, len(values)), (zoom, n_zoom)):
        axis.scatter(steps[:stop], values[:stop], s=6, color="tab:red", label="observed data")
        axis.axhline(values.mean(), color="magenta", label="ordinary mean")
        axis.plot(steps[:stop], torch.as_tensor(ema).detach().numpy()[:stop], color="tab:blue",
                  linewidth=2.5, zorder=3, label="EMA (bias-corrected)")
        axis.plot(steps[:stop], torch.as_tensor(ema_star).detach().numpy()[:stop],
                  color="tab:orange", linewidth=1.2, linestyle="--", zorder=4,
                  label="EMA* (no correction)")
        axis.set_xlabel("t")
        axis.grid(alpha=0.3)
    suffix = f" (β = {beta})" if beta is not None else ""
    ax.set_title("Exponential moving average of a series that jumps" + suffix)
    ax.set_ylabel("value")
    zoom.set_title(f"The first {n_zoom} steps: EMA* starts near 0")
    ax.legend(loc="center right", fontsize=8)
    return _finish(fig, show)
