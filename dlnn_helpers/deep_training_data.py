"""The "tiny" and "hard" binary classification tasks of tutorials 3 and 4.

Every sample is a 6×6 grid of binary pixels (flattened to 36 inputs, row by row) drawn uniformly at
random, with a label 0 or 1 that a fixed rule computes from a few of its pixels.  Which pixels, and
how, is for tutorial 3 to find out: this package ships the grids and their labels
(``data/classification_grids.npz``), generated once by the instructor's reference from a seed, and
not the rules.

Both sets are balanced (as many 0s as 1s, in the training and in the validation part), every grid is
distinct (the validation grids never occur in the training part), and the hard task's rule is
related to the tiny one's (tutorial 3 uses it for transfer learning).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

GRID = 6
"""Side of the square grid: every sample has ``GRID * GRID = 36`` binary inputs."""

TINY_SEED = 7150
"""The seed the shipped tiny set was generated from."""
HARD_SEED = 7151
"""The seed the shipped hard set was generated from."""

GRIDS_PATH = Path(__file__).parent / "data" / "classification_grids.npz"
"""The shipped grids and labels (written by the instructor's
``dlnn_reference.deep_training_rules.write_grids``)."""


class ClassificationData(NamedTuple):
    """A binary classification set, split into training and validation parts.

    Attributes
    ----------
    train_data : torch.Tensor of shape (n_train, 36), float32 with values 0.0 or 1.0
    train_labels : torch.Tensor of shape (n_train,), float32 with values 0.0 or 1.0
    val_data : torch.Tensor of shape (n_val, 36)
    val_labels : torch.Tensor of shape (n_val,)
    """

    train_data: torch.Tensor
    train_labels: torch.Tensor
    val_data: torch.Tensor
    val_labels: torch.Tensor


@cache
def _arrays() -> dict[str, np.ndarray]:
    with np.load(GRIDS_PATH) as stored:
        return {name: stored[name] for name in stored.files}


def _load(task: str) -> ClassificationData:
    arrays = _arrays()
    parts = []
    for part in ("train", "val"):
        n = int(arrays[f"{task}_{part}_n"])
        grids = np.unpackbits(arrays[f"{task}_{part}_grids"], axis=1)[:, : GRID * GRID]
        labels = np.unpackbits(arrays[f"{task}_{part}_labels"])[:n]
        parts += [torch.tensor(grids, dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)]
    return ClassificationData(*parts)


def tiny_classification() -> ClassificationData:
    """The tiny task: 8,000 training and 1,000 validation grids with their labels.

    Returns
    -------
    ClassificationData
        New tensors on every call (changing them changes nothing shipped).
    """
    return _load("tiny")


def hard_classification() -> ClassificationData:
    """The hard task: 8,000 training and 1,000 validation grids, labelled by a harder rule related to
    the tiny one.

    Returns
    -------
    ClassificationData
        New tensors on every call.
    """
    return _load("hard")


def plot_grids(
    data: torch.Tensor,
    labels: torch.Tensor,
    n: int = 8,
    title: str | None = None,
    *,
    show: bool = True,
):
    """Draw the first ``n`` grids with their labels.

    Parameters
    ----------
    data : torch.Tensor of shape (n_samples, 36)
    labels : torch.Tensor of shape (n_samples,)
    n : int
        How many grids to draw.
    title : str, optional
    show : bool
        Show the figure now (and return None), or return it without showing.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import matplotlib.pyplot as plt

    n = min(n, len(data))
    fig, axes = plt.subplots(1, n, figsize=(1.4 * n, 1.9))
    for ax, grid, label in zip(np.atleast_1d(axes), data[:n], labels[:n], strict=True):
        ax.imshow(grid.reshape(GRID, GRID).numpy(), cmap="Greys", vmin=0, vmax=1)
        ax.set_title(f"label {int(label)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig
