"""T5: answers that take a shortcut are refused by the self-check, with the message asserted.

The backward passes (``ex_linear_backward``, ``ex_relu_backward``, ``ex_mse_backward``, and the
forward passes checked with them) refuse autograd — ``.backward()``, ``torch.autograd.grad``,
``torch.func`` — however it is reached (a built name, a wrapper, the package's own autograd
stand-ins); every exercise refuses the course's own expected values (reading
``checks/expected/mlp.json`` or calling ``expected()``).  The package that students install holds
none of the reference layers any more, and nothing in its T5 modules passes a T5 check.

Also: the shipped expected values are up to date and suffice offline (``shipped_only``); the hidden
settings are computed live (``live_only``) and, without the reference, raise
``ReferenceUnavailable`` only after every call of the student's code was made.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import matplotlib
import pytest
import torch
from torch.nn import functional as F

import dlnn_helpers
from dlnn_helpers import backprop
from dlnn_helpers.checks import CheckFailure, ShortcutUsed, _expected
from dlnn_helpers.checks.mlp import check_linear_layer, check_relu_layer, check_squared_error
from dlnn_reference import mlp as ref

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
        (check_linear_layer, ref.linear_forward, backprop.AUTOGRAD_LINEAR.backward,
         f"ex_linear_backward uses {ENGINE}: {BY_HAND}"),
        (check_relu_layer, ref.relu_forward, backprop.AUTOGRAD_RELU.backward,
         f"ex_relu_backward uses {ENGINE}: {BY_HAND}"),
        (check_squared_error, ref.mse_forward, backprop.AUTOGRAD_LOSS.backward,
         f"ex_mse_backward uses {ENGINE}: {BY_HAND}"),
        # the figure's ReLU derivative, wrapped into a backward pass
        (check_relu_layer, ref.relu_forward,
         lambda g, x: g * dlnn_helpers.activations.ACTIVATIONS["relu"].derivative(x),
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
T5_MODULES = ["dlnn_helpers.backprop", "dlnn_helpers.mlp_regression", "dlnn_helpers.activations",
              "dlnn_helpers.regression_data", "dlnn_helpers.checks.mlp"]


def test_the_reference_layers_are_not_in_the_student_package():
    for name in MOVED:
        assert not hasattr(backprop, name) and not hasattr(dlnn_helpers, name), name
    for module_name in T5_MODULES:
        assert "dlnn_reference" not in inspect.getsource(importlib.import_module(module_name))


def test_the_package_chain_is_no_answer():
    with pytest.raises(CheckFailure, match="ex_linear_backward raised TypeError"):
        check_linear_layer(ref.linear_forward, backward=backprop.gradients_by_hand)
    with pytest.raises(CheckFailure, match="ex_relu_backward raised TypeError"):
        check_relu_layer(ref.relu_forward, backward=dlnn_helpers.activations.ACTIVATIONS["relu"].derivative)


# ============================================================ shipped values, live values, the grader


def test_a_wrong_answer_on_the_hidden_settings_is_still_diagnosed_live():
    with _expected.live_only(), pytest.raises(CheckFailure, match="grad_bias .* is wrong: it is averaged"):
        check_linear_layer(ref.linear_forward, backward=lambda g, x, w: (g @ w, g.T @ x, g.mean(0)),
                           seed=105, n_cases=6)
