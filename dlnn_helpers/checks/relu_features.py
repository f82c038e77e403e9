"""Checks of the graded exercises of tutorial 6 (linearised features of ReLU networks).

Each check builds its own network (:func:`~dlnn_helpers.relu_features.make_relu_net`) and inputs
from a ``seed``, computes the answer with ``torch.func`` on a private copy, calls the student's
function on another copy, and compares.  Answers written with a Python loop over points
(``model.zero_grad(); model(x_i).backward()``) are as welcome as vectorised ones.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from ..relu_features import gradient_features, make_relu_net
from ._core import (
    CheckFailure,
    call_student,
    captured_warnings,
    close,
    to_array,
    unpack,
    warning_note,
)


def _setup(seed: int, width: int, depth: int, n_points: int) -> tuple[torch.nn.Sequential, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    net = make_relu_net(width, depth, generator=generator)
    with torch.no_grad():  # a "trained-looking" network: output weights of both signs, away from 0
        out = net[-1]
        out.weight.copy_(torch.randn(out.weight.shape, generator=generator))
        out.bias.fill_(0.3)
    x = torch.sort(torch.rand(n_points, 1, generator=generator), dim=0).values
    return net, x


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=np.float64, copy=True)


def _reference_grads(net: torch.nn.Sequential, x: torch.Tensor) -> list[np.ndarray]:
    return [_numpy(g) for g in gradient_features(copy.deepcopy(net), x.clone()).values()]


def _shape_of(value: np.ndarray, expected: tuple[int, ...], what: str, meaning: str) -> np.ndarray:
    """Accept ``expected`` or a shape with the same entries that only adds/drops size-1 axes."""
    if value.shape == expected:
        return value
    squeeze = tuple(s for s in value.shape if s != 1)
    if squeeze == tuple(s for s in expected if s != 1) and value.size == int(np.prod(expected)):
        return value.reshape(expected)
    if value.shape == expected[::-1] or (
        len(expected) == 2 and value.shape == (expected[1], expected[0])
    ):
        raise CheckFailure(
            f"{what} has shape {value.shape}; it should be {expected} ({meaning}). It looks "
            "transposed: put the points along the first axis."
        )
    raise CheckFailure(f"{what} has shape {value.shape}; it should be {expected} ({meaning}).")


def _diagnose(
    what: str, got: np.ndarray, expected: np.ndarray, mistakes: dict[str, np.ndarray]
) -> None:
    """Raise a CheckFailure naming the mistake when ``got`` differs from ``expected``."""
    if close(got, expected, 1e-4):
        return
    common = {
        "the gradients accumulate from point to point: reset them (model.zero_grad(), or "
        "p.grad = None) before every backward pass": np.cumsum(expected, axis=0),
        "every row holds the gradient summed over all points: compute the derivative of y(x_i) "
        "for each point separately, not of y.sum()": np.broadcast_to(
            expected.sum(axis=0, keepdims=True), expected.shape
        ),
        "the sign is flipped": -expected,
    }
    for message, candidate in {**mistakes, **common}.items():
        if candidate.shape == got.shape and close(got, candidate, 1e-4):
            raise CheckFailure(f"{what}: {message}.")
    bad = np.argwhere(np.abs(got - expected) > 1e-4 * max(1.0, float(np.abs(expected).max())))
    first = tuple(int(i) for i in bad[0])
    raise CheckFailure(
        f"{what} is wrong at {len(bad)} of {got.size} entries; first at index {first}: expected "
        f"{expected[first]:.5f}, got {got[first]:.5f}."
    )


# ----------------------------------------------------------------------------------------------
# ex_first_layer_gradients
# ----------------------------------------------------------------------------------------------


def check_first_layer_gradients(
    func: Callable[..., object],
    *,
    seed: int = 6,
    width: int = 8,
    n_points: int = 40,
    name: str = "ex_first_layer_gradients",
) -> str:
    """Check ``func(model, x) -> (grad_w, grad_b)``: per-point ∂y/∂w₁ and ∂y/∂b₁, each (n, width).

    The model has one hidden layer, ``y(x) = Σ_i v_i relu(w_i x + b_i) + c``, so the answers are
    ``v_i 1[w_i x + b_i > 0] x`` and ``v_i 1[w_i x + b_i > 0]``.
    """
    net, x = _setup(seed, width, 1, n_points)
    g_w, g_b = _reference_grads(net, x)[:2]
    g_w = g_w.reshape(n_points, width)
    with torch.no_grad():
        pre = _numpy(net[0](x))
        hidden = np.maximum(pre, 0.0)
        v = _numpy(net[2].weight)[0]
    mask = (pre > 0).astype(np.float64)
    xs = _numpy(x)
    with captured_warnings() as caught:
        result = call_student(name, func, copy.deepcopy(net), x.clone())
    got_w, got_b = unpack(result, ("grad_w", "grad_b"), name)
    got_w = to_array(got_w, "grad_w", allow_numpy=True)
    got_b = to_array(got_b, "grad_b", allow_numpy=True)
    shape, meaning = (n_points, width), "one row per point, one column per hidden unit"
    got_w = _shape_of(got_w, shape, "grad_w", meaning)
    got_b = _shape_of(got_b, shape, "grad_b", meaning)
    if close(got_w, g_b) and close(got_b, g_w):
        raise CheckFailure(f"{name} returned (grad_b, grad_w): return them in the order "
                           "(grad_w, grad_b).")
    _diagnose("grad_w", got_w, g_w, {
        "the factor x is missing: ∂(w x + b)/∂w = x, so ∂y/∂w = ∂y/∂b · x": g_b,
        "the ReLU's derivative 1[w x + b > 0] is missing": v * xs,
        "the output weight v (the second layer's weight) is missing: ∂y/∂w_i = v_i 1[w_i x + b_i"
        " > 0] x": mask * xs,
        "these are the hidden activations relu(w x + b), not derivatives of y": hidden,
    })
    _diagnose("grad_b", got_b, g_b, {
        "the ReLU's derivative 1[w x + b > 0] is missing": np.broadcast_to(v, g_b.shape),
        "the output weight v (the second layer's weight) is missing: ∂y/∂b_i = v_i 1[w_i x + b_i"
        " > 0]": mask,
        "this is ∂y/∂w (it has the factor x); ∂y/∂b has none": g_w,
        "these are the hidden activations relu(w x + b), not derivatives of y": hidden,
    })
    return (
        f"{name} gives ∂y/∂w₁ and ∂y/∂b₁ at all {n_points} points for a width-{width} network."
        + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ex_feature_matrix
# ----------------------------------------------------------------------------------------------


def check_feature_matrix(
    func: Callable[..., object],
    *,
    seed: int = 7,
    width: int = 6,
    depth: int = 1,
    n_points: int = 30,
    name: str = "ex_feature_matrix",
) -> str:
    """Check ``func(model, x) -> features`` of shape (n, d): ∂y(x_i)/∂θ_j for every parameter.

    Columns follow ``model.parameters()``, each parameter flattened in row-major order (as
    ``p.reshape(-1)``). ``depth`` selects one or two hidden layers.
    """
    net, x = _setup(seed, width, depth, n_points)
    grads = _reference_grads(net, x)
    blocks = [g.reshape(n_points, -1) for g in grads]
    expected = np.concatenate(blocks, axis=1)
    d = expected.shape[1]
    with captured_warnings() as caught:
        result = call_student(name, func, copy.deepcopy(net), x.clone())
    got = to_array(result, "the feature matrix", allow_numpy=True)
    first = sum(b.shape[1] for b in blocks[:2])
    if got.shape == (n_points, first) and d != first:
        raise CheckFailure(
            f"the feature matrix has {first} columns, the first layer's parameters only; it needs "
            f"one column per parameter of the whole network ({d})."
        )
    if got.shape == (d, n_points) and d != n_points:
        raise CheckFailure(
            f"the feature matrix has shape {got.shape}; it should be (n, d) = {(n_points, d)}: one "
            "row per point, one column per parameter. Transpose it."
        )
    if got.shape != (n_points, d):
        raise CheckFailure(
            f"the feature matrix has shape {got.shape}; it should be (n, d) = {(n_points, d)} "
            f"(n = {n_points} points, d = {d} parameters of the network)."
        )
    weights_then_biases = np.concatenate(blocks[0::2] + blocks[1::2], axis=1)
    transposed_weights = np.concatenate(
        [g.transpose(0, 2, 1).reshape(n_points, -1) if g.ndim == 3 else g.reshape(n_points, -1)
         for g in grads], axis=1,
    )
    reversed_layers = np.concatenate(blocks[::-1], axis=1)
    _diagnose("the feature matrix", got, expected, {
        "the columns are in another order: all weights first, then all biases; follow "
        "model.parameters() (weight, bias of each layer in turn)": weights_then_biases,
        "each weight matrix is flattened column by column (its transpose); flatten p.grad as "
        "p.grad.reshape(-1)": transposed_weights,
        "the layers are in reverse order; follow model.parameters()": reversed_layers,
    })
    if not close(got, expected) and np.allclose(np.sort(got, axis=1), np.sort(expected, axis=1)):
        raise CheckFailure("the feature matrix holds the right numbers in the wrong columns: "
                           "follow model.parameters(), each flattened with reshape(-1).")
    return (
        f"{name} builds the {n_points} × {d} feature matrix of a network with {depth} hidden "
        f"layer{'s' if depth > 1 else ''} of width {width}." + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ex_principal_features
# ----------------------------------------------------------------------------------------------


def check_principal_features(
    func: Callable[..., object],
    *,
    seed: int = 8,
    n_points: int = 30,
    width: int = 5,
    name: str = "ex_principal_features",
) -> str:
    """Check ``func(features) -> (s, principal)``: singular values and ``U diag(s)``.

    Principal features are unique only up to the sign of each column (and a rotation inside a
    subspace of equal singular values), so the check tests what does not depend on that choice:
    ``principal.T @ principal = diag(s²)`` and ``principal @ principal.T = F F^T``.
    """
    net, x = _setup(seed, width, 1, n_points)
    features = torch.tensor(
        np.concatenate([g.reshape(n_points, -1) for g in _reference_grads(net, x)], axis=1),
        dtype=torch.float64,
    )
    f = _numpy(features)
    u, s, vh = np.linalg.svd(f, full_matrices=False)
    r = len(s)
    with captured_warnings() as caught:
        result = call_student(name, func, features.clone())
    got_s, got_p = unpack(result, ("s", "principal"), name)
    got_s = to_array(got_s, "s", allow_numpy=True).reshape(-1)
    got_p = to_array(got_p, "principal", allow_numpy=True)
    if got_s.shape == (f.shape[1],) and r != f.shape[1] or got_s.shape != (r,):
        raise CheckFailure(f"s has shape {got_s.shape}; it should be ({r},): one singular value "
                           "per column of the thin SVD (full_matrices=False).")
    if close(got_s, s**2, 1e-6) and not close(got_s, s, 1e-6):
        raise CheckFailure("s holds the squares of the singular values (eigenvalues of FᵀF); "
                           "take the singular values themselves.")
    if close(got_s, s[::-1], 1e-6) and not close(got_s, s, 1e-6):
        raise CheckFailure("s is in increasing order; the SVD lists singular values from the "
                           "largest down.")
    if not close(got_s, s, 1e-6):
        raise CheckFailure(f"s is not the list of singular values of the feature matrix: expected"
                           f" {np.round(s[:4], 4)}…, got {np.round(got_s[:4], 4)}….")
    if got_p.shape == (f.shape[1], r) and f.shape[1] != f.shape[0]:
        raise CheckFailure(
            f"principal has shape {got_p.shape}: that is a (d, r) matrix, probably V diag(s). The "
            f"principal features live on the points: U diag(s), of shape {(f.shape[0], r)}."
        )
    if got_p.shape != (f.shape[0], r):
        raise CheckFailure(f"principal has shape {got_p.shape}; it should be {(f.shape[0], r)} "
                           "(one row per point, one column per singular value).")
    if close(got_p, f, 1e-6):
        raise CheckFailure("principal equals the feature matrix itself (U diag(s) Vᵀ); drop Vᵀ: "
                           "the principal features are U diag(s).")
    gram_cols = got_p.T @ got_p
    if close(gram_cols, np.eye(r), 1e-5) and not close(s, np.ones(r), 1e-5):
        raise CheckFailure("principal has orthonormal columns: that is U alone; scale column k "
                           "by the singular value s[k].")
    if close(np.sqrt(np.abs(np.diag(gram_cols))), s**2, 1e-5):
        raise CheckFailure("column k of principal is scaled by s[k]²; scale it by s[k] once.")
    if not (close(gram_cols, np.diag(s**2), 1e-5) and close(got_p @ got_p.T, f @ f.T, 1e-5)):
        raise CheckFailure("principal is not U diag(s) for the SVD F = U diag(s) Vᵀ of the "
                           "feature matrix (check that you multiply U, not Vᵀ, by s).")
    return f"{name} returns the {r} singular values and principal features." + warning_note(caught)


# ----------------------------------------------------------------------------------------------
# ex_second_layer_gradients
# ----------------------------------------------------------------------------------------------


def check_second_layer_gradients(
    func: Callable[..., object],
    *,
    seed: int = 9,
    width: int = 5,
    n_points: int = 30,
    name: str = "ex_second_layer_gradients",
) -> str:
    """Check ``func(model, x) -> (grad_W2, grad_b2)`` for a network with two hidden layers.

    ``grad_W2`` has shape (n, width, width) (index ``[k, i, j]`` is ∂y(x_k)/∂W2[i, j], with
    ``W2 = model[2].weight`` of shape (out, in)) and ``grad_b2`` shape (n, width).
    """
    net, x = _setup(seed, width, 2, n_points)
    grads = _reference_grads(net, x)
    g_w2, g_b2 = grads[2], grads[3]
    with torch.no_grad():
        h1 = _numpy(torch.relu(net[0](x)))
        pre2 = _numpy(net[2](torch.relu(net[0](x))))
        v = _numpy(net[4].weight)[0]
    mask2 = (pre2 > 0).astype(np.float64)
    with captured_warnings() as caught:
        result = call_student(name, func, copy.deepcopy(net), x.clone())
    got_w, got_b = unpack(result, ("grad_W2", "grad_b2"), name)
    got_w = to_array(got_w, "grad_W2", allow_numpy=True)
    got_b = to_array(got_b, "grad_b2", allow_numpy=True)
    meaning_w = "point, output unit i, input unit j of the second layer"
    if got_w.shape == (n_points, width * width):
        got_w = got_w.reshape(n_points, width, width)
    got_w = _shape_of(got_w, (n_points, width, width), "grad_W2", meaning_w)
    got_b = _shape_of(got_b, (n_points, width), "grad_b2", "one row per point")
    _diagnose("grad_W2", got_w, g_w2, {
        "the last two axes are swapped: W2 = model[2].weight has shape (out, in), so "
        "grad_W2[k, i, j] = ∂y(x_k)/∂W2[i, j]": g_w2.transpose(0, 2, 1),
        "the second layer's ReLU derivative is missing": (v[None, :, None] * h1[:, None, :])
        + 0.0 * g_w2,
        "the factor h1 (the first hidden layer's activity) is missing": np.broadcast_to(
            g_b2[:, :, None], g_w2.shape
        ),
    })
    _diagnose("grad_b2", got_b, g_b2, {
        "the second layer's ReLU derivative is missing": np.broadcast_to(v, g_b2.shape),
        "the output weight is missing": mask2,
        "these are the first layer's bias gradients ∂y/∂b₁; this exercise asks for the second "
        "layer (model[2])": grads[1],
    })
    return (
        f"{name} gives ∂y/∂W₂ and ∂y/∂b₂ at all {n_points} points for a two-hidden-layer network "
        f"of width {width}." + warning_note(caught)
    )
