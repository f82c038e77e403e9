"""The rules and the generator of the "tiny" and "hard" classification tasks of tutorials 3 and 4.

The instructor's side only: the rules are the answer of tutorial 3's exercise ``ex_tiny_rule``
(recovering the rule from the trained network), so the student package ships the generated grids
and labels (``dlnn_helpers/data/classification_grids.npz``, written by :func:`write_grids`) and
not the rules.  Number the rows and columns 0 … 5 from the top left.

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
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dlnn_helpers.deep_training_data import (
    GRID,
    GRIDS_PATH,
    HARD_SEED,
    TINY_SEED,
    ClassificationData,
)

CENTRE: tuple[tuple[int, int], ...] = ((2, 2), (2, 3), (3, 2), (3, 3))
"""(row, column) of the centre pixels, each counted by both rules."""

CORNERS: tuple[tuple[int, int], ...] = ((0, 0), (0, 5), (5, 5))
"""The three corners that count 1 together when all are on (both rules)."""

HARD_EXTRA: tuple[tuple[int, int], ...] = ((5, 0),)
"""The pixel that the hard rule also counts: the bottom-left corner."""


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


def tiny_data(random_state: int = TINY_SEED, n_train: int = 8000, n_val: int = 1000) -> ClassificationData:
    """The tiny task generated from ``random_state`` (the shipped set is the default one)."""
    return make_classification(tiny_rule, n_train=n_train, n_val=n_val, random_state=random_state)


def hard_data(random_state: int = HARD_SEED, n_train: int = 8000, n_val: int = 1000) -> ClassificationData:
    """The hard task generated from ``random_state`` (the shipped set is the default one)."""
    return make_classification(hard_rule, n_train=n_train, n_val=n_val, random_state=random_state)


def write_grids(path: Path = GRIDS_PATH) -> Path:
    """Write the default tiny and hard sets to ``path``: each grid's 36 pixels packed into 5 bytes
    (``np.packbits`` of a row), the labels packed 8 to a byte."""
    arrays: dict[str, np.ndarray] = {}
    for task, data in (("tiny", tiny_data()), ("hard", hard_data())):
        for part, grids, labels in (("train", data.train_data, data.train_labels),
                                    ("val", data.val_data, data.val_labels)):
            arrays[f"{task}_{part}_grids"] = np.packbits(grids.numpy().astype(np.uint8), axis=1)
            arrays[f"{task}_{part}_labels"] = np.packbits(labels.numpy().astype(np.uint8))
            arrays[f"{task}_{part}_n"] = np.array(len(labels))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
