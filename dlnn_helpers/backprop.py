"""Tutorial 5: backpropagation by layers, written out by hand (reference implementations).

Each layer is a pair of functions: the *forward* pass computes the output from the input and the
parameters; the *backward* pass receives ``grad_out = ∂L/∂out`` (same shape as the output) and
returns ``∂L/∂input`` and ``∂L/∂parameters`` by the chain rule. Chaining the backward passes in
reverse order gives the gradient of the loss with respect to every parameter: backpropagation.

Shapes: a batch of ``B`` inputs is a matrix of shape (B, n_in); a linear layer has ``weight`` of
shape (n_out, n_in) and ``bias`` of shape (n_out,), as in ``nn.Linear``.
"""

from __future__ import annotations

import torch
from torch import nn


def linear_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``out = x Wᵀ + b``: (B, n_in), (n_out, n_in), (n_out,) -> (B, n_out)."""
    return x @ weight.T + bias


def linear_backward(
    grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of a linear layer.

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
    """``max(x, 0)`` elementwise."""
    return torch.clamp(x, min=0.0)


def relu_backward(grad_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``grad_out · 1[x > 0]``, where ``x`` is the ReLU's input in the forward pass."""
    return grad_out * (x > 0).to(grad_out.dtype)


def mse_forward(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all entries (as ``nn.MSELoss()``): a 0-dimensional tensor."""
    return ((pred - target) ** 2).mean()


def mse_backward(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``∂L/∂pred = 2 (pred - target) / N`` with ``N`` the number of entries of ``pred``."""
    return 2.0 * (pred - target) / pred.numel()


def mlp_gradients_by_hand(
    model: nn.Sequential, x: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and parameter gradients of a ``Linear``/``ReLU`` ``nn.Sequential`` by backpropagation.

    Uses the functions of this module only (no autograd).

    Returns
    -------
    loss : 0-dim tensor
    grads : list of tensors in ``model.parameters()`` order
    """
    inputs, h = [], x.detach()
    with torch.no_grad():
        for layer in model:
            inputs.append(h)
            if isinstance(layer, nn.Linear):
                h = linear_forward(h, layer.weight, layer.bias)
            elif isinstance(layer, nn.ReLU):
                h = relu_forward(h)
            else:
                raise TypeError(f"unsupported layer {type(layer).__name__}")
        loss = mse_forward(h, target)
        grad = mse_backward(h, target)
        grads: list[torch.Tensor] = []
        for layer, h_in in zip(reversed(model), reversed(inputs), strict=True):
            if isinstance(layer, nn.Linear):
                grad, g_w, g_b = linear_backward(grad, h_in, layer.weight)
                grads = [g_w, g_b] + grads
            else:
                grad = relu_backward(grad, h_in)
    return loss, grads


def compare_with_autograd(
    model: nn.Sequential, x: torch.Tensor, target: torch.Tensor
) -> dict[str, float]:
    """Largest absolute difference between hand-made and autograd gradients, per parameter."""
    _, by_hand = mlp_gradients_by_hand(model, x, target)
    model.zero_grad()
    nn.functional.mse_loss(model(x), target).backward()
    return {
        name: float((p.grad - g).abs().max())
        for (name, p), g in zip(model.named_parameters(), by_hand, strict=True)
    }
