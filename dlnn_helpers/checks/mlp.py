"""Checks of the graded exercises of tutorial 5 (backpropagation by layers).

Each layer is a pair of student functions, a forward and a backward pass.  The check draws random
shapes (batch size 1 included) from its ``seed``, computes the expected values with autograd on its
own copies, calls the student's functions on other copies, and names the layer and the quantity
that is wrong (``Linear backward: grad_weight …``), recognising the usual mistakes.

The contract (the exercises' docstrings): the inputs are float64 tensors, and every returned value
is a float64 tensor of the documented shape; the loss of the squared error is a single number (a
0-d tensor, or a float).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ._contract import expect_number, expect_tensor
from ._core import call_student, captured_warnings, unpack, warning_note
from ._diagnosis import Mistake, judge

_RTOL = 1e-5


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


def _np(t: torch.Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=np.float64, copy=True)


def _compare(
    layer: str, what: str, returned: object, expected: np.ndarray, mistakes: list[Mistake],
    shape_meaning: str, case: str, shape_hints: dict[tuple[int, ...], str] | None = None,
) -> None:
    """Hold ``returned`` to the contract (a float64 tensor of the expected shape), then judge it."""
    label = f"{layer}: {what} ({case})"
    got = expect_tensor(returned, label, shape=expected.shape, dtype=torch.float64,
                        meaning=shape_meaning, shape_hints=shape_hints)
    judge(label, got, expected, mistakes, rtol=_RTOL)


# ----------------------------------------------------------------------------------------------
# Linear
# ----------------------------------------------------------------------------------------------


def check_linear_layer(
    forward: Callable[..., object],
    *,
    backward: Callable[..., object],
    seed: int = 5,
    n_cases: int = 4,
    names: tuple[str, str] = ("ex_linear_forward", "ex_linear_backward"),
) -> str:
    """Check ``forward(x, weight, bias) -> out`` and ``backward(grad_out, x, weight) ->
    (grad_x, grad_weight, grad_bias)`` of a linear layer ``out = x Wᵀ + b`` against autograd.

    ``x`` is (B, n_in), ``weight`` (n_out, n_in) as in ``nn.Linear``, ``bias`` (n_out,).
    """
    generator = torch.Generator().manual_seed(seed)
    layer_f, layer_b = "Linear forward", "Linear backward"
    with captured_warnings() as caught:
        for batch, n_in, n_out in _shapes(seed, n_cases):
            case = f"B={batch}, n_in={n_in}, n_out={n_out}"
            x, w, b = _tensor(generator, batch, n_in), _tensor(generator, n_out, n_in), _tensor(
                generator, n_out
            )
            grad_out = _tensor(generator, batch, n_out)
            xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
            out_ref = xr @ wr.T + br
            out_ref.backward(grad_out)
            e_out, e_x, e_w, e_b = (_np(t) for t in (out_ref, xr.grad, wr.grad, br.grad))
            xn, wn, bn, gn = (_np(t) for t in (x, w, b, grad_out))

            out = call_student(names[0], forward, x.clone(), w.clone(), b.clone())
            _compare(layer_f, "the output", out, e_out, [
                Mistake("the bias is missing (out = x Wᵀ + b)", xn @ wn.T),
                Mistake("the bias is subtracted; out = x Wᵀ + b", xn @ wn.T - bn),
            ], "(B, n_out)", case, {(n_out, batch): "it looks transposed: out = x Wᵀ + b"})

            result = call_student(names[1], backward, grad_out.clone(), x.clone(), w.clone())
            got_x, got_w, got_b = unpack(result, ("grad_x", "grad_weight", "grad_bias"), names[1])
            _compare(layer_b, "grad_x", got_x, e_x, [
                Mistake("that is ∂L/∂W; grad_x = grad_out W", gn.T @ xn),
            ], "(B, n_in)", case, {(n_out, n_in): "that is the shape of W: grad_x = grad_out W "
                                  "has the shape of x"})
            _compare(layer_b, "grad_weight", got_w, e_w, [
                Mistake("it is divided by the batch size; the gradients of the examples add up "
                        "(the loss already holds any averaging)", gn.T @ xn / batch),
                Mistake("it uses the output instead of the input: ∂L/∂W = grad_outᵀ x",
                        gn.T @ e_out if e_out.shape[1] == n_in else None),
            ], "(n_out, n_in), the shape of W", case, {
                (n_in, n_out): "it is transposed: ∂L/∂W = grad_outᵀ x has the shape of W, "
                "(n_out, n_in)"})
            sum_b = gn.sum(axis=0)
            _compare(layer_b, "grad_bias", got_b, e_b, [
                Mistake("it is averaged over the batch; sum the examples' gradients instead",
                        sum_b / batch),
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


def check_relu_layer(
    forward: Callable[..., object],
    *,
    backward: Callable[..., object],
    seed: int = 6,
    n_cases: int = 3,
    names: tuple[str, str] = ("ex_relu_forward", "ex_relu_backward"),
) -> str:
    """Check ``forward(x) -> relu(x)`` and ``backward(grad_out, x) -> grad_x`` against autograd."""
    generator = torch.Generator().manual_seed(seed)
    with captured_warnings() as caught:
        for batch, n_in, _ in _shapes(seed, n_cases):
            case = f"shape ({batch}, {n_in})"
            x = _tensor(generator, batch, n_in)
            x[0, 0] = -abs(float(x[0, 0])) - 0.1  # at least one negative and one positive entry
            x[-1, -1] = abs(float(x[-1, -1])) + 0.1
            grad_out = _tensor(generator, batch, n_in)
            xr = x.clone().requires_grad_(True)
            out_ref = torch.relu(xr)
            out_ref.backward(grad_out)
            e_out, e_x = _np(out_ref), _np(xr.grad)
            xn, gn = _np(x), _np(grad_out)
            out = call_student(names[0], forward, x.clone())
            _compare("ReLU forward", "the output", out, e_out, [
                Mistake("negative inputs should become 0, positive ones stay as they are",
                        np.minimum(xn, 0)),
                Mistake("that is the absolute value; ReLU sets negative inputs to 0", np.abs(xn)),
                Mistake("that is the step function 1[x > 0]; ReLU returns max(x, 0)",
                        (xn > 0) * 1.0),
            ], "the shape of x", case)
            got = call_student(names[1], backward, grad_out.clone(), x.clone())
            _compare("ReLU backward", "grad_x", got, e_x, [
                Mistake("grad_out is missing: multiply it by the derivative 1[x > 0]",
                        (xn > 0) * 1.0),
                Mistake("it multiplies grad_out by relu(x); the derivative of ReLU is 1[x > 0], "
                        "not relu(x)", gn * np.maximum(xn, 0)),
                Mistake("it multiplies grad_out by x; the derivative of ReLU is 1[x > 0]", gn * xn),
                Mistake("the ReLU's derivative is missing: grad_out passes only where x > 0", gn),
                Mistake("it uses sign(x); the derivative of ReLU is 0 (not -1) for negative x",
                        gn * np.sign(xn)),
                Mistake("the mask is inverted: gradients flow where x > 0, not where x < 0",
                        gn * (xn < 0)),
            ], "the shape of x", case)
    return f"{names[0]} and {names[1]} agree with autograd." + warning_note(caught)


# ----------------------------------------------------------------------------------------------
# Squared error
# ----------------------------------------------------------------------------------------------


def check_squared_error(
    forward: Callable[..., object],
    *,
    backward: Callable[..., object],
    seed: int = 7,
    n_cases: int = 3,
    names: tuple[str, str] = ("ex_mse_forward", "ex_mse_backward"),
) -> str:
    """Check ``forward(pred, target) -> loss`` (the mean over all entries, as ``nn.MSELoss()``)
    and ``backward(pred, target) -> ∂loss/∂pred`` against autograd.
    """
    generator = torch.Generator().manual_seed(seed)
    with captured_warnings() as caught:
        # batch size 1 last: there, "mean over the batch" and "sum" cannot be told apart
        for batch, _, n_out in _shapes(seed, n_cases)[::-1]:
            n_out = max(n_out, 2) if batch > 1 else n_out
            case = f"pred of shape ({batch}, {n_out})"
            pred, target = _tensor(generator, batch, n_out), _tensor(generator, batch, n_out)
            pr = pred.clone().requires_grad_(True)
            loss_ref = torch.nn.functional.mse_loss(pr, target)
            loss_ref.backward()
            e_loss, e_grad = _np(loss_ref), _np(pr.grad)
            pn, tn = _np(pred), _np(target)
            diff, count = pn - tn, pn.size
            returned = call_student(names[0], forward, pred.clone(), target.clone())
            label = f"Squared error forward: the loss ({case})"
            loss = np.array(expect_number(returned, label, dtype=torch.float64))
            judge(label, loss, e_loss, [
                Mistake("it is averaged over the batch only; take the mean over all B × k entries",
                        (diff**2).sum() / batch),
                Mistake("it is the sum of squared errors; take the mean over all entries",
                        (diff**2).sum()),
                Mistake("the errors are not squared", diff.mean()),
                Mistake("it has an extra 1/2 factor; nn.MSELoss has none", 0.5 * (diff**2).mean()),
                Mistake("that is the root mean squared error; do not take the square root",
                        np.sqrt((diff**2).mean())),
            ], rtol=_RTOL)
            got = call_student(names[1], backward, pred.clone(), target.clone())
            _compare("Squared error backward", "grad_pred", got, e_grad, [
                Mistake("the factor 2 of the square's derivative is missing", diff / count),
                Mistake("it is divided by the batch size only; the mean runs over all B × k "
                        "entries", 2 * diff / batch),
                Mistake("it is not divided by the number of entries N (the loss is a mean)",
                        2 * diff),
                Mistake("the sign is flipped: ∂L/∂pred = 2 (pred - target) / N", -2 * diff / count),
                Mistake("it is the loss of each entry, not its derivative", diff**2 / count),
            ], "the shape of pred", case)
    return f"{names[0]} and {names[1]} agree with autograd." + warning_note(caught)
