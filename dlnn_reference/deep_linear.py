"""Reference answers of tutorial 1 (deep linear networks) and the expected values of its checks.

The four graded exercises of T1 — ``ex_initializer_``, ``ex_net_svd``, ``ex_net_rsm`` and
``linear_regression`` — are answered here, on the instructor's side only (the student package
holds no callable that passes their checks).  For every check of
:mod:`dlnn_helpers.checks.deep_linear` that compares values, a function registered with
:func:`~dlnn_reference.expects` rebuilds the check's inputs from its settings (with the check
module's own builders) and returns the correct values and the output of each known mistake.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dlnn_helpers.checks.deep_linear import _activity, _random_lnnet, _regression_problem

from . import answers, expects

# ------------------------------------------------------------------------------------ the answers


@answers("check_initializer")
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


@answers("check_net_svd")
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
        Right singular vectors (columns); ``torch.linalg.svd`` returns ``Vh = Vᵀ``.
    """
    u, s, vh = torch.linalg.svd(total_weight(model, in_dim), full_matrices=False)
    return u, s, vh.mT


@answers("check_net_rsm")
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


@answers("check_linear_regression")
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


# ---------------------------------------------------------------------- the checks' expected values


def _float64(tensor: torch.Tensor) -> np.ndarray:
    return np.array(tensor.detach().cpu().numpy(), dtype=np.float64, copy=True)


def _svdvals(matrix: np.ndarray) -> np.ndarray:
    return np.linalg.svd(matrix, compute_uv=False)


@expects("check_net_svd")
def net_svd_expected(seed: int, dims: tuple[int, int, int]) -> dict[str, np.ndarray | None]:
    """The singular values of W_tot = W_2 W_1 (float64) and those each known mistake gives.

    U and V are judged by their defining properties, so only S is expected.
    """
    in_dim, hid_dim, out_dim = dims
    w1, w2 = (_float64(w) for w in _random_lnnet(tuple(dims), seed).parameters())
    s = _svdvals(w2 @ w1)
    return {
        "correct": s,
        "increasing order": s[::-1].copy(),
        "squared": s**2,
        "last layer only": _svdvals(w2),
        "first layer only": _svdvals(w1),
        "product in the wrong order": (
            _svdvals(w1 @ w2) if in_dim == hid_dim == out_dim else None),
    }


@expects("check_net_rsm")
def net_rsm_expected(seed: int, shape: tuple[int, int]) -> dict[str, np.ndarray | None]:
    """H Hᵀ of the check's activity (float64) and what each known mistake computes instead."""
    h = _float64(_activity(seed, tuple(shape)))
    n_items, n_hidden = h.shape
    rsm = _float64(net_rsm(torch.from_numpy(h)))
    norms = np.linalg.norm(h, axis=1)
    centred = h - h.mean(axis=1, keepdims=True)
    return {
        "correct": rsm,
        "Hᵀ H": h.T @ h,
        "cosine similarity": rsm / np.outer(norms, norms),
        "divided by n_hidden": rsm / n_hidden,
        "centred": centred @ centred.T,
        "element-wise": (h * h)[:, :n_items] if n_hidden >= n_items else None,
        "squared": rsm**2,
    }


@expects("check_linear_regression")
def linear_regression_expected(seed: int, shapes: tuple[int, int, int]) -> dict[str, np.ndarray | None]:
    """The least-squares W of the check's problem and what each known mistake computes instead."""
    x, y = _regression_problem(seed, tuple(shapes))
    m, n, _ = shapes
    w = linear_regression(x, y)
    return {
        "correct": w,
        "no inverse": y @ x.T,
        "transposed": w.T.copy(),
        "inverse on the left": np.linalg.inv(x @ x.T) @ (y @ x.T).T if m == n else None,
        "rounded": np.round(w),
    }


