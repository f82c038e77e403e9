"""The T5 checks (backpropagation by layers) accept correct answers and name the wrong ones.

For each layer: the reference, at least two alternative correct answers, and at least four wrong
answers seen in practice, each with the message it must produce (layer and quantity named).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import dlnn_helpers
from dlnn_helpers import mlp_backprop
from dlnn_helpers.checks import CheckFailure, ShortcutUsed, _expected
from dlnn_helpers.checks._core import NotImplementedYet, self_check
from dlnn_helpers.checks.mlp import check_linear_layer, check_relu_layer, check_squared_error
from dlnn_reference import mlp as ref


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
    [(ref.linear_forward, ref.linear_backward), (lin_fwd_matmul, lin_bwd_einsum),
     (lin_fwd_einsum, lin_bwd_loop)],
)
def test_linear_accepts_correct_answers(fwd, bwd):
    assert "agree with autograd" in check_linear_layer(fwd, backward=bwd)
    assert "agree" in check_linear_layer(fwd, backward=bwd, seed=99, n_cases=6)


@pytest.mark.parametrize(
    "fwd, bwd, message",
    [
        (lin_fwd_no_bias, ref.linear_backward,
         "Linear forward: the output (B=1, …) is wrong: the bias is missing"),
        (ref.linear_forward, lin_bwd_transposed_w, "Linear backward: grad_weight (B=1, …) has shape"),
        (ref.linear_forward, lin_bwd_mean_bias,
         "Linear backward: grad_bias (B=…) is wrong: it is averaged"),
        (ref.linear_forward, lin_bwd_no_sum_bias,
         "grad_bias (B=1, …) has shape (1, …, the shape of b: it has "
                                                 "an extra axis of size 1: ∂L/∂b = grad_out.sum(dim=0)"),
        (ref.linear_forward, lin_bwd_divided,
         "grad_weight (B=…) is wrong: it is divided by the batch size"),
        (ref.linear_forward, lin_bwd_wrong_order, "Linear backward: grad_x (B=1, …) has shape"),
        (lin_fwd_numpy, ref.linear_backward, "Linear forward: the output (B=1, …) is a np.ndarray of "
                                            "dtype float64 and shape (1, …); it should be a "
                                            "torch.Tensor of dtype torch.float64"),
        (lambda x, w, b: (x @ w.T + b).float(), ref.linear_backward,
         "Linear forward: the output (B=1, …) has dtype torch.float32; it should be torch.float64"),
        (ref.linear_forward, lambda g, x, w: (g @ w, g.T @ x, g.sum(0, keepdim=True)),
         "Linear backward: grad_bias (B=1, …) has shape (1, …); it should have shape (…) = (n_out,), "
         "the shape of b: it has an extra axis of size 1"),
    ],
)
def test_linear_rejects_wrong_answers(fwd, bwd, message):
    with pytest.raises(CheckFailure, match=pattern(message)):
        check_linear_layer(fwd, backward=bwd)


def test_linear_transposed_weight_gradient_is_named():
    with pytest.raises(CheckFailure) as info:
        check_linear_layer(ref.linear_forward, backward=lin_bwd_transposed_w)
    assert "transposed" in str(info.value) and "B=1" in str(info.value)


def test_linear_shape_error_keeps_the_students_exception():
    def fwd_w_not_transposed(x, w, b):
        return x @ w + b

    with pytest.raises(CheckFailure) as info:
        check_linear_layer(fwd_w_not_transposed, backward=ref.linear_backward)
    assert "ex_linear_forward raised RuntimeError" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_linear_not_implemented_and_untrusted_types(capsys):
    def todo(*args):
        raise NotImplementedError

    with pytest.raises(NotImplementedYet, match="ex_linear_backward is not implemented yet"):
        check_linear_layer(ref.linear_forward, backward=todo)

    class Sneaky(torch.Tensor):
        pass

    def sneaky(x, w, b):
        return (x @ w.T + b).as_subclass(Sneaky)

    with pytest.raises(CheckFailure, match=r"Sneaky \(a subclass of torch.Tensor\); it should be a "
                       "torch.Tensor"):
        check_linear_layer(sneaky, backward=ref.linear_backward)
    assert self_check(check_linear_layer, ref.linear_forward, backward=ref.linear_backward)
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
    [(ref.relu_forward, ref.relu_backward), (relu_fwd_max, relu_bwd_where),
     (relu_fwd_where, relu_bwd_heaviside), (torch.relu, relu_bwd_where)],
)
def test_relu_accepts_correct_answers(fwd, bwd):
    assert "agree with autograd" in check_relu_layer(fwd, backward=bwd)
    assert "agree" in check_relu_layer(fwd, backward=bwd, seed=3, n_cases=5)


@pytest.mark.parametrize(
    "fwd, bwd, message",
    [
        (torch.abs, ref.relu_backward,
         "ReLU forward: the output (shape …) is wrong: that is the absolute value"),
        (lambda x: torch.clamp(x, max=0.0), ref.relu_backward, "negative inputs should become 0"),
        (ref.relu_forward, lambda g, x: (x > 0).double(),
         "ReLU backward: grad_x (shape …) is wrong: grad_out is missing"),
        (ref.relu_forward, lambda g, x: g * torch.relu(x), "the derivative of ReLU is 1[x > 0], not relu(x)"),
        (ref.relu_forward, lambda g, x: g, "the ReLU's derivative is missing"),
        (ref.relu_forward, lambda g, x: g * torch.sign(x), "it uses sign(x)"),
        (ref.relu_forward, lambda g, x: g * (x < 0), "the mask is inverted"),
        (ref.relu_forward, lambda g, x: (g * (x > 0)).float(),
         "ReLU backward: grad_x (shape …) has dtype torch.float32; it should be torch.float64"),
        (lambda x: torch.relu(x).numpy(), ref.relu_backward,
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
    [(ref.mse_forward, ref.mse_backward), (mse_fwd_functional, mse_bwd_shape),
     (mse_fwd_float, ref.mse_backward)],
)
def test_squared_error_accepts_correct_answers(fwd, bwd):
    assert "agree with autograd" in check_squared_error(fwd, backward=bwd)
    assert "agree" in check_squared_error(fwd, backward=bwd, seed=8, n_cases=5)


@pytest.mark.parametrize(
    "fwd, bwd, message",
    [
        (lambda p, t: ((p - t) ** 2).sum(), ref.mse_backward, "the loss (…) is wrong: it is the sum"),
        (lambda p, t: ((p - t) ** 2).sum() / p.shape[0], ref.mse_backward, "averaged over the batch only"),
        (lambda p, t: 0.5 * ((p - t) ** 2).mean(), ref.mse_backward, "an extra 1/2 factor"),
        (lambda p, t: (p - t) ** 2, ref.mse_backward,
         "Squared error forward: the loss (pred of shape (…)) has shape (…); it should have shape () "
         "= a single number: a 0-d tensor or a float"),
        (lambda p, t: ((p - t) ** 2).mean(dim=0), ref.mse_backward, "it should have shape ()"),
        (lambda p, t: ((p - t) ** 2).mean().reshape(1), ref.mse_backward,
         "has shape (1,); it should have shape () = a single number: a 0-d tensor or a float: it "
         "has an extra axis of size 1"),
        (lambda p, t: ((p - t) ** 2).mean().float(), ref.mse_backward,
         "has dtype torch.float32; it should be torch.float64"),
        (ref.mse_forward, lambda p, t: (p - t) / p.numel(),
         "Squared error backward: grad_pred (…) is wrong: the factor 2"),
        (ref.mse_forward, lambda p, t: 2 * (p - t), "not divided by the number of entries"),
        (ref.mse_forward, lambda p, t: 2 * (t - p) / p.numel(), "the sign is flipped"),
        (ref.mse_forward, lambda p, t: 2 * (p - t) / p.shape[0], "divided by the batch size only"),
    ],
)
def test_squared_error_rejects_wrong_answers(fwd, bwd, message):
    with pytest.raises(CheckFailure, match=pattern(message)):
        check_squared_error(fwd, backward=bwd)


def test_batch_size_one_is_among_the_shapes():
    seen = []

    def spy(x, w, b):
        seen.append(x.shape[0])
        return ref.linear_forward(x, w, b)

    check_linear_layer(spy, backward=ref.linear_backward)
    assert seen[0] == 1 and len(set(seen)) > 1
    assert np.all(np.array(seen) >= 1)


# ================================================================================================
# Cheating answers (were test_cheating_mlp.py):
# T5: answers that take a shortcut are refused by the self-check, with the message asserted.
# ================================================================================================

matplotlib.use("Agg")

SHIPPED = Path(_expected.SHIPPED) / "mlp.json"
BY_HAND = "the exercise is to compute the gradients by hand (no .backward, torch.autograd or torch.func)"
ENGINE = "autograd (.backward, torch.autograd.grad or torch.func)"
ANSWERS = ("reads the course's expected answers (the data the self-check compares with): the exercise "
           "is to compute them yourself")

# ======================================================================== autograd, however reached


def linear_backward_with_backward(grad_out, x, weight):
    x, weight = x.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    bias = torch.zeros(weight.shape[0], dtype=weight.dtype, requires_grad=True)
    (x @ weight.T + bias).backward(grad_out)
    return x.grad, weight.grad, bias.grad


def linear_backward_with_autograd_grad(grad_out, x, weight):
    x, weight = x.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    bias = torch.zeros(weight.shape[0], dtype=weight.dtype, requires_grad=True)
    return torch.autograd.grad(x @ weight.T + bias, (x, weight, bias), grad_out)


def linear_backward_with_built_name(grad_out, x, weight):
    grad = getattr(getattr(torch, "auto" + "grad"), "gr" + "ad")
    x, weight = x.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    bias = torch.zeros(weight.shape[0], dtype=weight.dtype, requires_grad=True)
    return grad(F.linear(x, weight, bias), (x, weight, bias), grad_out)


def linear_backward_with_functional_vjp(grad_out, x, weight):
    bias = torch.zeros(weight.shape[0], dtype=weight.dtype)
    return torch.autograd.functional.vjp(F.linear, (x, weight, bias), grad_out)[1]


def relu_backward_with_jacrev(grad_out, x):
    jacobian = getattr(torch.func, "jac" + "rev")(torch.relu)(x)  # (B, n, B, n)
    return torch.einsum("bi,bicj->cj", grad_out, jacobian)


def relu_backward_with_vjp(grad_out, x):
    return torch.func.vjp(torch.relu, x)[1](grad_out)[0]


def relu_backward_with_jacfwd(grad_out, x):
    return torch.einsum("bi,bicj->cj", grad_out, torch.func.jacfwd(torch.relu)(x))


class ReluFunction(torch.autograd.Function):
    """A custom autograd Function: its backward runs through autograd's engine all the same."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


def relu_backward_through_a_custom_function(grad_out, x):
    x = x.clone().requires_grad_(True)
    ReluFunction.apply(x).backward(grad_out)
    return x.grad


def mse_backward_with_grad(pred, target):
    return torch.func.grad(F.mse_loss)(pred, target)


def mse_backward_with_backward(pred, target):
    pred = pred.clone().requires_grad_(True)
    F.mse_loss(pred, target).backward()
    return pred.grad


def linear_forward_that_runs_a_backward_pass(x, weight, bias):
    probe = x.clone().requires_grad_(True)
    (probe @ weight.T).sum().backward()
    return x @ weight.T + bias


@pytest.mark.parametrize(
    ("check", "forward", "backward", "message"),
    [
        (check_linear_layer, ref.linear_forward, linear_backward_with_backward,
         f"ex_linear_backward uses {ENGINE}: {BY_HAND}"),
        (check_linear_layer, ref.linear_forward, linear_backward_with_autograd_grad,
         f"ex_linear_backward uses {ENGINE}: {BY_HAND}"),
        (check_linear_layer, ref.linear_forward, linear_backward_with_built_name,
         f"ex_linear_backward uses {ENGINE}: {BY_HAND}"),
        (check_linear_layer, ref.linear_forward, linear_backward_with_functional_vjp,
         f"ex_linear_backward uses {ENGINE}: {BY_HAND}"),
        (check_linear_layer, linear_forward_that_runs_a_backward_pass, ref.linear_backward,
         f"ex_linear_forward uses {ENGINE}: {BY_HAND}"),
        (check_relu_layer, ref.relu_forward, relu_backward_with_jacrev,
         f"ex_relu_backward uses torch.func.jacrev: {BY_HAND}"),
        (check_relu_layer, ref.relu_forward, relu_backward_with_vjp,
         f"ex_relu_backward uses torch.func.vjp: {BY_HAND}"),
        (check_relu_layer, ref.relu_forward, relu_backward_with_jacfwd,
         f"ex_relu_backward uses torch.func.jacfwd: {BY_HAND}"),
        (check_relu_layer, ref.relu_forward, relu_backward_through_a_custom_function,
         f"ex_relu_backward uses {ENGINE}: {BY_HAND}"),
        (check_squared_error, ref.mse_forward, mse_backward_with_grad,
         f"ex_mse_backward uses torch.func.grad: {BY_HAND}"),
        (check_squared_error, ref.mse_forward, mse_backward_with_backward,
         f"ex_mse_backward uses {ENGINE}: {BY_HAND}"),
        # the package's own stand-ins, used by the notebook until the exercises pass
        (check_linear_layer, ref.linear_forward, mlp_backprop.AUTOGRAD_LINEAR.backward,
         f"ex_linear_backward uses {ENGINE}: {BY_HAND}"),
        (check_relu_layer, ref.relu_forward, mlp_backprop.AUTOGRAD_RELU.backward,
         f"ex_relu_backward uses {ENGINE}: {BY_HAND}"),
        (check_squared_error, ref.mse_forward, mlp_backprop.AUTOGRAD_LOSS.backward,
         f"ex_mse_backward uses {ENGINE}: {BY_HAND}"),
        # the figure's ReLU derivative, wrapped into a backward pass
        (check_relu_layer, ref.relu_forward,
         lambda g, x: g * dlnn_helpers.mlp_activations.ACTIVATIONS["relu"].derivative(x),
         f"ex_relu_backward uses {ENGINE}: {BY_HAND}"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_autograd_is_refused_however_it_is_reached(check, forward, backward, message):
    with pytest.raises(ShortcutUsed) as info:
        check(forward, backward=backward)
    assert str(info.value) == message


def test_autograd_is_refused_on_the_hidden_settings_too():
    with pytest.raises(ShortcutUsed, match="ex_linear_backward uses autograd"):
        check_linear_layer(ref.linear_forward, backward=linear_backward_with_backward, seed=105,
                           n_cases=6)
    with _expected.shipped_only(), pytest.raises(ShortcutUsed, match="ex_relu_backward uses torch.func"):
        check_relu_layer(ref.relu_forward, backward=relu_backward_with_vjp, seed=106, n_cases=5)


def test_the_shortcut_is_named_before_a_crash_of_the_same_call():
    def backward_then_crash(grad_out, x):
        relu_backward_with_vjp(grad_out, x)
        raise RuntimeError("not finished")

    with pytest.raises(ShortcutUsed, match="ex_relu_backward uses torch.func.vjp"):
        check_relu_layer(ref.relu_forward, backward=backward_then_crash)


def test_the_checks_themselves_run_no_autograd_in_the_window():
    """The reference answers pass with autograd switched off entirely while the check runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("the check ran a backward pass")

    engine = torch.autograd.Variable._execution_engine
    with _expected.shipped_only():
        try:
            torch.autograd.Variable._execution_engine = type("NoEngine", (), {
                "run_backward": staticmethod(refuse)})()
            check_linear_layer(ref.linear_forward, backward=ref.linear_backward)
            check_relu_layer(ref.relu_forward, backward=ref.relu_backward)
            check_squared_error(ref.mse_forward, backward=ref.mse_backward)
        finally:
            torch.autograd.Variable._execution_engine = engine


# =========================================================================== the course's answers


def linear_backward_from_the_shipped_file(grad_out, x, weight):
    table = json.loads(SHIPPED.read_text(encoding="utf-8"))
    for key, value in table.items():
        if "check_linear_layer" in key:
            for _out, gx, gw, gb in _expected.decode(value)["correct"]:
                if tuple(gx.shape) == tuple(x.shape):
                    return (torch.tensor(gx), torch.tensor(gw), torch.tensor(gb))
    raise KeyError("not found")


def relu_backward_from_expected(grad_out, x):
    cases = _expected.expected("check_relu_layer", seed=6, n_cases=3)["correct"]
    for _, gx in cases:
        if tuple(gx.shape) == tuple(x.shape):
            return torch.tensor(gx)
    raise KeyError("not found")


def mse_forward_that_peeks(pred, target):
    with open(SHIPPED, "rb") as stream:  # only reads: the value is then computed correctly
        stream.read(10)
    return ref.mse_forward(pred, target)


@pytest.mark.parametrize(
    ("check", "forward", "backward", "exercise"),
    [
        (check_linear_layer, ref.linear_forward, linear_backward_from_the_shipped_file,
         "ex_linear_backward"),
        (check_relu_layer, ref.relu_forward, relu_backward_from_expected, "ex_relu_backward"),
        (check_squared_error, mse_forward_that_peeks, ref.mse_backward, "ex_mse_forward"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_the_course_answers_are_refused(check, forward, backward, exercise):
    with pytest.raises(ShortcutUsed) as info:
        check(forward, backward=backward)
    assert str(info.value) == f"{exercise} {ANSWERS}"


# ========================================================= nothing in the student package answers


MOVED = ["linear_forward", "linear_backward", "relu_forward", "relu_backward", "mse_forward",
         "mse_backward", "mlp_gradients_by_hand"]
T5_MODULES = ["dlnn_helpers.mlp_backprop", "dlnn_helpers.mlp_regression", "dlnn_helpers.mlp_activations",
              "dlnn_helpers.mlp_data", "dlnn_helpers.checks.mlp"]


def test_the_reference_layers_are_not_in_the_student_package():
    for name in MOVED:
        assert not hasattr(mlp_backprop, name) and not hasattr(dlnn_helpers, name), name
    for module_name in T5_MODULES:
        assert "dlnn_reference" not in inspect.getsource(importlib.import_module(module_name))


def test_the_package_chain_is_no_answer():
    with pytest.raises(CheckFailure, match="ex_linear_backward raised TypeError"):
        check_linear_layer(ref.linear_forward, backward=mlp_backprop.gradients_by_hand)
    relu_derivative = dlnn_helpers.mlp_activations.ACTIVATIONS["relu"].derivative
    with pytest.raises(CheckFailure, match="ex_relu_backward raised TypeError"):
        check_relu_layer(ref.relu_forward, backward=relu_derivative)


# ============================================================ shipped values, live values, the grader


def test_a_wrong_answer_on_the_hidden_settings_is_still_diagnosed_live():
    with _expected.live_only(), pytest.raises(CheckFailure, match="grad_bias .* is wrong: it is averaged"):
        check_linear_layer(ref.linear_forward, backward=lambda g, x, w: (g @ w, g.T @ x, g.mean(0)),
                           seed=105, n_cases=6)
