"""dlnn_helpers.mlp_activations: T5's activation functions and their derivatives written by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnn_helpers.mlp_activations import ACTIVATIONS, plot_activations


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    act = ACTIVATIONS[name]
    x = torch.linspace(-4, 4, 161, dtype=torch.float64)
    x = x[x.abs() > 1e-3].requires_grad_(True)
    (grad,) = torch.autograd.grad(act.function(x).sum(), x)
    assert torch.allclose(act.derivative(x.detach()), grad, atol=1e-10)


def test_activations_agree_with_torch():
    x = torch.randn(100, dtype=torch.float64)
    assert torch.allclose(ACTIVATIONS["gelu"].function(x), nn.functional.gelu(x))
    assert torch.allclose(ACTIVATIONS["silu"].function(x), nn.functional.silu(x))
    assert torch.allclose(ACTIVATIONS["leaky_relu"].function(x), nn.functional.leaky_relu(x, 0.1))


def test_plot_activations_refuses_names_it_does_not_know():
    with pytest.raises(ValueError, match="keys of ACTIVATIONS"):
        plot_activations(torch.zeros(3000))
    with pytest.raises(ValueError, match="keys of ACTIVATIONS"):
        plot_activations("relu")
