"""Deep linear networks: models, initialisation, training with records, SVD and RSA (tutorial 1).

These are the reference implementations; the tutorial asks students to write some of them again
(``ex_initializer_``, ``ex_net_svd``, ``ex_net_rsm``, ``linear_regression``) and checks their answers
against these.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .utils import torch_threads


class LNNet(nn.Module):
    """Linear network with one hidden layer and no biases.

    Parameters
    ----------
    in_dim, hid_dim, out_dim : int
        Sizes of the input, hidden and output layers (8, 30 and 10,000 in the tutorial).
    """

    def __init__(self, in_dim: int, hid_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_hid = nn.Linear(in_dim, hid_dim, bias=False)
        self.hid_out = nn.Linear(hid_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(out, hid)``: output of shape (batch, out_dim) and hidden of (batch, hid_dim)."""
        hid = self.in_hid(x)
        out = self.hid_out(hid)
        return out, hid


class LRNet(nn.Module):
    """Linear network with no hidden layer and no bias: linear regression as a network.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output sizes.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_out = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the prediction, of shape (batch, out_dim)."""
        return self.in_out(x)


def initializer_(
    model: nn.Module, gamma: float = 1e-12, generator: torch.Generator | None = None
) -> None:
    """Re-initialise every weight in place from N(0, σ²) with σ = γ / sqrt(n_in + n_out).

    Parameters
    ----------
    model : nn.Module
        A network whose parameters are all 2-D weight matrices of shape (n_out, n_in).
    gamma : float
        Initialisation scale γ.
    generator : torch.Generator, optional
        Source of randomness; the global torch generator when omitted.
    """
    with torch.no_grad():
        for weight in model.parameters():
            n_out, n_in = weight.shape
            weight.normal_(0.0, gamma / math.sqrt(n_in + n_out), generator=generator)


def total_weight(model: nn.Module, in_dim: int) -> torch.Tensor:
    """Return W_tot = W_L ⋯ W_1, the product of the weights in the order the input meets them.

    Parameters
    ----------
    model : nn.Module
        A bias-free linear network whose ``parameters()`` come in layer order.
    in_dim : int
        Input dimension; the product starts from the identity of this size.

    Returns
    -------
    w_tot : torch.Tensor of shape (out_dim, in_dim)
        Detached end-to-end weight matrix.
    """
    w_tot = torch.eye(in_dim)
    for weight in model.parameters():
        w_tot = weight.detach() @ w_tot
    return w_tot


def net_svd(model: nn.Module, in_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Singular value decomposition of the network's end-to-end weight W_tot = U diag(S) Vᵀ.

    Parameters
    ----------
    model : nn.Module
        A bias-free linear network.
    in_dim : int
        Its input dimension.

    Returns
    -------
    U : torch.Tensor of shape (out_dim, k)
        Left singular vectors (columns), k = min(out_dim, in_dim).
    S : torch.Tensor of shape (k,)
        Singular values, in decreasing order.
    V : torch.Tensor of shape (in_dim, k)
        Right singular vectors (columns); note that ``torch.linalg.svd`` returns ``Vh = Vᵀ``.
    """
    u, s, vh = torch.linalg.svd(total_weight(model, in_dim), full_matrices=False)
    return u, s, vh.mT


def net_rsm(h: torch.Tensor) -> torch.Tensor:
    """Representational similarity matrix H Hᵀ of hidden activity.

    Parameters
    ----------
    h : torch.Tensor of shape (n_items, n_hidden)
        Hidden activity, one row per input item.

    Returns
    -------
    rsm : torch.Tensor of shape (n_items, n_items)
        Dot products between the items' hidden representations.
    """
    return h @ h.mT


def linear_regression(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares weights W minimising ‖Y − W X‖², i.e. W = Y Xᵀ (X Xᵀ)⁻¹.

    Parameters
    ----------
    X : np.ndarray of shape (M, D)
        Inputs, one column per sample.
    Y : np.ndarray of shape (N, D)
        Targets, one column per sample.

    Returns
    -------
    W : np.ndarray of shape (N, M)
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X (M, D) and Y (N, D) must share D samples, got {X.shape} and {Y.shape}"
        )
    # Solve (X Xᵀ) Wᵀ = X Yᵀ instead of forming the inverse.
    return np.linalg.solve(X @ X.T, X @ Y.T).T


class TrainingRecord(NamedTuple):
    """Per-epoch records of :func:`train`; unpacks like the tuple ``(losses, modes, rsms, illusions)``.

    Attributes
    ----------
    losses : np.ndarray of shape (n_epochs,)
        Mean squared error before each update.
    modes : np.ndarray of shape (n_epochs, min(in_dim, out_dim))
        Singular values of W_tot after each update, in decreasing order.
    rsms : np.ndarray of shape (n_epochs, n_items, n_items)
        Representational similarity matrix of the hidden layer at each epoch.
    illusions : np.ndarray of shape (n_epochs,)
        Prediction for item ``illusory_i`` on the last feature at each epoch.
    """

    losses: np.ndarray
    modes: np.ndarray
    rsms: np.ndarray
    illusions: np.ndarray

    @property
    def diverged_at(self) -> int | None:
        """First epoch whose loss is not finite (training stopped there), or None."""
        bad = np.flatnonzero(~np.isfinite(self.losses))
        return int(bad[0]) if bad.size else None


def train(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    n_epochs: int,
    lr: float,
    illusory_i: int = 0,
) -> TrainingRecord:
    """Full-batch gradient descent on the mean squared error, recording the learning dynamics.

    Parameters
    ----------
    model : nn.Module
        A bias-free linear network whose ``forward`` returns ``(out, hid)`` (e.g. :class:`LNNet`).
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    n_epochs : int
        Number of gradient steps.
    lr : float
        Learning rate η.
    illusory_i : int
        Item whose prediction on the last feature is recorded.

    Returns
    -------
    TrainingRecord
        ``losses`` (n_epochs,), ``modes`` (n_epochs, k), ``rsms`` (n_epochs, n_items, n_items),
        ``illusions`` (n_epochs,).  If the loss becomes infinite or NaN (too large a learning
        rate), training stops and the remaining records are NaN; see ``diverged_at``.
    """
    in_dim = inputs.shape[1]
    n_items = inputs.shape[0]
    k = min(in_dim, targets.shape[1])
    losses = np.full(n_epochs, np.nan)
    modes = np.full((n_epochs, k), np.nan)
    rsms = np.full((n_epochs, n_items, n_items), np.nan)
    illusions = np.full(n_epochs, np.nan)

    with torch_threads(1):  # small operations: one thread is fastest (see torch_threads)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        criterion = nn.MSELoss()
        for epoch in range(losses.shape[0]):
            optimizer.zero_grad()
            predictions, hidden = model(inputs)
            loss = criterion(predictions, targets)
            if not torch.isfinite(loss):
                break  # diverged: the remaining records stay NaN
            loss.backward()
            optimizer.step()
            w_tot = total_weight(model, in_dim)
            if not torch.isfinite(w_tot).all():
                losses[epoch] = np.inf
                break

            losses[epoch] = loss.item()
            modes[epoch] = torch.linalg.svdvals(w_tot)[:k].numpy()
            rsms[epoch] = net_rsm(hidden.detach()).numpy()
            illusions[epoch] = predictions.detach()[illusory_i, -1].item()
    return TrainingRecord(losses, modes, rsms, illusions)


def train_lrnet(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, n_epochs: int, lr: float
) -> np.ndarray:
    """Full-batch gradient descent on the MSE for a network whose ``forward`` returns one tensor.

    Parameters
    ----------
    model : nn.Module
        E.g. :class:`LRNet`.
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    n_epochs : int
    lr : float

    Returns
    -------
    losses : np.ndarray of shape (n_epochs,)
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    criterion = nn.MSELoss()
    losses = np.zeros(n_epochs)
    with torch_threads(1):
        for epoch in range(n_epochs):
            optimizer.zero_grad()
            loss = criterion(model(inputs), targets)
            loss.backward()
            optimizer.step()
            losses[epoch] = loss.item()
    return losses
