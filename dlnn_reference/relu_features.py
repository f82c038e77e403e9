"""Reference answers of tutorial 6 (linearised features of ReLU networks), the expected values of its
checks, and the features precomputed for the student notebook.

The gradient features — the derivative of the output with respect to every parameter at every
input — are computed with ``torch.func`` (the gradient at one point, ``vmap`` over the points):
:func:`gradient_features`, and from it the answers of the exercises (:func:`first_layer_gradients`,
:func:`feature_matrix`, :func:`second_layer_gradients`, and :func:`principal_features`, their SVD).

:func:`write_precomputed` trains the networks of the solution notebook (its full run) and writes
the features its figures show to ``dlnn_helpers/data/relu_features.npz``: the student notebook
draws them until the student's own exercises pass their self-checks.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlnn_helpers import relu_features as rf
from dlnn_helpers.checks.relu_features import (
    seeded_network,
)

from . import answers, expects

# ------------------------------------------------------------------------------------------------
# Reference answers
# ------------------------------------------------------------------------------------------------


def gradient_features(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Derivative of the scalar output ``y(x)`` with respect to every parameter, at every point.

    Parameters
    ----------
    net : nn.Module
        A network with one input and one output.
    x : torch.Tensor of shape (n, 1)

    Returns
    -------
    dict
        ``name -> tensor of shape (n, *parameter.shape)`` for every named parameter.
    """
    from torch.func import functional_call, grad, vmap

    params = {name: p.detach() for name, p in net.named_parameters()}

    def output(p: dict[str, torch.Tensor], point: torch.Tensor) -> torch.Tensor:
        return functional_call(net, p, (point.unsqueeze(0),)).squeeze()

    return vmap(grad(output), in_dims=(None, 0))(params, x.detach())


@answers("check_first_layer_gradients")
def first_layer_gradients(net: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point ∂y/∂w₁ and ∂y/∂b₁, each of shape (n, width) (``ex_first_layer_gradients``)."""
    grads = list(gradient_features(net, x).values())
    return grads[0].reshape(x.shape[0], -1), grads[1]


@answers("check_feature_matrix")
@answers("check_feature_matrix", depth=2, seed=23)
def feature_matrix(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The (n, d) feature matrix, columns in ``net.parameters()`` order, each parameter flattened
    row by row (``ex_feature_matrix``)."""
    grads = gradient_features(net, x)
    return torch.cat([g.reshape(x.shape[0], -1) for g in grads.values()], dim=1)


@answers("check_principal_features")
def principal_features(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values ``s`` (r,) and principal features ``U diag(s)`` (n, r) of a feature matrix
    (``ex_principal_features``)."""
    u, s, _ = torch.linalg.svd(features, full_matrices=False)
    return s, u * s


@answers("check_second_layer_gradients")
def second_layer_gradients(net: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point ∂y/∂W₂ (n, m, m) and ∂y/∂b₂ (n, m) of a two-hidden-layer network
    (``ex_second_layer_gradients``)."""
    grads = list(gradient_features(net, x).values())
    return grads[2], grads[3]


# ------------------------------------------------------------------------------------------------
# Expected values of the checks
# ------------------------------------------------------------------------------------------------


def _np(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """A float64 array of float32 values, rounded to 7 significant digits (about float32's
    precision; short in the shipped file, far inside the checks' tolerance of 1e-4)."""
    array = np.array(t.detach().numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
    return np.vectorize(lambda v: float(f"{v:.7g}"), otypes=[np.float64])(array)


@expects("check_first_layer_gradients")
def first_layer_gradients_expected(seed: int, width: int, n_points: int) -> dict:
    """``(grad_w, grad_b)`` and the outputs of the known mistakes."""
    net, x = seeded_network(seed, width, 1, n_points)
    g_w, g_b = first_layer_gradients(net, x)
    with torch.no_grad():
        pre = net[0](x)
        v = net[2].weight[0]
    mask = (pre > 0).float()
    return {"correct": (_np(g_w), _np(g_b)), "v x": _np(v * x), "mask x": _np(mask * x),
            "hidden": _np(torch.relu(pre)), "v": _np(v), "mask": _np(mask)}


@expects("check_feature_matrix")
def feature_matrix_expected(seed: int, width: int, depth: int, n_points: int) -> dict:
    """The feature matrix (the check derives its wrong orders of columns itself)."""
    net, x = seeded_network(seed, width, depth, n_points)
    return {"correct": _np(feature_matrix(net, x))}


@expects("check_second_layer_gradients")
def second_layer_gradients_expected(seed: int, width: int, n_points: int) -> dict:
    """``(grad_W2, grad_b2)`` and the outputs of the known mistakes."""
    net, x = seeded_network(seed, width, 2, n_points)
    grads = list(gradient_features(net, x).values())
    with torch.no_grad():
        h1 = torch.relu(net[0](x))
        mask2 = (net[2](h1) > 0).float()
        v = net[4].weight[0]
    return {"correct": (_np(grads[2]), _np(grads[3])), "v": _np(v),
            "no second mask": _np(v[None, :, None] * h1[:, None, :]), "mask": _np(mask2),
            "first layer bias": _np(grads[1])}


# ------------------------------------------------------------------------------------------------
# The features precomputed for the student notebook
# ------------------------------------------------------------------------------------------------

SEED = 2021
WIDTHS = (10, 20, 40)
N_INITS = 5
LR_ALL, LR_OUTPUT = 0.02, 0.2
N_STEPS, SNAPSHOT_EVERY = 50_000, 1_000
"""The solution notebook's settings (its set-up cell; the full run, not the autograded one)."""


def notebook_runs() -> tuple[rf.ReluData, list[rf.History], list[rf.History]]:
    """The data and the training runs of the solution notebook: the first initialisation of each
    width trained on all layers (``runs_1[:3]``), and the two-hidden-layer runs (``runs_2``)."""
    data = rf.make_relu_data(n_samples=200, sigma=0.1, random_state=1)
    generator = torch.Generator().manual_seed(SEED)
    nets = [rf.make_relu_net(width, depth=1, generator=generator)
            for _ in range(N_INITS) for width in WIDTHS]
    runs = rf.train_relu_nets(nets * 2, data, lrs=[LR_ALL] * len(nets) + [LR_OUTPUT] * len(nets),
                              output_only=[False] * len(nets) + [True] * len(nets),
                              n_steps=N_STEPS, snapshot_every=SNAPSHOT_EVERY, seed=SEED)
    generator = torch.Generator().manual_seed(SEED + 1)
    nets_2 = [rf.make_relu_net(width, depth=2, generator=generator) for width in WIDTHS]
    runs_2 = rf.train_relu_nets(nets_2 * 2, data, lrs=[LR_ALL] * 3 + [LR_OUTPUT] * 3,
                                output_only=[False] * 3 + [True] * 3, n_steps=N_STEPS,
                                snapshot_every=SNAPSHOT_EVERY, seed=SEED)
    return data, runs[: len(WIDTHS)], runs_2


def precomputed_features(data: rf.ReluData, runs_1: list[rf.History],
                         runs_2: list[rf.History]) -> dict[str, np.ndarray]:
    """The arrays of ``relu_features.npz``, by :meth:`dlnn_helpers.relu_features.Precomputed.key`."""
    x, grid = data.x_train, rf.SVD_GRID
    arrays: dict[str, np.ndarray] = {}
    key = rf.Precomputed.key

    def spectrum(run: rf.History, stage: str) -> None:
        net = run.net_at(rf.STAGES[stage])
        _, s, vh = torch.linalg.svd(feature_matrix(net, x), full_matrices=False)
        curves = feature_matrix(net, grid) @ vh[: rf.N_PRINCIPAL].T
        arrays[key("s", run, stage)] = s.numpy().astype(np.float32)
        arrays[key("curves", run, stage)] = curves.numpy().astype(np.float16)

    for run in runs_1:
        for stage in rf.STAGES:
            arrays[key("first", run, stage)] = first_layer_gradients(
                run.net_at(rf.STAGES[stage]), x)[1].numpy().astype(np.float16)
            spectrum(run, stage)
    for run in runs_2[:3]:
        spectrum(run, "trained")
    for stage in rf.STAGES:
        net = runs_2[0].net_at(rf.STAGES[stage])
        arrays[key("first", runs_2[0], stage)] = first_layer_gradients(net, x)[1].numpy().astype(
            np.float16)
        arrays[key("second", runs_2[0], stage)] = second_layer_gradients(net, x)[1].numpy().astype(
            np.float16)
    return arrays


def write_precomputed(path: Path = rf.PRECOMPUTED_PATH) -> Path:
    """Train the solution notebook's networks and write the features its figures show (a minute)."""
    data, runs_1, runs_2 = notebook_runs()
    arrays = precomputed_features(data, runs_1, runs_2)
    path.parent.mkdir(parents=True, exist_ok=True)
    # np.savez_compressed's format, with fixed dates: the same values always give the same bytes
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in sorted(arrays.items()):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)
    return path
