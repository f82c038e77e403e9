"""Deep linear networks: models and training loops that record the learning dynamics (tutorial 1).

The tutorial's graded exercises (``ex_initializer_``, ``ex_net_svd``, ``ex_net_rsm``,
``linear_regression``) have no answer here: their reference implementations live in the
instructor's repository.  :func:`train` records the singular values of the end-to-end weight and
the hidden layer's similarity matrix without offering either as a function of a model or of an
activity; :func:`default_init_` is a stand-in initialisation (PyTorch's own) that the notebook uses
until the student's ``ex_initializer_`` passes its self-check.
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


def default_init_(model: nn.Module, gamma: float = 1.0) -> None:
    """PyTorch's default initialisation of ``nn.Linear`` weights, scaled by ``gamma``, in place.

    Every weight of shape (n_out, n_in) is drawn uniformly from [-γ/√n_in, γ/√n_in]
    (``nn.init.kaiming_uniform_`` with ``a=√5``, what ``nn.Linear`` does), so its standard deviation
    is γ / sqrt(3 n_in).  This is *not* tutorial 1's initialisation (a normal distribution with
    σ = γ / sqrt(n_in + n_out), coding exercise 0): the notebook uses it as a stand-in until the
    student's ``ex_initializer_`` passes its self-check.  It draws from torch's global generator.

    Parameters
    ----------
    model : nn.Module
        A network whose parameters are all 2-D weight matrices of shape (n_out, n_in).
    gamma : float
        Scale applied to PyTorch's default weights.
    """
    with torch.no_grad():
        for weight in model.parameters():
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            weight.mul_(gamma)


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
            w_tot = torch.eye(in_dim)
            for weight in model.parameters():  # W_tot = W_L ⋯ W_1 (only its singular values are kept)
                w_tot = weight.detach() @ w_tot
            if not torch.isfinite(w_tot).all():
                losses[epoch] = np.inf
                break

            losses[epoch] = loss.item()
            modes[epoch] = torch.linalg.svdvals(w_tot)[:k].numpy()
            hid = hidden.detach()
            rsms[epoch] = (hid @ hid.mT).numpy()
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
