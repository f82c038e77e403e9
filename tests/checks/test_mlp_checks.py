"""The T5 checks (backpropagation by layers) accept correct answers and name the wrong ones.

For each layer: the reference, at least two alternative correct answers, and at least four wrong
answers seen in practice, each with the message it must produce (layer and quantity named).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dlnn_helpers.checks._core import CheckFailure, NotImplementedYet, self_check
from dlnn_helpers.checks.mlp import check_linear_layer, check_relu_layer, check_squared_error
from dlnn_reference import mlp as bp


def pattern(message: str) -> str:
    """A regular expression for ``message``, in which "…" stands for any text (the case)."""
    return ".*".join(re.escape(part) for part in message.split("…"))

# ------------------------------------------------------------------------------------------ linear


def lin_fwd_matmul(x, w, b):
    return torch.matmul(x, w.t()) + b.unsqueeze(0)


def lin_fwd_einsum(x, w, b):
    return torch.einsum("bi,oi->bo", x, w) + b


def lin_fwd_numpy(x, w, b):
    return x.numpy() @ w.numpy().T + b.numpy()


def lin_bwd_einsum(g, x, w):
    return (torch.einsum("bo,oi->bi", g, w), torch.einsum("bo,bi->oi", g, x), g.sum(0))


def lin_bwd_loop(g, x, w):
    gw = torch.zeros_like(w)
    for k in range(x.shape[0]):  # the outer products of the examples add up
        gw += torch.outer(g[k], x[k])
    return [g @ w, gw, torch.sum(g, dim=0)]


def lin_fwd_no_bias(x, w, b):
    return x @ w.T


def lin_bwd_transposed_w(g, x, w):
    return g @ w, x.T @ g, g.sum(0)


def lin_bwd_mean_bias(g, x, w):
    return g @ w, g.T @ x, g.mean(0)


def lin_bwd_no_sum_bias(g, x, w):
    return g @ w, g.T @ x, g


def lin_bwd_divided(g, x, w):
    return g @ w, g.T @ x / x.shape[0], g.sum(0)


def lin_bwd_wrong_order(g, x, w):
    return g.T @ x, g @ w, g.sum(0)


@pytest.mark.parametrize(
    "fwd, bwd",
    [(bp.linear_forward, bp.linear_backward), (lin_fwd_matmul, lin_bwd_einsum),
     (lin_fwd_einsum, lin_bwd_loop)],
)
def test_linear_accepts_correct_answers(fwd, bwd):
    assert "agree with autograd" in check_linear_layer(fwd, backward=bwd)
    assert "agree" in check_linear_layer(fwd, backward=bwd, seed=99, n_cases=6)


@pytest.mark.parametrize(
    "fwd, bwd, message",
    [
        (lin_fwd_no_bias, bp.linear_backward,
         "Linear forward: the output (B=1, …) is wrong: the bias is missing"),
        (bp.linear_forward, lin_bwd_transposed_w, "Linear backward: grad_weight (B=1, …) has shape"),
        (bp.linear_forward, lin_bwd_mean_bias,
         "Linear backward: grad_bias (B=…) is wrong: it is averaged"),
        (bp.linear_forward, lin_bwd_no_sum_bias, "grad_bias (B=1, …) has shape (1, …, the shape of b: it has "
                                                 "an extra axis of size 1: ∂L/∂b = grad_out.sum(dim=0)"),
        (bp.linear_forward, lin_bwd_divided,
         "grad_weight (B=…) is wrong: it is divided by the batch size"),
        (bp.linear_forward, lin_bwd_wrong_order, "Linear backward: grad_x (B=1, …) has shape"),
        (lin_fwd_numpy, bp.linear_backward, "Linear forward: the output (B=1, …) is a np.ndarray of "
                                            "dtype float64 and shape (1, …); it should be a "
                                            "torch.Tensor of dtype torch.float64"),
        (lambda x, w, b: (x @ w.T + b).float(), bp.linear_backward,
         "Linear forward: the output (B=1, …) has dtype torch.float32; it should be torch.float64"),
        (bp.linear_forward, lambda g, x, w: (g @ w, g.T @ x, g.sum(0, keepdim=True)),
         "Linear backward: grad_bias (B=1, …) has shape (1, …); it should have shape (…) = (n_out,), "
         "the shape of b: it has an extra axis of size 1"),
    ],
)
def test_linear_rejects_wrong_answers(fwd, bwd, message):
    with pytest.raises(CheckFailure, match=pattern(message)):
        check_linear_layer(fwd, backward=bwd)


def test_linear_transposed_weight_gradient_is_named():
    with pytest.raises(CheckFailure) as info:
        check_linear_layer(bp.linear_forward, backward=lin_bwd_transposed_w)
    assert "transposed" in str(info.value) and "B=1" in str(info.value)


def test_linear_shape_error_keeps_the_students_exception():
    def fwd_w_not_transposed(x, w, b):
        return x @ w + b

    with pytest.raises(CheckFailure) as info:
        check_linear_layer(fwd_w_not_transposed, backward=bp.linear_backward)
    assert "ex_linear_forward raised RuntimeError" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_linear_not_implemented_and_untrusted_types(capsys):
    def todo(*args):
        raise NotImplementedError

    with pytest.raises(NotImplementedYet, match="ex_linear_backward is not implemented yet"):
        check_linear_layer(bp.linear_forward, backward=todo)

    class Sneaky(torch.Tensor):
        pass

    def sneaky(x, w, b):
        return (x @ w.T + b).as_subclass(Sneaky)

    with pytest.raises(CheckFailure, match=r"Sneaky \(a subclass of torch.Tensor\); it should be a "
                       "torch.Tensor"):
        check_linear_layer(sneaky, backward=bp.linear_backward)
    assert self_check(check_linear_layer, bp.linear_forward, backward=bp.linear_backward)
    assert capsys.readouterr().err == ""


# -------------------------------------------------------------------------------------------- relu


def relu_fwd_max(x):
    return torch.maximum(x, torch.zeros_like(x))


def relu_fwd_where(x):
    return torch.where(x > 0, x, 0.0)


def relu_bwd_where(g, x):
    return torch.where(x > 0, g, torch.zeros_like(g))


def relu_bwd_heaviside(g, x):
    return g * torch.heaviside(x, torch.tensor(0.0, dtype=x.dtype))


@pytest.mark.parametrize(
    "fwd, bwd",
    [(bp.relu_forward, bp.relu_backward), (relu_fwd_max, relu_bwd_where),
     (relu_fwd_where, relu_bwd_heaviside), (torch.relu, relu_bwd_where)],
)
def test_relu_accepts_correct_answers(fwd, bwd):
    assert "agree with autograd" in check_relu_layer(fwd, backward=bwd)
    assert "agree" in check_relu_layer(fwd, backward=bwd, seed=3, n_cases=5)


@pytest.mark.parametrize(
    "fwd, bwd, message",
    [
        (torch.abs, bp.relu_backward,
         "ReLU forward: the output (shape …) is wrong: that is the absolute value"),
        (lambda x: torch.clamp(x, max=0.0), bp.relu_backward, "negative inputs should become 0"),
        (bp.relu_forward, lambda g, x: (x > 0).double(),
         "ReLU backward: grad_x (shape …) is wrong: grad_out is missing"),
        (bp.relu_forward, lambda g, x: g * torch.relu(x), "the derivative of ReLU is 1[x > 0], not relu(x)"),
        (bp.relu_forward, lambda g, x: g, "the ReLU's derivative is missing"),
        (bp.relu_forward, lambda g, x: g * torch.sign(x), "it uses sign(x)"),
        (bp.relu_forward, lambda g, x: g * (x < 0), "the mask is inverted"),
        (bp.relu_forward, lambda g, x: (g * (x > 0)).float(),
         "ReLU backward: grad_x (shape …) has dtype torch.float32; it should be torch.float64"),
        (lambda x: torch.relu(x).numpy(), bp.relu_backward,
         "ReLU forward: the output (shape …) is a np.ndarray of dtype float64"),
    ],
)
def test_relu_rejects_wrong_answers(fwd, bwd, message):
    with pytest.raises(CheckFailure, match=pattern(message)):
        check_relu_layer(fwd, backward=bwd)


# --------------------------------------------------------------------------------- squared error


def mse_fwd_functional(p, t):
    return torch.nn.functional.mse_loss(p, t)


def mse_fwd_float(p, t):
    return float(((p - t) ** 2).sum() / p.numel())


def mse_bwd_shape(p, t):
    n = p.shape[0] * p.shape[1]
    return (p - t) * (2.0 / n)


@pytest.mark.parametrize(
    "fwd, bwd",
    [(bp.mse_forward, bp.mse_backward), (mse_fwd_functional, mse_bwd_shape),
     (mse_fwd_float, bp.mse_backward)],
)
def test_squared_error_accepts_correct_answers(fwd, bwd):
    assert "agree with autograd" in check_squared_error(fwd, backward=bwd)
    assert "agree" in check_squared_error(fwd, backward=bwd, seed=8, n_cases=5)


@pytest.mark.parametrize(
    "fwd, bwd, message",
    [
        (lambda p, t: ((p - t) ** 2).sum(), bp.mse_backward, "the loss (…) is wrong: it is the sum"),
        (lambda p, t: ((p - t) ** 2).sum() / p.shape[0], bp.mse_backward, "averaged over the batch only"),
        (lambda p, t: 0.5 * ((p - t) ** 2).mean(), bp.mse_backward, "an extra 1/2 factor"),
        (lambda p, t: (p - t) ** 2, bp.mse_backward,
         "Squared error forward: the loss (pred of shape (…)) has shape (…); it should have shape () "
         "= a single number: a 0-d tensor or a float"),
        (lambda p, t: ((p - t) ** 2).mean(dim=0), bp.mse_backward, "it should have shape ()"),
        (lambda p, t: ((p - t) ** 2).mean().reshape(1), bp.mse_backward,
         "has shape (1,); it should have shape () = a single number: a 0-d tensor or a float: it "
         "has an extra axis of size 1"),
        (lambda p, t: ((p - t) ** 2).mean().float(), bp.mse_backward,
         "has dtype torch.float32; it should be torch.float64"),
        (bp.mse_forward, lambda p, t: (p - t) / p.numel(),
         "Squared error backward: grad_pred (…) is wrong: the factor 2"),
        (bp.mse_forward, lambda p, t: 2 * (p - t), "not divided by the number of entries"),
        (bp.mse_forward, lambda p, t: 2 * (t - p) / p.numel(), "the sign is flipped"),
        (bp.mse_forward, lambda p, t: 2 * (p - t) / p.shape[0], "divided by the batch size only"),
    ],
)
def test_squared_error_rejects_wrong_answers(fwd, bwd, message):
    with pytest.raises(CheckFailure, match=pattern(message)):
        check_squared_error(fwd, backward=bwd)


def test_batch_size_one_is_among_the_shapes():
    seen = []

    def spy(x, w, b):
        seen.append(x.shape[0])
        return bp.linear_forward(x, w, b)

    check_linear_layer(spy, backward=bp.linear_backward)
    assert seen[0] == 1 and len(set(seen)) > 1
    assert np.all(np.array(seen) >= 1)
