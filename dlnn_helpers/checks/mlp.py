"""Checks of the graded exercises of tutorial 5 (backpropagation by layers).

Each layer is a pair of student functions, a forward and a backward pass.  The check draws random
shapes (batch size 1 included) and float64 inputs from its ``seed`` (:func:`linear_cases`,
:func:`relu_cases`, :func:`squared_error_cases`), calls the student's functions on copies of them
for every case, and only then asks for the expected values of its settings
(:func:`~._expected.expected`: the values shipped with the package for the self-checks, computed by
the instructor's reference for the hidden tests), which hold the right answers and the output of
every known mistake.  It names the layer and the quantity that is wrong (``Linear backward:
grad_weight …``).

The exercises compute the gradients by hand: the backward passes (and the forward passes with them)
refuse autograd — ``.backward()``, ``torch.autograd`` and ``torch.func`` — wherever it runs
(:mod:`._shortcuts`).

The contract (the exercises' docstrings): the inputs are float64 tensors, and every returned value
is a float64 tensor of the documented shape; the loss of the squared error is a single number (a
0-d tensor, or a float).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._contract import expect_number, expect_tensor
from ._core import CheckFailure, call_student, captured_warnings, unpack, warning_note
from ._diagnosis import Mistake, judge
from ._expected import expected
from ._registry import registered
from ._shortcuts import student_code

_RTOL = 1e-5


_REFUSED_LINEAR = ("autograd",)
_REFUSED_RELU = ("autograd",)
_REFUSED_MSE = ("autograd",)


def _shapes(seed: int, n_cases: int, batch_one: bool = True) -> list[tuple[int, int, int]]:
    """Random (batch, n_in, n_out) triples; the first has batch size 1, none is square."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_cases):
        batch = 1 if (i == 0 and batch_one) else int(rng.integers(2, 9))
        n_in = int(rng.integers(2, 7))
        n_out = int(rng.integers(1, 6))
        if n_out == n_in:
            n_out += 1
        if batch in (n_in, n_out):
            batch += 7
        out.append((batch, n_in, n_out))
    return out


def _tensor(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


def linear_cases(seed: int, n_cases: int) -> list[tuple[torch.Tensor, ...]]:
    """The inputs of :func:`check_linear_layer`: ``(x, weight, bias, grad_out)`` per case."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for batch, n_in, n_out in _shapes(seed, n_cases):
        x, w, b = _tensor(generator, batch, n_in), _tensor(generator, n_out, n_in), _tensor(
            generator, n_out)
        cases.append((x, w, b, _tensor(generator, batch, n_out)))
    return cases


def relu_cases(seed: int, n_cases: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The inputs of :func:`check_relu_layer`: ``(x, grad_out)`` per case."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for batch, n_in, _ in _shapes(seed, n_cases):
        x = _tensor(generator, batch, n_in)
        x[0, 0] = -abs(float(x[0, 0])) - 0.1  # at least one negative and one positive entry
        x[-1, -1] = abs(float(x[-1, -1])) + 0.1
        cases.append((x, _tensor(generator, batch, n_in)))
    return cases


def squared_error_cases(seed: int, n_cases: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The inputs of :func:`check_squared_error`: ``(pred, target)`` per case, batch size 1 last
    (there, "mean over the batch" and "sum" cannot be told apart)."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for batch, _, n_out in _shapes(seed, n_cases)[::-1]:
        n_out = max(n_out, 2) if batch > 1 else n_out
        cases.append((_tensor(generator, batch, n_out), _tensor(generator, batch, n_out)))
    return cases


def _compare(
    layer: str, what: str, returned: object, expected_value: np.ndarray, mistakes: list[Mistake],
    shape_meaning: str, case: str, shape_hints: dict[tuple[int, ...], str] | None = None,
) -> None:
    """Hold ``returned`` to the contract (a float64 tensor of the expected shape), then judge it."""
    label = f"{layer}: {what} ({case})"
    expected_value = np.asarray(expected_value, dtype=np.float64)
    got = expect_tensor(returned, label, shape=expected_value.shape, dtype=torch.float64,
                        meaning=shape_meaning, shape_hints=shape_hints)
    judge(label, got, expected_value, mistakes, rtol=_RTOL)


def _run(name: str, func: Callable[..., object], args: tuple, refused: tuple[str, ...]) -> Any:
    """Call the student's ``func`` in a shortcut window; a failure is returned, not raised, so that
    every case runs before the expected values are asked for (its message comes in its turn)."""
    with student_code(name, refused) as window:
        try:
            value = call_student(name, func, *args)
        except CheckFailure as failure:
            value = failure
    window.verdict()
    return value


def _calls(steps: list[tuple[str, Callable[..., object], tuple]], refused: tuple[str, ...]) -> list:
    """Run the student's calls in order, stopping after the first failure (as judging would)."""
    results = []
    for name, func, args in steps:
        results.append(_run(name, func, args, refused))
        if isinstance(results[-1], CheckFailure):
            break
    return results


def _value(results: list, index: int) -> Any:
    value = results[index]
    if isinstance(value, CheckFailure):
        raise value
    return value


# ----------------------------------------------------------------------------------------------
# Linear
# ----------------------------------------------------------------------------------------------


@registered("ex_linear_backward", refuses=_REFUSED_LINEAR)
def check_linear_layer(
    forward: Callable[..., object],
    *,
    backward: Callable[..., object],
    seed: int = 5,
    n_cases: int = 4,
    names: tuple[str, str] = ("ex_linear_forward", "ex_linear_backward"),
) -> str:
    """Check ``forward(x, weight, bias) -> out`` and ``backward(grad_out, x, weight) ->
    (grad_x, grad_weight, grad_bias)`` of a linear layer ``out = x Wᵀ + b``.

    ``x`` is (B, n_in), ``weight`` (n_out, n_in) as in ``nn.Linear``, ``bias`` (n_out,).  Both
    passes refuse autograd: the gradients are computed by hand.
    """
    layer_f, layer_b = "Linear forward", "Linear backward"
    cases = linear_cases(seed, n_cases)
    with captured_warnings() as caught:
        steps = []
        for x, w, b, grad_out in cases:
            steps.append((names[0], forward, (x.clone(), w.clone(), b.clone())))
            steps.append((names[1], backward, (grad_out.clone(), x.clone(), w.clone())))
        results = _calls(steps, _REFUSED_LINEAR)
    _value(results, 0)  # a failure of the very first call needs no expected value
    exp = expected("check_linear_layer", seed=seed, n_cases=n_cases)
    for i, (x, _, _, _) in enumerate(cases):
        batch, n_in = x.shape
        n_out = cases[i][1].shape[0]
        case = f"B={batch}, n_in={n_in}, n_out={n_out}"
        e_out, e_x, e_w, e_b = exp["correct"][i]
        _compare(layer_f, "the output", _value(results, 2 * i), e_out, [
            Mistake("the bias is missing (out = x Wᵀ + b)", exp["no bias"][i]),
            Mistake("the bias is subtracted; out = x Wᵀ + b", exp["bias subtracted"][i]),
        ], "(B, n_out)", case, {(n_out, batch): "it looks transposed: out = x Wᵀ + b"})

        got_x, got_w, got_b = unpack(_value(results, 2 * i + 1),
                                     ("grad_x", "grad_weight", "grad_bias"), names[1])
        _compare(layer_b, "grad_x", got_x, e_x, [
            Mistake("that is ∂L/∂W; grad_x = grad_out W", e_w),
        ], "(B, n_in)", case, {(n_out, n_in): "that is the shape of W: grad_x = grad_out W "
                              "has the shape of x"})
        _compare(layer_b, "grad_weight", got_w, e_w, [
            Mistake("it is divided by the batch size; the gradients of the examples add up "
                    "(the loss already holds any averaging)", np.asarray(e_w) / batch),
        ], "(n_out, n_in), the shape of W", case, {
            (n_in, n_out): "it is transposed: ∂L/∂W = grad_outᵀ x has the shape of W, "
            "(n_out, n_in)"})
        _compare(layer_b, "grad_bias", got_b, e_b, [
            Mistake("it is averaged over the batch; sum the examples' gradients instead",
                    np.asarray(e_b) / batch),
        ], "(n_out,), the shape of b", case, {
            (batch, n_out): "it is not summed over the batch: ∂L/∂b = grad_out.sum(dim=0)"
            if batch > 1 else "it has an extra axis of size 1: ∂L/∂b = grad_out.sum(dim=0) "
            "sums over the batch axis, and has the shape of b",
            (batch,): "it is summed over the wrong axis (the output units instead of the "
            "batch)"})
    return (f"{names[0]} and {names[1]} agree with autograd on {n_cases} random shapes, batch size "
            "1 included." + warning_note(caught))


# ----------------------------------------------------------------------------------------------
# ReLU
# ----------------------------------------------------------------------------------------------


@registered("ex_relu_backward", refuses=_REFUSED_RELU)
def check_relu_layer(
    forward: Callable[..., object],
    *,
    backward: Callable[..., object],
    seed: int = 6,
    n_cases: int = 3,
    names: tuple[str, str] = ("ex_relu_forward", "ex_relu_backward"),
) -> str:
    """Check ``forward(x) -> relu(x)`` and ``backward(grad_out, x) -> grad_x``; the backward pass
    refuses autograd."""
    cases = relu_cases(seed, n_cases)
    with captured_warnings() as caught:
        steps = []
        for x, grad_out in cases:
            steps.append((names[0], forward, (x.clone(),)))
            steps.append((names[1], backward, (grad_out.clone(), x.clone())))
        results = _calls(steps, _REFUSED_RELU)
    _value(results, 0)
    exp = expected("check_relu_layer", seed=seed, n_cases=n_cases)
    for i, (x, _) in enumerate(cases):
        case = f"shape ({x.shape[0]}, {x.shape[1]})"
        e_out, e_x = exp["correct"][i]
        _compare("ReLU forward", "the output", _value(results, 2 * i), e_out, [
            Mistake("negative inputs should become 0, positive ones stay as they are",
                    exp["negative part"][i]),
            Mistake("that is the absolute value; ReLU sets negative inputs to 0",
                    exp["absolute value"][i]),
            Mistake("that is the step function 1[x > 0]; ReLU returns max(x, 0)",
                    exp["step"][i]),
        ], "the shape of x", case)
        _compare("ReLU backward", "grad_x", _value(results, 2 * i + 1), e_x, [
            Mistake("grad_out is missing: multiply it by the derivative 1[x > 0]", exp["step"][i]),
            Mistake("it multiplies grad_out by relu(x); the derivative of ReLU is 1[x > 0], "
                    "not relu(x)", exp["times relu"][i]),
            Mistake("it multiplies grad_out by x; the derivative of ReLU is 1[x > 0]",
                    exp["times x"][i]),
            Mistake("the ReLU's derivative is missing: grad_out passes only where x > 0",
                    exp["grad_out"][i]),
            Mistake("it uses sign(x); the derivative of ReLU is 0 (not -1) for negative x",
                    exp["sign"][i]),
            Mistake("the mask is inverted: gradients flow where x > 0, not where x < 0",
                    exp["inverted mask"][i]),
        ], "the shape of x", case)
    return f"{names[0]} and {names[1]} agree with autograd." + warning_note(caught)


# ----------------------------------------------------------------------------------------------
# Squared error
# ----------------------------------------------------------------------------------------------


@registered("ex_mse_backward", refuses=_REFUSED_MSE)
def check_squared_error(
    forward: Callable[..., object],
    *,
    backward: Callable[..., object],
    seed: int = 7,
    n_cases: int = 3,
    names: tuple[str, str] = ("ex_mse_forward", "ex_mse_backward"),
) -> str:
    """Check ``forward(pred, target) -> loss`` (the mean over all entries, as ``nn.MSELoss()``)
    and ``backward(pred, target) -> ∂loss/∂pred``; the backward pass refuses autograd.
    """
    cases = squared_error_cases(seed, n_cases)
    with captured_warnings() as caught:
        steps = []
        for pred, target in cases:
            steps.append((names[0], forward, (pred.clone(), target.clone())))
            steps.append((names[1], backward, (pred.clone(), target.clone())))
        results = _calls(steps, _REFUSED_MSE)
    _value(results, 0)
    exp = expected("check_squared_error", seed=seed, n_cases=n_cases)
    for i, (pred, _) in enumerate(cases):
        case = f"pred of shape ({pred.shape[0]}, {pred.shape[1]})"
        e_loss, e_grad = exp["correct"][i]
        label = f"Squared error forward: the loss ({case})"
        loss = np.array(expect_number(_value(results, 2 * i), label, dtype=torch.float64))
        judge(label, loss, np.array(e_loss, dtype=np.float64), [
            Mistake("it is averaged over the batch only; take the mean over all B × k entries",
                    exp["batch mean"][i]),
            Mistake("it is the sum of squared errors; take the mean over all entries",
                    exp["sum"][i]),
            Mistake("the errors are not squared", exp["not squared"][i]),
            Mistake("it has an extra 1/2 factor; nn.MSELoss has none", exp["half"][i]),
            Mistake("that is the root mean squared error; do not take the square root",
                    exp["root"][i]),
        ], rtol=_RTOL)
        _compare("Squared error backward", "grad_pred", _value(results, 2 * i + 1), e_grad, [
            Mistake("the factor 2 of the square's derivative is missing", np.asarray(e_grad) / 2),
            Mistake("it is divided by the batch size only; the mean runs over all B × k "
                    "entries", np.asarray(e_grad) * pred.shape[1]),
            Mistake("it is not divided by the number of entries N (the loss is a mean)",
                    np.asarray(e_grad) * pred.numel()),
            Mistake("the sign is flipped: ∂L/∂pred = 2 (pred - target) / N", -np.asarray(e_grad)),
            Mistake("it is the loss of each entry, not its derivative", exp["entry losses"][i]),
        ], "the shape of pred", case)
    return f"{names[0]} and {names[1]} agree with autograd." + warning_note(caught)
