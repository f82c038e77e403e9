"""dlnn_helpers.mlp_backprop: backpropagation by hand through layers written by hand, compared with
autograd, and the stand-ins of T5's layer exercises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnn_helpers import mlp_backprop as bp


def _hand_layers() -> dict[str, bp.Layer]:
    """Layers written by hand (the test's own answers to the exercises)."""
    return {
        "linear": bp.Layer(lambda x, w, b: x @ w.T + b, lambda g, x, w: (g @ w, g.T @ x, g.sum(0))),
        "relu": bp.Layer(lambda x: x.clamp(min=0), lambda g, x: g * (x > 0)),
        "loss": bp.Layer(lambda p, t: ((p - t) ** 2).mean(), lambda p, t: 2 * (p - t) / p.numel()),
    }


@pytest.mark.parametrize("batch", [1, 7])
def test_backprop_by_hand_matches_autograd(batch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    x, target = torch.randn(batch, 3), torch.randn(batch, 2)
    loss, grads = bp.gradients_by_hand(model, x, target, **_hand_layers())
    assert torch.isclose(loss, nn.functional.mse_loss(model(x), target))
    assert max(bp.compare_with_autograd(model, x, target, **_hand_layers()).values()) < 1e-6
    assert [g.shape for g in grads] == [p.shape for p in model.parameters()]
    fallback = {"linear": bp.AUTOGRAD_LINEAR, "relu": bp.AUTOGRAD_RELU, "loss": bp.AUTOGRAD_LOSS}
    assert max(bp.compare_with_autograd(model, x, target, **fallback).values()) < 1e-6


def test_a_wrong_layer_shows_in_the_comparison():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    x, target = torch.randn(6, 3), torch.randn(6, 1)
    layers = _hand_layers()
    layers["relu"] = bp.Layer(layers["relu"].forward, lambda g, x: g)  # the ReLU's derivative forgotten
    differences = bp.compare_with_autograd(model, x, target, **layers)
    assert differences["2.weight"] < 1e-6 < differences["0.weight"]


def test_the_printed_comparison_says_which_layers_are_autograds_stand_ins(capsys):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    x, target = torch.randn(6, 3), torch.randn(6, 1)
    fallback = {"linear": bp.AUTOGRAD_LINEAR, "relu": bp.AUTOGRAD_RELU, "loss": bp.AUTOGRAD_LOSS}
    bp.print_comparison(model, x, target, **fallback)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("None of your layers passes its self-check yet: every backward pass below is "
                      "autograd's, so this compares autograd with itself (the differences are 0 and test "
                      "nothing yet).")
    assert len(out) == 1 + 4 and out[1].startswith("0.weight  largest difference from autograd: ")
    bp.print_comparison(model, x, target, **{**_hand_layers(), "loss": bp.AUTOGRAD_LOSS})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Autograd's backward pass stands in for your squared error: the differences test "
                      "your other layers only.")
    differences = bp.print_comparison(model, x, target, **_hand_layers())
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].startswith("0.weight") and max(differences.values()) < 1e-6


def test_own_or_autograd_takes_the_students_layer_only_once_it_passes(capsys):
    from dlnn_helpers.checks import check_linear_layer

    own = _hand_layers()["linear"]
    chosen = bp.own_or_autograd(own.forward, own.backward, check=check_linear_layer,
                                fallback=bp.AUTOGRAD_LINEAR, name="linear layer")
    assert chosen == own and capsys.readouterr().out == "Using your linear layer.\n"
    chosen = bp.own_or_autograd(own.forward, lambda g, x, w: (g @ w, x.T @ g, g.sum(0)),
                                check=check_linear_layer, fallback=bp.AUTOGRAD_LINEAR,
                                name="linear layer")
    assert chosen is bp.AUTOGRAD_LINEAR
    assert capsys.readouterr().out == ("Your linear layer does not pass its self-check yet: using "
                                       "PyTorch's linear layer with autograd's backward pass instead.\n")
