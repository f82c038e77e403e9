"""Deep linear networks: models and training loops that record the learning dynamics (tutorial 1).

The tutorial's graded exercises (``ex_initializer_``, ``ex_net_svd``, ``ex_net_rsm``,
``linear_regression``) have no answer here: their reference implementations live in the
instructor's repository.  The training loop that records the learning dynamics is written out in
the notebook, where it calls the student's ``ex_net_svd`` and ``ex_net_rsm`` (or their stand-ins);
this module only gives it :class:`TrainingRecord` to fill.  :func:`default_init_` is a stand-in
initialisation (PyTorch's own) that the notebook uses until the student's ``ex_initializer_``
passes its self-check.
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
    """Per-epoch records of a training run; unpacks like ``(losses, modes, rsms, illusions)``.

    Tutorial 1's training loop (in the notebook) fills one made by :meth:`empty`; what it does not
    record stays NaN.

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

    @classmethod
    def empty(cls, n_epochs: int, n_modes: int, n_items: int) -> TrainingRecord:
        """A record of ``n_epochs`` epochs with every entry NaN (not recorded yet).

        Parameters
        ----------
        n_epochs : int
        n_modes : int
            Number of singular values kept per epoch, min(in_dim, out_dim).
        n_items : int
            Number of items (rows of the inputs), the size of the RSM.

        Returns
        -------
        TrainingRecord
        """
        return cls(np.full(n_epochs, np.nan), np.full((n_epochs, n_modes), np.nan),
                   np.full((n_epochs, n_items, n_items), np.nan), np.full(n_epochs, np.nan))

    @property
    def diverged_at(self) -> int | None:
        """First epoch whose loss is NaN or infinite (training stopped there: it diverged), or None."""
        bad = np.flatnonzero(~np.isfinite(self.losses))
        return int(bad[0]) if bad.size else None


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
