"""Activation statistics through depth, figures and PyTorch's default (the initialisers are the
tutorial's exercises: their reference versions, instructor side, feed the helpers here)."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from torch import nn

from dlnn_helpers import initialisation as ini
from dlnn_reference import initialisation as ref

matplotlib.use("Agg")

N_VALUES = 16 * 2048  # activations per layer in the histogram experiment


def test_reference_initialisers_have_the_documented_statistics():
    torch.manual_seed(0)
    n_in, n_out = 500, 300
    tol = 6 / math.sqrt(2 * n_in * n_out)
    assert torch.equal(ref.zero_weights(n_in, n_out), torch.zeros(n_in, n_out))
    for weights, sigma in [
        (ref.random_weights(n_in, n_out, 0.05), 0.05),
        (ref.lecun_weights(n_in, n_out), 1 / math.sqrt(n_in)),
        (ref.he_weights(n_in, n_out), math.sqrt(2 / n_in)),
    ]:
        assert weights.shape == (n_in, n_out)
        assert abs(float(weights.std()) / sigma - 1) < tol


def test_the_student_package_holds_no_initialiser():
    for name in ("zero_weights", "random_weights", "lecun_weights", "he_weights",
                 "SuperviseRandomWeights", "SuperviseKaimingWeights"):
        assert not hasattr(ini, name)


def test_zero_initialisation_collapses_every_layer_after_the_input():
    layers = ini.layer_activations(ref.zero_weights, "tanh")
    assert len(layers) == 7 and all(h.shape == (16, 2048) for h in layers)
    assert all(torch.equal(h, torch.zeros_like(h)) for h in layers[1:])


def test_layer_activations_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(4)
    expected = torch.rand(3)
    torch.manual_seed(4)
    first = ini.layer_activations(ref.he_weights, "relu", n_layers=3, width=64, seed=1)
    assert torch.equal(torch.rand(3), expected)
    again = ini.layer_activations(ref.he_weights, "relu", n_layers=3, width=64, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_histogram_figure_has_one_panel_per_layer():
    fig = ini.plot_activation_histograms(ini.layer_activations(ref.zero_weights, "tanh",
                                                               n_layers=4, width=32), "zero",
                                         show=False)
    assert len(fig.axes) == 4
    assert "std 0" in fig.axes[1].get_title()


def test_reference_supervise_classes_initialise_every_linear_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(200, 300), nn.ReLU(), nn.Sequential(nn.Linear(300, 100)))
    ref.SuperviseRandomWeights(nn.MSELoss(), net)
    for layer in (net[0], net[2][0]):
        assert float(layer.weight.detach().std()) == pytest.approx(0.01, rel=0.05)
    ref.SuperviseKaimingWeights(nn.MSELoss(), net)
    for layer in (net[0], net[2][0]):
        assert float(layer.weight.detach().std()) == pytest.approx(math.sqrt(2 / layer.in_features),
                                                          rel=0.05)


def test_histograms_refuse_one_tensor_or_too_many_layers():
    """One tensor is not a list of layers (it would draw a panel per row: thousands of panels)."""
    with pytest.raises(ValueError, match="not one tensor"):
        ini.plot_activation_histograms(torch.zeros(500, 6, 6), show=False)
    with pytest.raises(ValueError, match="not 51 layers"):
        ini.plot_activation_histograms([torch.zeros(3)] * 51, show=False)
    fig = ini.plot_activation_histograms([torch.randn(100)] * 3, show=False)
    assert len(fig.axes) == 3
    matplotlib.pyplot.close(fig)
