"""The "tiny" and "hard" binary classification tasks of tutorials 3 and 4, generated from a seed.

Every sample is a 6×6 grid of binary pixels (flattened to 36 inputs, row by row) drawn uniformly at
random; its label comes from a fixed rule that looks only at a few pixels.  Number the rows and
columns 0 … 5 from the top left.

Tiny rule (:func:`tiny_rule`)
    Count the ones in the **2×2 block in the centre**, pixels (2, 2), (2, 3), (3, 2) and (3, 3);
    add one more if the **top-left, top-right and bottom-right corners**, (0, 0), (0, 5) and
    (5, 5), are **all three** on.  The label is 1 when the total is **odd**, 0 when it is even::

        A . . . . A
        . . . . . .        X = centre pixels, counted one by one
        . . X X . .        A = corners, counting 1 together when all three are on
        . . X X . .
        . . . . . .
        B . . . . A        B = the corner that only the hard rule counts

Hard rule (:func:`hard_rule`)
    The tiny total plus the **bottom-left corner** (5, 0); the label is 1 when this total is odd.
    In other words, the hard label is the tiny label XOR the bottom-left pixel, so a network that
    has learned the tiny rule already computes almost everything the hard rule needs.

Why these rules: a parity (XOR) of several pixels is uncorrelated with every single pixel and with
every small group of pixels, so a learner that follows the gradient of low-order statistics (a plain
sigmoid network trained with SGD on the squared error) sees almost no signal and stays at chance.
A well-conditioned network can find the few relevant pixels and compute the rule exactly, reaching
100 % on new grids, while a wide network can also simply memorise the 8,000 training grids, which
does not generalise.  Learning the hard rule from scratch means finding a parity of five pixels
(with the corner term on top), a much harder search; starting from a network that already computes
the tiny rule it is easy (transfer learning).

Both sets are balanced (as many 0s as 1s, in the training and in the validation part), the
validation grids never occur in the training part, and generation takes a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

GRID = 6
"""Side of the square grid: every sample has ``GRID * GRID = 36`` binary inputs."""

CENTRE: tuple[tuple[int, int], ...] = ((2, 2), (2, 3), (3, 2), (3, 3))
"""(row, column) of the centre pixels, each counted by both rules."""

CORNERS: tuple[tuple[int, int], ...] = ((0, 0), (0, 5), (5, 5))
"""The three corners that count 1 together when all are on (both rules)."""

HARD_EXTRA: tuple[tuple[int, int], ...] = ((5, 0),)
"""The pixel that the hard rule also counts: the bottom-left corner."""

TINY_SEED = 7150
HARD_SEED = 7151


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


def _as_grids(grids: np.ndarray) -> np.ndarray:
    grids = np.asarray(grids)
    if grids.shape[-1] == GRID * GRID:
        grids = grids.reshape(*grids.shape[:-1], GRID, GRID)
    if grids.shape[-2:] != (GRID, GRID):
        raise ValueError(f"expected grids of shape (..., 6, 6) or (..., 36), got {grids.shape}")
    return grids.astype(np.int64)


def _total(grids: np.ndarray, singles: tuple[tuple[int, int], ...]) -> np.ndarray:
    grids = _as_grids(grids)
    count = sum(grids[..., r, c] for r, c in singles)
    all_on = np.prod([grids[..., r, c] for r, c in CORNERS], axis=0)
    return count + all_on


def tiny_rule(grids: np.ndarray) -> np.ndarray:
    """Label of the tiny task (see the module's description).

    Parameters
    ----------
    grids : array of shape (..., 6, 6) or (..., 36), values 0 or 1

    Returns
    -------
    labels : np.ndarray of shape (...), int64 values 0 or 1
    """
    return _total(grids, CENTRE) % 2


def hard_rule(grids: np.ndarray) -> np.ndarray:
    """Label of the hard task: the tiny label XOR the bottom-left pixel (5, 0).

    Parameters
    ----------
    grids : array of shape (..., 6, 6) or (..., 36), values 0 or 1

    Returns
    -------
    labels : np.ndarray of shape (...), int64 values 0 or 1
    """
    return _total(grids, CENTRE + HARD_EXTRA) % 2


def make_classification(
    rule: Callable[[np.ndarray], np.ndarray],
    *,
    n_train: int = 8000,
    n_val: int = 1000,
    random_state: int = TINY_SEED,
) -> ClassificationData:
    """Draw distinct uniform random 6×6 binary grids and label them with ``rule``.

    Each part is exactly balanced: ``n_train // 2`` (``n_val // 2``) samples of each class, in a
    random order.  No grid appears twice.

    Parameters
    ----------
    rule : callable
        Maps grids of shape (n, 6, 6) to labels of shape (n,) with values 0 or 1.
    n_train, n_val : int
        Sizes of the training and validation parts (even numbers).
    random_state : int
        Seed of the generator (the global random state is neither used nor changed).

    Returns
    -------
    ClassificationData
    """
    if n_train % 2 or n_val % 2 or n_train <= 0 or n_val <= 0:
        raise ValueError("n_train and n_val must be positive even numbers (balanced classes)")
    rng = np.random.default_rng(random_state)
    n_total = n_train + n_val
    pool = rng.integers(0, 2, size=(3 * n_total, GRID * GRID), dtype=np.int64)
    codes = pool @ (1 << np.arange(GRID * GRID, dtype=np.int64))
    _, first = np.unique(codes, return_index=True)
    pool = pool[np.sort(first)]  # distinct grids, in the order they were drawn
    labels = np.asarray(rule(pool.reshape(-1, GRID, GRID)), dtype=np.int64)
    ones, zeros = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if min(len(ones), len(zeros)) < n_total // 2:
        raise ValueError("the rule is too unbalanced to draw a balanced set")
    half_train, half_val = n_train // 2, n_val // 2
    train_idx = np.concatenate([zeros[:half_train], ones[:half_train]])
    val_idx = np.concatenate([zeros[half_train:half_train + half_val],
                              ones[half_train:half_train + half_val]])
    rng.shuffle(train_idx)
    rng.shuffle(val_idx)

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(pool[idx], dtype=torch.float32),
                torch.tensor(labels[idx], dtype=torch.float32))

    return ClassificationData(*tensors(train_idx), *tensors(val_idx))


def tiny_classification(
    random_state: int = TINY_SEED, n_train: int = 8000, n_val: int = 1000
) -> ClassificationData:
    """The tiny task: 8,000 training and 1,000 validation grids labelled by :func:`tiny_rule`.

    Parameters
    ----------
    random_state : int
        Seed of the grids.
    n_train, n_val : int
        Sizes of the two parts.

    Returns
    -------
    ClassificationData
    """
    return make_classification(tiny_rule, n_train=n_train, n_val=n_val, random_state=random_state)


def hard_classification(
    random_state: int = HARD_SEED, n_train: int = 8000, n_val: int = 1000
) -> ClassificationData:
    """The hard task: 8,000 training and 1,000 validation grids labelled by :func:`hard_rule`.

    Parameters
    ----------
    random_state : int
        Seed of the grids.
    n_train, n_val : int
        Sizes of the two parts.

    Returns
    -------
    ClassificationData
    """
    return make_classification(hard_rule, n_train=n_train, n_val=n_val, random_state=random_state)


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
