"""Tutorial 5: backpropagation through a stack of layers, with the layer functions you write.

Each layer is a pair of functions (a :class:`Layer`): the *forward* pass computes the output from
the input and the parameters; the *backward* pass receives ``grad_out = ∂L/∂out`` and returns
``∂L/∂input`` (and ``∂L/∂parameters``).  :func:`gradients_by_hand` chains the backward passes of the
layers it is given in reverse order — backpropagation — and :func:`compare_with_autograd` compares
the result with PyTorch's autograd.

The layer functions themselves are the exercises of the tutorial (``ex_linear_forward``, …): this
module holds none of them.  Until a student's layers pass their self-checks the notebook runs
:data:`AUTOGRAD_LINEAR`, :data:`AUTOGRAD_RELU` and :data:`AUTOGRAD_LOSS` instead, whose backward
passes *are* autograd (``torch.autograd.grad``): the exercises' checks refuse them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F


class Layer(NamedTuple):
    """The forward and the backward pass of one kind of layer.

    Attributes
    ----------
    forward : callable
        ``forward(x, weight, bias)`` for a linear layer, ``forward(x)`` for ReLU,
        ``forward(pred, target)`` for the loss.
    backward : callable
        ``backward(grad_out, x, weight) -> (grad_x, grad_weight, grad_bias)`` for a linear layer,
        ``backward(grad_out, x) -> grad_x`` for ReLU, ``backward(pred, target) -> grad_pred`` for
        the loss.
    """

    forward: Callable
    backward: Callable


def gradients_by_hand(
    model: nn.Sequential, x: torch.Tensor, target: torch.Tensor, *, linear: Layer, relu: Layer,
    loss: Layer,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and parameter gradients of a ``Linear``/``ReLU`` ``nn.Sequential`` by backpropagation.

    The forward pass keeps every layer's input; the backward pass starts from the loss's gradient
    and runs the layers' backward passes in reverse order.

    Parameters
    ----------
    model : nn.Sequential
        ``nn.Linear`` and ``nn.ReLU`` layers only.
    x : torch.Tensor of shape (B, n_in)
    target : torch.Tensor of shape (B, n_out)
    linear, relu, loss : Layer
        The layer functions to chain (the tutorial's exercises).

    Returns
    -------
    loss : torch.Tensor
        The loss, a single number.
    grads : list of torch.Tensor
        The gradients in ``model.parameters()`` order.
    """
    inputs, h = [], x.detach()
    with torch.no_grad():
        for layer in model:
            inputs.append(h)
            if isinstance(layer, nn.Linear):
                h = linear.forward(h, layer.weight.detach(), layer.bias.detach())
            elif isinstance(layer, nn.ReLU):
                h = relu.forward(h)
            else:
                raise TypeError(f"unsupported layer {type(layer).__name__}")
        value = loss.forward(h, target)
        grad = loss.backward(h, target)
        grads: list[torch.Tensor] = []
        for layer, h_in in zip(reversed(model), reversed(inputs), strict=True):
            if isinstance(layer, nn.Linear):
                grad, g_w, g_b = linear.backward(grad, h_in, layer.weight.detach())
                grads = [g_w, g_b] + grads
            else:
                grad = relu.backward(grad, h_in)
    return torch.as_tensor(value), grads


def compare_with_autograd(
    model: nn.Sequential, x: torch.Tensor, target: torch.Tensor, *, linear: Layer, relu: Layer,
    loss: Layer,
) -> dict[str, float]:
    """Largest absolute difference between the gradients of :func:`gradients_by_hand` and
    autograd's (``loss.backward()`` on ``nn.functional.mse_loss``), per parameter.

    Returns
    -------
    dict
        Parameter name -> largest absolute difference.
    """
    _, by_hand = gradients_by_hand(model, x, target, linear=linear, relu=relu, loss=loss)
    model.zero_grad()
    F.mse_loss(model(x), target).backward()
    return {
        name: float((p.grad - g).abs().max())
        for (name, p), g in zip(model.named_parameters(), by_hand, strict=True)
    }


# -------------------------------------------------------------- autograd's layers (the fallback)


def _autograd_linear_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor):
    """Autograd's gradients of ``F.linear`` (``torch.autograd.grad``): refused by the exercise's
    check."""
    x, weight = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
    bias = torch.zeros(weight.shape[0], dtype=weight.dtype, requires_grad=True)
    with torch.enable_grad():
        return torch.autograd.grad(F.linear(x, weight, bias), (x, weight, bias), grad_out)


def _autograd_relu_backward(grad_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Autograd's gradient of ``torch.relu`` (``torch.autograd.grad``): refused by the exercise's
    check."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(torch.relu(x), x, grad_out)[0]


def _autograd_mse_backward(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Autograd's gradient of ``F.mse_loss`` (``torch.autograd.grad``): refused by the exercise's
    check."""
    pred = pred.detach().requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(F.mse_loss(pred, target), pred)[0]


AUTOGRAD_LINEAR = Layer(F.linear, _autograd_linear_backward)
"""PyTorch's linear layer and autograd's backward pass: the stand-in until ``ex_linear_*`` work."""
AUTOGRAD_RELU = Layer(torch.relu, _autograd_relu_backward)
"""PyTorch's ReLU and autograd's backward pass: the stand-in until ``ex_relu_*`` work."""
AUTOGRAD_LOSS = Layer(F.mse_loss, _autograd_mse_backward)
"""PyTorch's mean squared error and autograd's gradient: the stand-in until ``ex_mse_*`` work."""


def own_or_autograd(
    forward: Callable, backward: Callable, *, check: Callable[..., str], fallback: Layer, name: str
) -> Layer:
    """Your ``forward``/``backward`` pair once it passes its self-check ``check``; until then
    ``fallback`` (PyTorch's layer with autograd's backward pass), saying so in one line.

    Parameters
    ----------
    forward, backward : callable
        Your layer functions (the exercise).
    check : callable
        Their check, called as ``check(forward, backward=backward)``.
    fallback : Layer
        :data:`AUTOGRAD_LINEAR`, :data:`AUTOGRAD_RELU` or :data:`AUTOGRAD_LOSS`.
    name : str
        The layer's name in the message, e.g. ``"linear layer"``.

    Returns
    -------
    Layer
    """
    from .checks._fallback import own_or_fallback

    return own_or_fallback(Layer(forward, backward),
                           lambda layer: check(layer.forward, backward=layer.backward), fallback,
                           name=name, instead=f"PyTorch's {name} with autograd's backward pass")


_STAND_INS = {"linear": ("linear layer", AUTOGRAD_LINEAR), "relu": ("ReLU layer", AUTOGRAD_RELU),
              "loss": ("squared error", AUTOGRAD_LOSS)}


def print_comparison(
    model: nn.Sequential, x: torch.Tensor, target: torch.Tensor, *, linear: Layer, relu: Layer,
    loss: Layer,
) -> dict[str, float]:
    """Print, per parameter, the largest difference of :func:`compare_with_autograd`, first saying
    in one line which layers are autograd's stand-ins (so that a 0 is not read as a pass).

    With every layer a stand-in, autograd is compared with itself: the line says so, and the
    differences (0) say nothing about the exercises.

    Parameters
    ----------
    model : nn.Sequential
        ``nn.Linear`` and ``nn.ReLU`` layers only.
    x : torch.Tensor of shape (B, n_in)
    target : torch.Tensor of shape (B, n_out)
    linear, relu, loss : Layer
        The layers chosen by :func:`own_or_autograd`.

    Returns
    -------
    dict
        Parameter name -> largest absolute difference.
    """
    given = {"linear": linear, "relu": relu, "loss": loss}
    stand_ins = [name for key, (name, fallback) in _STAND_INS.items() if given[key] is fallback]
    if len(stand_ins) == len(given):
        print("None of your layers passes its self-check yet: every backward pass below is autograd's, "
              "so this compares autograd with itself (the differences are 0 and test nothing yet).")
    elif stand_ins:
        print(f"Autograd's backward pass stands in for your {' and '.join(stand_ins)}: the differences "
              "test your other layers only.")
    differences = compare_with_autograd(model, x, target, **given)
    for name, difference in differences.items():
        print(f"{name:9s} largest difference from autograd: {difference:.1e}")
    return differences

