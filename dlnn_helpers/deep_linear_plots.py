"""Figures of tutorial 1 (deep linear networks).

Every function draws one new figure from its arguments only (no globals).  With ``show=True`` (the
default, for notebooks) the figure is shown and ``None`` is returned; with ``show=False`` the figure
is returned, still open, for tests or further editing.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .deep_linear_data import ITEM_NAMES, READABLE_FEATURE_NAMES, readable_features

_YES_NO = ListedColormap(["#3ec1d3", "#ff3d7f"])  # -1 = no, +1 = yes


def _finish(fig: Figure, show: bool) -> Figure | None:
    if show:
        plt.show()
        return None
    return fig


def _mode_colours(n: int) -> np.ndarray:
    """``n`` colours from the 'winter' colour map, one per singular value (largest first)."""
    return mpl.colormaps["winter"].resampled(max(n, 1))(np.arange(n))


def _normalised(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    peak = np.abs(values).max()
    return values / peak if peak > 0 else values


def plot_x_y_hier_data(
    inputs: np.ndarray, targets: np.ndarray, *, show: bool = True
) -> Figure | None:
    """Show the inputs (one-hot labels) beside the targets (features) of every item.

    Parameters
    ----------
    inputs : np.ndarray of shape (n_items, in_dim)
    targets : np.ndarray of shape (n_items, n_features)
    show : bool
        Show the figure (and return None) or return it.
    """
    fig, (ax0, ax1) = plt.subplots(
        1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2]}, layout="constrained"
    )
    ax0.imshow(np.asarray(inputs), cmap="cool")
    ax1.imshow(np.asarray(targets), cmap="cool", aspect="auto", interpolation="nearest")
    ax0.set_title("Labels (inputs) of all items")
    ax1.set_title("Features (targets) of all items")
    ax0.set_axis_off()
    ax1.set_axis_off()
    return _finish(fig, show)


def plot_tree_data(
    item_names: Sequence[str] | None = None,
    feature_array: np.ndarray | None = None,
    new_feature: str | None = None,
    *,
    n_shown: int = 10,
    show: bool = True,
) -> Figure | None:
    """Show the one-hot labels beside (a slice of) the features, with readable names.

    Parameters
    ----------
    item_names : sequence of str, optional
        Names of the items (rows); :data:`ITEM_NAMES` by default.
    feature_array : np.ndarray of shape (n_items, n_features), optional
        ±1 features.  When omitted, the ten hand-made readable features are shown.
    new_feature : str, optional
        Name of the last feature of ``feature_array`` (e.g. one added with ``add_feature``); it is
        labelled on the x axis.
    n_shown : int
        How many of the last features of ``feature_array`` to show.
    show : bool
        Show the figure (and return None) or return it.
    """
    names = list(ITEM_NAMES if item_names is None else item_names)
    if feature_array is None:
        features = readable_features()
        feature_names: list[str] = list(READABLE_FEATURE_NAMES)
    else:
        features = np.asarray(feature_array)[:, -n_shown:]
        feature_names = [""] * features.shape[1]
        if new_feature is not None:
            feature_names[-1] = new_feature
    n_items = len(names)
    if features.shape[0] != n_items:
        raise ValueError(f"{features.shape[0]} rows of features but {n_items} item names")

    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(11, 5.5), gridspec_kw={"width_ratios": [1, 1.35]}, layout="constrained"
    )
    ax1.imshow(np.eye(n_items), cmap=_YES_NO)
    image = ax2.imshow(features, cmap=_YES_NO, vmin=-1.0, vmax=1.0)
    colorbar = fig.colorbar(image, ax=ax2, ticks=[-0.5, 0.5], fraction=0.046, pad=0.04)
    colorbar.ax.set_yticklabels(["no", "yes"])
    ax1.set_title("Labels (one-hot inputs)")
    ax1.set_yticks(np.arange(n_items), labels=names)
    ax1.set_xticks(np.arange(n_items), labels=names, rotation="vertical")
    title = "Readable features" if feature_array is None else f"Last {features.shape[1]} features"
    ax2.set_title(title)
    ax2.set_yticks(np.arange(n_items), labels=names)
    ax2.set_xticks(np.arange(features.shape[1]), labels=feature_names, rotation="vertical")
    return _finish(fig, show)


def plot_loss(
    losses: np.ndarray,
    title: str = "Training loss (mean squared error)",
    color: str = "r",
    *,
    show: bool = True,
) -> Figure | None:
    """Plot a loss curve.

    Parameters
    ----------
    losses : np.ndarray of shape (n_epochs,)
    title : str
    color : str
    show : bool
        Show the figure (and return None) or return it.
    """
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    ax.plot(np.asarray(losses), color=color)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    return _finish(fig, show)


def _draw_modes(ax, modes: np.ndarray) -> None:
    modes = _normalised(modes)
    for i, colour in enumerate(_mode_colours(modes.shape[1])):
        ax.plot(modes[:, i], color=colour)


def plot_loss_sv(losses: np.ndarray, modes: np.ndarray, *, show: bool = True) -> Figure | None:
    """Loss (top) and normalised singular values of W_tot (bottom) against epochs.

    Parameters
    ----------
    losses : np.ndarray of shape (n_epochs,)
    modes : np.ndarray of shape (n_epochs, k)
    show : bool
        Show the figure (and return None) or return it.
    """
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 7), layout="constrained")
    ax1.set_title("Training loss (mean squared error)")
    ax1.plot(np.asarray(losses), color="r")
    ax2.set_title("Singular values of $W_{tot}$ (modes), normalised")
    _draw_modes(ax2, modes)
    ax2.set_xlabel("Epoch")
    return _finish(fig, show)


def _twin_axes(
    fig_title: str, left: np.ndarray, left_label: str, modes: np.ndarray, left_width: float = 1.5
):
    fig, ax1 = plt.subplots(figsize=(9, 4.5), layout="constrained")
    ax1.set_title(fig_title)
    ax1.set_xlabel("Epoch")
    ax1.set_ylabel(left_label, color="r")
    ax1.tick_params(axis="y", labelcolor="r")
    ax1.plot(np.asarray(left), color="r", linewidth=left_width)
    ax2 = ax1.twinx()
    ax2.set_ylabel("Singular values (modes), normalised", color="b")
    ax2.tick_params(axis="y", labelcolor="b")
    _draw_modes(ax2, modes)
    return fig, ax1, ax2


def plot_loss_sv_twin(
    losses: np.ndarray, modes: np.ndarray, *, show: bool = True
) -> Figure | None:
    """Loss and normalised singular values on twin y axes, to see which mode each drop learns.

    Parameters
    ----------
    losses : np.ndarray of shape (n_epochs,)
    modes : np.ndarray of shape (n_epochs, k)
    show : bool
        Show the figure (and return None) or return it.
    """
    fig, _, _ = _twin_axes("Learning dynamics", losses, "Mean squared error", modes)
    return _finish(fig, show)


def plot_ills_sv_twin(
    illusions: np.ndarray, modes: np.ndarray, ill_label: str, *, show: bool = True
) -> Figure | None:
    """One prediction of the network against epochs, beside the singular values.

    Parameters
    ----------
    illusions : np.ndarray of shape (n_epochs,)
        Recorded prediction (e.g. "Shark has bones").
    modes : np.ndarray of shape (n_epochs, k)
    ill_label : str
        Axis label for the prediction.
    show : bool
        Show the figure (and return None) or return it.
    """
    fig, ax1, _ = _twin_axes(
        "Network training and illusory correlations", illusions, ill_label, modes, left_width=3
    )
    ax1.axhline(0.0, color="0.6", linestyle=":", linewidth=1)
    ax1.set_ylim(-1.05, 1.05)
    return _finish(fig, show)


def plot_loss_sv_rsm(
    losses: np.ndarray,
    modes: np.ndarray,
    rsms: np.ndarray,
    i_ep: int,
    item_names: Sequence[str] = ITEM_NAMES,
    *,
    show: bool = True,
) -> Figure | None:
    """Learning curves with epoch ``i_ep`` highlighted, beside the RSM of the hidden layer then.

    Parameters
    ----------
    losses : np.ndarray of shape (n_epochs,)
    modes : np.ndarray of shape (n_epochs, k)
    rsms : np.ndarray of shape (n_epochs, n_items, n_items)
    i_ep : int
        Epoch to show, 0 <= i_ep < n_epochs.
    item_names : sequence of str
        Names of the items (RSM rows and columns).
    show : bool
        Show the figure (and return None) or return it.
    """
    losses = np.asarray(losses)
    n_epochs = losses.shape[0]
    if not 0 <= i_ep < n_epochs:
        raise ValueError(f"i_ep must lie in [0, {n_epochs}), got {i_ep}")
    rsm = np.asarray(rsms)[i_ep]
    rsm = rsm / np.abs(np.asarray(rsms)).max() if np.abs(rsms).max() > 0 else rsm
    names = list(item_names)

    fig, (ax1, ax0) = plt.subplots(
        1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [5, 3]}, layout="constrained"
    )
    epochs = np.arange(n_epochs)
    ax1.set_title("Learning dynamics")
    ax1.set_xlabel("Epoch")
    ax1.set_ylabel("Mean squared error", color="r")
    ax1.tick_params(axis="y", labelcolor="r", direction="in")
    ax1.plot(epochs, losses, color="r")
    ax1.axvspan(i_ep - 2, i_ep + 2, alpha=0.2, color="m")
    ax2 = ax1.twinx()
    ax2.set_ylabel("Singular values, normalised", color="b")
    ax2.tick_params(axis="y", labelcolor="b", direction="in")
    _draw_modes(ax2, modes)
    ax1.set_xlim(-1, n_epochs + 1)

    image = ax0.imshow(rsm, cmap="Purples", vmin=0.0, vmax=1.0)
    colorbar = fig.colorbar(image, ax=ax0, ticks=[], fraction=0.046, pad=0.04)
    colorbar.ax.set_ylabel("Similarity")
    ax0.set_title(f"RSM at epoch {i_ep}")
    ax0.set_yticks(np.arange(len(names)), labels=names)
    ax0.set_xticks(np.arange(len(names)), labels=names, rotation="vertical")
    return _finish(fig, show)
