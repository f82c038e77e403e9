"""Reference answers of tutorial 5 (backpropagation by layers) and the expected values of its checks.

Each layer is a pair of functions: the *forward* pass computes the output from the input and the
parameters; the *backward* pass receives ``grad_out = ∂L/∂out`` (same shape as the output) and
returns ``∂L/∂input`` and ``∂L/∂parameters`` by the chain rule.  Shapes: a batch of ``B`` inputs is a
matrix of shape (B, n_in); a linear layer has ``weight`` of shape (n_out, n_in) and ``bias`` of
shape (n_out,), as in ``nn.Linear``.

The expected values of :mod:`dlnn_helpers.checks.mlp` are computed here from the same inputs the
check draws (its ``*_cases`` builders): the correct values by autograd, and the output of every
known mistake.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlnn_helpers.checks.mlp import (
    linear_cases,
    relu_cases,
    squared_error_cases,
)

from . import answers, expects

# ------------------------------------------------------------------------------------------------
# Reference answers
# ------------------------------------------------------------------------------------------------


def linear_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``out = x Wᵀ + b``: (B, n_in), (n_out, n_in), (n_out,) -> (B, n_out) (``ex_linear_forward``)."""
    return x @ weight.T + bias


def linear_backward(
    grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of a linear layer (``ex_linear_backward``).

    Parameters
    ----------
    grad_out : torch.Tensor of shape (B, n_out)
    x : torch.Tensor of shape (B, n_in)
        The layer's input in the forward pass.
    weight : torch.Tensor of shape (n_out, n_in)

    Returns
    -------
    grad_x : (B, n_in)
        ``grad_out W``.
    grad_weight : (n_out, n_in)
        ``grad_outᵀ x`` (summed over the batch).
    grad_bias : (n_out,)
        ``grad_out`` summed over the batch.
    """
    return grad_out @ weight, grad_out.T @ x, grad_out.sum(dim=0)


def relu_forward(x: torch.Tensor) -> torch.Tensor:
    """``max(x, 0)`` elementwise (``ex_relu_forward``)."""
    return torch.clamp(x, min=0.0)


def relu_backward(grad_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``grad_out · 1[x > 0]``, where ``x`` is the ReLU's input in the forward pass
    (``ex_relu_backward``)."""
    return grad_out * (x > 0).to(grad_out.dtype)


def mse_forward(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all entries (as ``nn.MSELoss()``): a 0-d tensor (``ex_mse_forward``)."""
    return ((pred - target) ** 2).mean()


def mse_backward(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``∂L/∂pred = 2 (pred - target) / N``, ``N`` the number of entries of ``pred``
    (``ex_mse_backward``)."""
    return 2.0 * (pred - target) / pred.numel()


def mlp_gradients_by_hand(
    model: nn.Sequential, x: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and parameter gradients of a ``Linear``/``ReLU`` ``nn.Sequential`` by backpropagation,
    with the reference layers of this module (no autograd)."""
    from dlnn_helpers.mlp_backprop import Layer, gradients_by_hand

    return gradients_by_hand(model, x, target, linear=Layer(linear_forward, linear_backward),
                             relu=Layer(relu_forward, relu_backward),
                             loss=Layer(mse_forward, mse_backward))


# ------------------------------------------------------------------------------------------------
# Expected values of the checks
# ------------------------------------------------------------------------------------------------


answers("check_linear_layer", backward=linear_backward)(linear_forward)
answers("check_relu_layer", backward=relu_backward)(relu_forward)
answers("check_squared_error", backward=mse_backward)(mse_forward)


def _np(t: torch.Tensor) -> np.ndarray:
    """A float64 array rounded to 10 significant digits (short in the shipped file, far inside the
    checks' tolerance of 1e-5)."""
    array = np.array(t.detach().numpy(), dtype=np.float64, copy=True)
    return np.vectorize(lambda v: float(f"{v:.10g}"), otypes=[np.float64])(array) if array.size else array


@expects("check_linear_layer")
def linear_layer_expected(seed: int, n_cases: int) -> dict:
    """Per case: ``(out, grad_x, grad_weight, grad_bias)`` by autograd, and the wrong outputs."""
    correct, no_bias, subtracted = [], [], []
    for x, w, b, grad_out in linear_cases(seed, n_cases):
        xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
        out = xr @ wr.T + br
        out.backward(grad_out)
        correct.append(tuple(_np(t) for t in (out, xr.grad, wr.grad, br.grad)))
        no_bias.append(_np(x @ w.T))
        subtracted.append(_np(x @ w.T - b))
    return {"correct": correct, "no bias": no_bias, "bias subtracted": subtracted}


@expects("check_relu_layer")
def relu_layer_expected(seed: int, n_cases: int) -> dict:
    """Per case: ``(relu(x), grad_x)`` by autograd, and the wrong outputs."""
    values: dict[str, list] = {key: [] for key in (
        "correct", "negative part", "absolute value", "step", "times relu", "times x", "grad_out",
        "sign", "inverted mask")}
    for x, grad_out in relu_cases(seed, n_cases):
        xr = x.clone().requires_grad_(True)
        out = torch.relu(xr)
        out.backward(grad_out)
        values["correct"].append((_np(out), _np(xr.grad)))
        values["negative part"].append(_np(torch.clamp(x, max=0.0)))
        values["absolute value"].append(_np(x.abs()))
        values["step"].append(_np((x > 0).double()))
        values["times relu"].append(_np(grad_out * torch.relu(x)))
        values["times x"].append(_np(grad_out * x))
        values["grad_out"].append(_np(grad_out))
        values["sign"].append(_np(grad_out * torch.sign(x)))
        values["inverted mask"].append(_np(grad_out * (x < 0)))
    return values


@expects("check_squared_error")
def squared_error_expected(seed: int, n_cases: int) -> dict:
    """Per case: ``(loss, ∂loss/∂pred)`` by autograd, and the wrong losses."""
    values: dict[str, list] = {key: [] for key in (
        "correct", "batch mean", "sum", "not squared", "half", "root", "entry losses")}
    for pred, target in squared_error_cases(seed, n_cases):
        pr = pred.clone().requires_grad_(True)
        loss = nn.functional.mse_loss(pr, target)
        loss.backward()
        values["correct"].append((_np(loss), _np(pr.grad)))
        diff = pred - target
        values["batch mean"].append(_np((diff**2).sum() / pred.shape[0]))
        values["sum"].append(_np((diff**2).sum()))
        values["not squared"].append(_np(diff.mean()))
        values["half"].append(_np(0.5 * (diff**2).mean()))
        values["root"].append(_np(((diff**2).mean()).sqrt()))
        values["entry losses"].append(_np(diff**2 / pred.numel()))
    return values


