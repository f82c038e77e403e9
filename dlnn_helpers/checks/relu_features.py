"""Checks of the graded exercises of tutorial 6 (linearised features of ReLU networks).

Each check builds its own network (:func:`seeded_network`, from
:func:`~dlnn_helpers.relu_features.make_relu_net`) and inputs from a ``seed``, calls the student's
function on a copy, and only then asks for the expected values of its settings
(:func:`~._expected.expected`: shipped with the package for the self-checks, computed by the
instructor's reference for the hidden tests), which hold the right answer and the output of every
known mistake.  Answers written with a Python loop over points (``model.zero_grad();
model(x_i).backward()``) are as welcome as vectorised ones (``torch.func``): the notebook asks for
autograd, so these exercises refuse no library routine; like every check, they refuse the course's
own expected values (:mod:`._shortcuts`).

:func:`check_principal_features` needs no expected values: it hands the student a matrix whose
singular value decomposition it built itself (:func:`principal_case`) and checks the defining
properties of the answer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from ..relu_features import make_relu_net
from ._contract import expect_tensor
from ._core import CheckFailure, call_student, captured_warnings, close, unpack, warning_note
from ._diagnosis import Mistake, judge, matches
from ._expected import expected
from ._registry import registered
from ._shortcuts import student_code

_REFUSED_FIRST = ()
_REFUSED_MATRIX = ()
_REFUSED_PRINCIPAL = ()
_REFUSED_SECOND = ()


def seeded_network(
    seed: int, width: int, depth: int, n_points: int
) -> tuple[torch.nn.Sequential, torch.Tensor]:
    """The network and the sorted inputs (n_points, 1) a check hands to the student's function."""
    generator = torch.Generator().manual_seed(seed)
    net = make_relu_net(width, depth, generator=generator)
    with torch.no_grad():  # a "trained-looking" network: output weights of both signs, away from 0
        out = net[-1]
        out.weight.copy_(torch.randn(out.weight.shape, generator=generator))
        out.bias.fill_(0.3)
    x = torch.sort(torch.rand(n_points, 1, generator=generator), dim=0).values
    return net, x


def principal_case(seed: int, n_points: int, width: int) -> tuple[torch.Tensor, np.ndarray]:
    """A float64 matrix ``F = U diag(s) Vᵀ`` of the shape of a feature matrix, (n, 3·width + 1), and
    its singular values ``s`` (decreasing, over five orders of magnitude), built from random
    orthonormal ``U`` and ``V``."""
    generator = torch.Generator().manual_seed(seed)
    n, d = n_points, 3 * width + 1
    r = min(n, d)
    u = torch.linalg.qr(torch.randn(n, r, generator=generator, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(d, r, generator=generator, dtype=torch.float64)).Q
    jitter = 1.0 + 0.1 * torch.rand(r, generator=generator, dtype=torch.float64)
    s = 20.0 * 10.0 ** (-5.0 * torch.arange(r, dtype=torch.float64) / max(r - 1, 1)) * jitter
    return (u * s) @ v.T, s.numpy().copy()


def _call(name: str, func: Callable[..., object], refused: tuple[str, ...], *args: object) -> object:
    """Call the student's function inside its shortcut window; raise what the window found."""
    with student_code(name, refused) as window:
        result = call_student(name, func, *args)
    window.verdict()
    return result


def _per_point_mistakes(expected_value: np.ndarray) -> list[Mistake]:
    """Mistakes of every per-point gradient: accumulation, a summed loss, a flipped sign."""
    return [
        Mistake("the gradients accumulate from point to point: reset them (model.zero_grad(), or "
                "p.grad = None) before every backward pass", lambda: np.cumsum(expected_value, axis=0)),
        Mistake("every row holds the gradient summed over all points: compute the derivative of "
                "y(x_i) for each point separately, not of y.sum()",
                lambda: np.broadcast_to(expected_value.sum(axis=0, keepdims=True), expected_value.shape)),
        Mistake("the sign is flipped", lambda: -expected_value),
    ]


def _transposed(shape: tuple[int, ...], meaning: str) -> dict[tuple[int, ...], str]:
    """A shape hint for the transposed layout (points along the last axis instead of the first)."""
    wrong = tuple(reversed(shape))
    if wrong == shape:
        return {}
    return {wrong: f"it looks transposed: put the points along the first axis ({meaning})"}


def _array(value: object) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# ex_first_layer_gradients
# ----------------------------------------------------------------------------------------------


@registered("ex_first_layer_gradients", refuses=_REFUSED_FIRST)
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
    net, x = seeded_network(seed, width, 1, n_points)
    with captured_warnings() as caught:
        result = _call(name, func, _REFUSED_FIRST, copy.deepcopy(net), x.clone())
    got_w, got_b = unpack(result, ("grad_w", "grad_b"), name)
    shape, meaning = (n_points, width), "(n, width): one row per point, one column per hidden unit"
    hints = _transposed(shape, "one row per point")
    hints_w = {**hints, (n_points, width, 1): "it has an extra axis of size 1 (model[0].weight has "
               "shape (width, 1), and so has its gradient): flatten each point's gradient, e.g. "
               "reshape(n, width)"}
    got_w = expect_tensor(got_w, "grad_w", shape=shape, meaning=meaning, shape_hints=hints_w)
    got_b = expect_tensor(got_b, "grad_b", shape=shape, meaning=meaning, shape_hints=hints)
    exp = expected("check_first_layer_gradients", seed=seed, width=width, n_points=n_points)
    g_w, g_b = (_array(g) for g in exp["correct"])
    if matches((got_w, got_b), (g_b, g_w)) and not matches(got_w, g_w):
        raise CheckFailure(f"{name} returned (grad_b, grad_w): return them in the order "
                           "(grad_w, grad_b).")
    judge("grad_w", got_w, g_w, [
        Mistake("the factor x is missing: ∂(w x + b)/∂w = x, so ∂y/∂w = ∂y/∂b · x", g_b),
        Mistake("the ReLU's derivative 1[w x + b > 0] is missing", exp["v x"]),
        Mistake("the output weight v (the second layer's weight) is missing: ∂y/∂w_i = v_i "
                "1[w_i x + b_i > 0] x", exp["mask x"]),
        Mistake("these are the hidden activations relu(w x + b), not derivatives of y",
                exp["hidden"]),
        *_per_point_mistakes(g_w),
    ])
    judge("grad_b", got_b, g_b, [
        Mistake("the ReLU's derivative 1[w x + b > 0] is missing",
                np.broadcast_to(_array(exp["v"]), g_b.shape)),
        Mistake("the output weight v (the second layer's weight) is missing: ∂y/∂b_i = v_i "
                "1[w_i x + b_i > 0]", exp["mask"]),
        Mistake("this is ∂y/∂w (it has the factor x); ∂y/∂b has none", g_w),
        Mistake("these are the hidden activations relu(w x + b), not derivatives of y",
                exp["hidden"]),
        *_per_point_mistakes(g_b),
    ])
    return (
        f"{name} gives ∂y/∂w₁ and ∂y/∂b₁ at all {n_points} points for a width-{width} network."
        + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ex_feature_matrix
# ----------------------------------------------------------------------------------------------


@registered("ex_feature_matrix", refuses=_REFUSED_MATRIX)
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
    net, x = seeded_network(seed, width, depth, n_points)
    shapes = [tuple(p.shape) for p in net.parameters()]
    sizes = [int(np.prod(shape)) for shape in shapes]
    d = sum(sizes)
    with captured_warnings() as caught:
        result = _call(name, func, _REFUSED_MATRIX, copy.deepcopy(net), x.clone())
    first = sum(sizes[:2])
    hints = _transposed((n_points, d), "one row per point, one column per parameter")
    if d != first:
        hints[(n_points, first)] = (f"{first} columns are the first layer's parameters only; it "
                                    f"needs one column per parameter of the whole network ({d})")
    got = expect_tensor(result, "the feature matrix", shape=(n_points, d),
                        meaning=f"(n, d) with n = {n_points} points, d = {d} parameters",
                        shape_hints=hints)
    exp = expected("check_feature_matrix", seed=seed, width=width, depth=depth, n_points=n_points)
    expected_value = _array(exp["correct"])
    edges = np.cumsum([0] + sizes)
    blocks = [expected_value[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    weights_then_biases = np.concatenate(blocks[0::2] + blocks[1::2], axis=1)
    transposed_weights = np.concatenate(
        [b.reshape(n_points, *shape).transpose(0, 2, 1).reshape(n_points, -1) if len(shape) == 2
         else b for b, shape in zip(blocks, shapes, strict=True)], axis=1,
    )
    reversed_layers = np.concatenate(blocks[::-1], axis=1)
    permuted = (not close(got, expected_value)
                and np.allclose(np.sort(got, axis=1), np.sort(expected_value, axis=1)))
    judge("the feature matrix", got, expected_value, [
        Mistake("the columns are in another order: all weights first, then all biases; follow "
                "model.parameters() (weight, bias of each layer in turn)", weights_then_biases),
        Mistake("each weight matrix is flattened column by column (its transpose); flatten p.grad "
                "as p.grad.reshape(-1)", transposed_weights),
        Mistake("the layers are in reverse order; follow model.parameters()", reversed_layers),
        *_per_point_mistakes(expected_value),
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


@registered("ex_principal_features", refuses=_REFUSED_PRINCIPAL)
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
    features, s = principal_case(seed, n_points, width)
    f = features.numpy().copy()
    r = len(s)
    with captured_warnings() as caught:
        result = _call(name, func, _REFUSED_PRINCIPAL, features.clone())
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


@registered("ex_second_layer_gradients", refuses=_REFUSED_SECOND)
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
    net, x = seeded_network(seed, width, 2, n_points)
    with captured_warnings() as caught:
        result = _call(name, func, _REFUSED_SECOND, copy.deepcopy(net), x.clone())
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
    exp = expected("check_second_layer_gradients", seed=seed, width=width, n_points=n_points)
    g_w2, g_b2 = (_array(g) for g in exp["correct"])
    v = _array(exp["v"])
    judge("grad_W2", got_w, g_w2, [
        Mistake("the last two axes are swapped: W2 = model[2].weight has shape (out, in), so "
                "grad_W2[k, i, j] = ∂y(x_k)/∂W2[i, j]", g_w2.transpose(0, 2, 1)),
        Mistake("the second layer's ReLU derivative is missing", exp["no second mask"]),
        Mistake("the factor h1 (the first hidden layer's activity) is missing",
                np.broadcast_to(g_b2[:, :, None], g_w2.shape)),
        *_per_point_mistakes(g_w2),
    ])
    judge("grad_b2", got_b, g_b2, [
        Mistake("the second layer's ReLU derivative is missing", np.broadcast_to(v, g_b2.shape)),
        Mistake("the output weight is missing", exp["mask"]),
        Mistake("these are the first layer's bias gradients ∂y/∂b₁; this exercise asks for the "
                "second layer (model[2])", exp["first layer bias"]),
        *_per_point_mistakes(g_b2),
    ])
    return (
        f"{name} gives ∂y/∂W₂ and ∂y/∂b₂ at all {n_points} points for a two-hidden-layer network "
        f"of width {width}." + warning_note(caught)
    )
