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
from ._contract import expect_tensor
from ._core import CheckFailure, call_student, captured_warnings, close, unpack, warning_note
from ._diagnosis import Mistake, judge, matches


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


def _per_point_mistakes(expected: np.ndarray) -> list[Mistake]:
    """Mistakes of every per-point gradient: accumulation, a summed loss, a flipped sign."""
    return [
        Mistake("the gradients accumulate from point to point: reset them (model.zero_grad(), or "
                "p.grad = None) before every backward pass", lambda: np.cumsum(expected, axis=0)),
        Mistake("every row holds the gradient summed over all points: compute the derivative of "
                "y(x_i) for each point separately, not of y.sum()",
                lambda: np.broadcast_to(expected.sum(axis=0, keepdims=True), expected.shape)),
        Mistake("the sign is flipped", lambda: -expected),
    ]


def _transposed(shape: tuple[int, ...], meaning: str) -> dict[tuple[int, ...], str]:
    """A shape hint for the transposed layout (points along the last axis instead of the first)."""
    wrong = tuple(reversed(shape))
    if wrong == shape:
        return {}
    return {wrong: f"it looks transposed: put the points along the first axis ({meaning})"}


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
    ``v_i 1[w_i x + b_i > 0] x`` and ``v_i 1[w_i x + b_i > 0]``.  The contract (the exercise's
    docstring): two float32 tensors of shape exactly (n, width) — not (n, width, 1).
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
    shape, meaning = (n_points, width), "(n, width): one row per point, one column per hidden unit"
    hints = _transposed(shape, "one row per point")
    hints_w = {**hints, (n_points, width, 1): "it has an extra axis of size 1 (model[0].weight has "
               "shape (width, 1), and so has its gradient): flatten each point's gradient, e.g. "
               "reshape(n, width)"}
    got_w = expect_tensor(got_w, "grad_w", shape=shape, meaning=meaning, shape_hints=hints_w)
    got_b = expect_tensor(got_b, "grad_b", shape=shape, meaning=meaning, shape_hints=hints)
    if matches((got_w, got_b), (g_b, g_w)) and not matches(got_w, g_w):
        raise CheckFailure(f"{name} returned (grad_b, grad_w): return them in the order "
                           "(grad_w, grad_b).")
    judge("grad_w", got_w, g_w, [
        Mistake("the factor x is missing: ∂(w x + b)/∂w = x, so ∂y/∂w = ∂y/∂b · x", g_b),
        Mistake("the ReLU's derivative 1[w x + b > 0] is missing", v * xs),
        Mistake("the output weight v (the second layer's weight) is missing: ∂y/∂w_i = v_i "
                "1[w_i x + b_i > 0] x", mask * xs),
        Mistake("these are the hidden activations relu(w x + b), not derivatives of y", hidden),
        *_per_point_mistakes(g_w),
    ])
    judge("grad_b", got_b, g_b, [
        Mistake("the ReLU's derivative 1[w x + b > 0] is missing", np.broadcast_to(v, g_b.shape)),
        Mistake("the output weight v (the second layer's weight) is missing: ∂y/∂b_i = v_i "
                "1[w_i x + b_i > 0]", mask),
        Mistake("this is ∂y/∂w (it has the factor x); ∂y/∂b has none", g_w),
        Mistake("these are the hidden activations relu(w x + b), not derivatives of y", hidden),
        *_per_point_mistakes(g_b),
    ])
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
    ``p.reshape(-1)``). ``depth`` selects one or two hidden layers.  The contract: a float32 tensor
    of shape (n, d).
    """
    net, x = _setup(seed, width, depth, n_points)
    grads = _reference_grads(net, x)
    blocks = [g.reshape(n_points, -1) for g in grads]
    expected = np.concatenate(blocks, axis=1)
    d = expected.shape[1]
    with captured_warnings() as caught:
        result = call_student(name, func, copy.deepcopy(net), x.clone())
    first = sum(b.shape[1] for b in blocks[:2])
    hints = _transposed((n_points, d), "one row per point, one column per parameter")
    if d != first:
        hints[(n_points, first)] = (f"{first} columns are the first layer's parameters only; it "
                                    f"needs one column per parameter of the whole network ({d})")
    got = expect_tensor(result, "the feature matrix", shape=(n_points, d),
                        meaning=f"(n, d) with n = {n_points} points, d = {d} parameters",
                        shape_hints=hints)
    weights_then_biases = np.concatenate(blocks[0::2] + blocks[1::2], axis=1)
    transposed_weights = np.concatenate(
        [g.transpose(0, 2, 1).reshape(n_points, -1) if g.ndim == 3 else g.reshape(n_points, -1)
         for g in grads], axis=1,
    )
    reversed_layers = np.concatenate(blocks[::-1], axis=1)
    permuted = (not close(got, expected)
                and np.allclose(np.sort(got, axis=1), np.sort(expected, axis=1)))
    judge("the feature matrix", got, expected, [
        Mistake("the columns are in another order: all weights first, then all biases; follow "
                "model.parameters() (weight, bias of each layer in turn)", weights_then_biases),
        Mistake("each weight matrix is flattened column by column (its transpose); flatten p.grad "
                "as p.grad.reshape(-1)", transposed_weights),
        Mistake("the layers are in reverse order; follow model.parameters()", reversed_layers),
        *_per_point_mistakes(expected),
        Mistake("it holds the right numbers in the wrong columns: follow model.parameters(), each "
                "flattened with reshape(-1)", got if permuted else None),
    ])
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
    ``principal.T @ principal = diag(s²)`` and ``principal @ principal.T = F F^T``.  The
    contract (the exercise's docstring): two tensors of the dtype of ``features``, ``s`` of shape
    (r,) and ``principal`` of shape (n, r), r = min(n, d).
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
    n, d = f.shape
    dtype = features.dtype
    got_s = expect_tensor(got_s, "s", shape=(r,), dtype=dtype,
                          meaning="(r,) with r = min(n, d): one singular value per column of the "
                          "thin SVD")
    p_hints = {}
    if d != n:
        p_hints[(d, r)] = ("that is a (d, r) matrix, probably V diag(s); the principal features "
                           "live on the points: U diag(s)")
    if n != r:
        p_hints[(n, n)] = ("that is the full U of full_matrices=True; use the thin SVD "
                           "(full_matrices=False)")
    got_p = expect_tensor(got_p, "principal", shape=(n, r), dtype=dtype,
                          meaning="(n, r): one row per point, one column per singular value",
                          shape_hints=p_hints)
    judge("s", got_s, s, [
        Mistake("it holds the squares of the singular values (eigenvalues of FᵀF); take the "
                "singular values themselves", s**2),
        Mistake("it is in increasing order; the SVD lists singular values from the largest down",
                s[::-1]),
    ], rtol=1e-6, advice="s holds the singular values of the feature matrix, largest first.")
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
    ``W2 = model[2].weight`` of shape (out, in)) and ``grad_b2`` shape (n, width); both float32
    tensors (the contract of the exercise's docstring).
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
    meaning_w = "(n, m, m): point k, output unit i, input unit j of the second layer"
    got_w = expect_tensor(got_w, "grad_W2", shape=(n_points, width, width), meaning=meaning_w,
                          shape_hints={(n_points, width * width): "each point's gradient is "
                                       "flattened; keep the shape of W2, (m, m)"})
    got_b = expect_tensor(got_b, "grad_b2", shape=(n_points, width),
                          meaning="(n, m): one row per point",
                          shape_hints={**_transposed((n_points, width), "one row per point"),
                                       (n_points, width, 1): "it has an extra axis of size 1: "
                                       "return shape (n, m)"})
    judge("grad_W2", got_w, g_w2, [
        Mistake("the last two axes are swapped: W2 = model[2].weight has shape (out, in), so "
                "grad_W2[k, i, j] = ∂y(x_k)/∂W2[i, j]", g_w2.transpose(0, 2, 1)),
        Mistake("the second layer's ReLU derivative is missing", v[None, :, None] * h1[:, None, :]),
        Mistake("the factor h1 (the first hidden layer's activity) is missing",
                np.broadcast_to(g_b2[:, :, None], g_w2.shape)),
        *_per_point_mistakes(g_w2),
    ])
    judge("grad_b2", got_b, g_b2, [
        Mistake("the second layer's ReLU derivative is missing", np.broadcast_to(v, g_b2.shape)),
        Mistake("the output weight is missing", mask2),
        Mistake("these are the first layer's bias gradients ∂y/∂b₁; this exercise asks for the "
                "second layer (model[2])", grads[1]),
        *_per_point_mistakes(g_b2),
    ])
    return (
        f"{name} gives ∂y/∂W₂ and ∂y/∂b₂ at all {n_points} points for a two-hidden-layer network "
        f"of width {width}." + warning_note(caught)
    )
