"""Every claim the text of tutorial 4 makes about a result, checked against the same computation.

Section 1's activations through a deep network and the networks at their first step are cheap and
seeded, so they are recomputed here with the reference helpers; the two training runs of Section 3
(and tutorial 3's, which Section 4 refers to) are read from the reference run.  Each test first
asserts that the wording of its claim is in the cell it guards.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from dlnn_helpers import initialisation as ini
from dlnn_helpers.deep_training_data import tiny_classification
from dlnn_helpers.utils import torch_threads
from dlnn_reference import initialisation as ref
from dlnn_reference.deep_training import mlp

from .claims_tools import cell_outputs, cell_source, training_runs

TUTORIAL = "T4_WeightInitialisation"
SEED = 7150  # the notebook's SEED


def _small(n_in, n_out):
    return ref.random_weights(n_in, n_out, 0.01)


def _large(n_in, n_out):
    return ref.random_weights(n_in, n_out, 0.05)


INITS = {"zero": ref.zero_weights, "small": _small, "large": _large, "lecun": ref.lecun_weights,
         "he": ref.he_weights}


@cache
def _layers(init: str, activation: str = "tanh") -> list[torch.Tensor]:
    """``layer_activations`` as the notebook calls it, computed once per test session."""
    return ini.layer_activations(INITS[init], activation)


@cache
def _gradients(init: str) -> np.ndarray:
    return _weight_gradients(INITS[init])


def _weight_gradients(init, activation="tanh", n_layers=7, width=2048, n_samples=16, seed=0):
    """RMS gradient of every weight matrix of the test bed of Section 1 (same inputs and weights as
    ``layer_activations``) for the squared error against random targets."""
    act = ini.ACTIVATIONS[activation]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        h = torch.randn(n_samples, width)
        weights = [init(width, width).requires_grad_() for _ in range(n_layers - 1)]
        target = torch.randn(n_samples, width)
    for weight in weights:
        h = act(h @ weight)
    ((h - target) ** 2).mean().backward()
    return np.array([float(w.grad.pow(2).mean().sqrt()) for w in weights])


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small computations: one thread is as fast on an idle machine and much faster on a busy one."""
    with torch_threads(1):
        yield


# ------------------------------------------------------------------------------ Section 1


def test_zero_weights_give_zero_layers_and_zero_gradients_and_keep_units_identical():
    assert "Every layer after the input is exactly 0." in cell_source(TUTORIAL, "3aff1e8f")
    text = cell_source(TUTORIAL, "b23bbc23")
    assert "So every weight's gradient is exactly zero and\ntraining changes nothing." in text
    assert "all units\nof a layer receive exactly the same gradient" in text
    test_bed = cell_source(TUTORIAL, "bb9b31d5")
    assert "Our test bed is a network of 7 layers of 2,048 units without biases." in test_bed
    layers = _layers("zero")
    assert len(layers) == 7 and all(h.shape == (16, 2048) for h in layers)
    assert all(torch.equal(h, torch.zeros_like(h)) for h in layers[1:]) and layers[0].abs().max() > 0
    # the test bed itself (no biases): every weight's gradient is zero
    assert np.all(_weight_gradients(ref.zero_weights, width=64) == 0)
    # with biases, training moves them, but the units of a layer stay identical
    torch.manual_seed(SEED)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    for p in net.parameters():
        nn.init.zeros_(p)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
    assert net[4].bias.abs().item() > 0  # something was learned
    for layer in (net[0], net[2]):
        assert torch.equal(layer.weight, layer.weight[:1].expand_as(layer.weight))
        assert torch.equal(layer.bias, layer.bias[:1].expand_as(layer.bias))


def test_small_weights_shrink_the_spread_by_0_45_per_layer():
    text = cell_source(TUTORIAL, "e3ffc168")
    assert ("Each layer multiplies the spread of the activations by about "
            "$0.01 \\sqrt{2048} \\approx 0.45$") in text
    assert "(a\nlittle less in the first layer, where tanh already bends the larger inputs)" in text
    assert "by layer 7 the activations are squeezed around zero" in text
    assert round(0.01 * math.sqrt(2048), 2) == 0.45
    stds = ini.activation_stds(_layers("small"))
    ratios = stds[1:] / stds[:-1]
    assert np.allclose(ratios[1:], 0.45, atol=0.015) and 0.35 < ratios[0] < 0.44
    assert stds[-1] < 0.01


def test_larger_weights_push_many_tanh_activations_against_their_limits():
    text = cell_source(TUTORIAL, "e3ffc168")
    assert ("multiply the spread of each layer's *input* by about $0.05 \\sqrt{2048} \\approx 2.3$ instead, "
            "so tanh\nreceives large values and pushes many activations against its limits ±1") in text
    assert round(0.05 * math.sqrt(2048), 1) == 2.3
    saturated = ini.saturated_fraction(_layers("large"), 0.9)
    assert np.all(saturated[1:] >= 0.38)


def test_the_sample_answer_on_small_and_large_scales_matches_the_test_bed():
    text = cell_source(TUTORIAL, "0271be34")
    for claim in (
        "the output depends on the input only at the level of $0.45^6 \\approx 0.008$",
        "the gradients of all layers are many times smaller than with a\nwell-scaled initialisation",
        "about 40 % of the activations of every layer lie beyond |h| > 0.9, where the derivative\n"
        "1 − tanh² is below 0.2",
        "The gradients do not vanish in this network",
        "so they even grow on the way back to the\nfirst layer",
    ):
        assert claim in text
    assert round(0.45**6, 3) == 0.008 and 1 - 0.9**2 < 0.2
    small, large, lecun = (_gradients(init) for init in ("small", "large", "lecun"))
    assert np.all(small < lecun / 10)
    saturated = ini.saturated_fraction(_layers("large"), 0.9)[1:]
    assert np.all(np.abs(saturated - 0.42) < 0.1)
    assert np.all(np.diff(large) < 0)  # larger towards the first layer
    assert large[0] > 2 * large[-1] and large[-1] >= lecun[-1]


def test_lecun_keeps_a_usable_spread_without_saturating():
    text = cell_source(TUTORIAL, "4054ebce")
    assert ("the standard deviation\nfalls only slowly, to about 0.3 in layer 7, because tanh is a little "
            "flatter than a straight line,\nagainst 0.007 with scale 0.01") in text
    assert "not saturated (almost none beyond |h| > 0.9 after layer 3)" in text
    lecun = _layers("lecun")
    stds = ini.activation_stds(lecun)
    assert round(stds[-1], 1) == 0.3 and np.all(stds[2:] / stds[1:-1] > 0.75)
    assert round(ini.activation_stds(_layers("small"))[-1], 3) == 0.007
    assert np.all(ini.saturated_fraction(lecun, 0.9)[3:] < 0.01)


def test_he_keeps_relu_activations_and_lecun_halves_their_variance_at_every_layer():
    text = cell_source(TUTORIAL, "2e03e8ae")
    assert "With He's scale the ReLU activations keep their spread (half of them are exactly zero" in text
    assert "With LeCun's scale under ReLU the spread halves its variance at every layer" in text
    he = _layers("he", "relu")
    he_stds = ini.activation_stds(he)
    assert np.allclose(he_stds[2:] / he_stds[1:-1], 1.0, atol=0.03)
    assert all(abs(float((h == 0).double().mean()) - 0.5) < 0.02 for h in he[1:])
    lecun = ini.activation_stds(_layers("lecun", "relu"))
    assert np.allclose((lecun[2:] / lecun[1:-1]) ** 2, 0.5, atol=0.02)


# ------------------------------------------------------------------------------ Section 2


def test_torch_init_functions_have_the_variances_the_text_gives():
    text = cell_source(TUTORIAL, "2e03e8ae")
    assert ("(Glorot's variance\n$\\mathrm{gain}^2 \\cdot 2 / (n_{in} + n_{out})$)") in text
    assert "(He's, $\\mathrm{gain}^2 / \\mathrm{fan}$; with `nonlinearity=\"linear\"` the gain is 1" in text
    assert ("LeCun's $1/n_{in}$). A gain multiplies the standard deviation, so the variance takes its "
            "square.") in text
    torch.manual_seed(SEED)
    weight = torch.empty(400, 600)  # (n_out, n_in), as nn.Linear stores it
    nn.init.xavier_normal_(weight)
    assert float(weight.var()) == pytest.approx(2 / (400 + 600), rel=0.02)
    nn.init.xavier_normal_(weight, gain=3.0)  # the gain enters the variance squared
    assert float(weight.var()) == pytest.approx(9 * 2 / (400 + 600), rel=0.02)
    nn.init.kaiming_normal_(weight)  # gain² = 2 for ReLU, fan = fan_in
    assert float(weight.var()) == pytest.approx(2 / 600, rel=0.02)
    nn.init.kaiming_normal_(weight, nonlinearity="linear")  # gain 1: LeCun's 1 / fan_in
    assert float(weight.var()) == pytest.approx(1 / 600, rel=0.02)


def test_lecun_and_glorot_coincide_for_the_square_layers_of_the_test_bed():
    text = cell_source(TUTORIAL, "942ba0f2")
    assert "For the square layers of our test bed ($n_{in} = n_{out} = 2048$) the two\ncoincide" in text
    n_in, n_out = 2048, 2048
    assert 2 / (n_in + n_out) == pytest.approx(1 / n_in)
    layers = _layers("lecun")
    assert all(h.shape[1] == 2048 for h in layers)


def test_pytorchs_default_linear_init_is_uniform_on_one_over_root_fan_in_with_a_third_of_lecuns_variance():
    text = cell_source(TUTORIAL, "5b3b27f6")
    assert ("the weights are uniform on $\\pm 1 / \\sqrt{\\mathrm{fan_{in}}}$, a variance of\n"
            "$1 / (3\\, \\mathrm{fan_{in}})$ — a third of LeCun's $1 / \\mathrm{fan_{in}}$.") in text
    assert "The bias is uniform on the same interval." in text
    assert ini.pytorch_default_bound(300) == pytest.approx(1 / math.sqrt(300))
    torch.manual_seed(SEED)
    layer = nn.Linear(300, 500)
    bound = 1 / math.sqrt(300)
    weight, bias = layer.weight.detach(), layer.bias.detach()
    assert weight.abs().max() <= bound and weight.abs().max() > 0.99 * bound
    assert bias.abs().max() <= bound and bias.abs().max() > 0.95 * bound
    assert float(weight.var()) == pytest.approx(1 / (3 * 300), rel=0.03)  # LeCun's 1 / fan_in, a third


# ------------------------------------------------------------------------------ Section 3


def _first_step(supervise_class):
    """The network of Section 3 as the notebook seeds it, and its gradients at the first step."""
    tiny = tiny_classification()
    torch.manual_seed(SEED)
    sup = supervise_class(nn.BCELoss(), mlp(36, 32, 6, nn.ReLU))
    sup(tiny.train_data, tiny.train_labels).backward()
    linears = [m for m in sup.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        outputs = sup.net(tiny.train_data)
        h, hidden = tiny.train_data, []
        for module in sup.net:
            h = module(h)
            if isinstance(module, nn.ReLU):
                hidden.append(h)
    return [float(m.weight.grad.abs().max()) for m in linears], outputs, hidden


def test_small_initialisation_starts_with_a_constant_output_and_gradients_below_adams_epsilon():
    text = cell_source(TUTORIAL, "f2c84a65")
    for claim in (
        "$0.01\\sqrt{32/2} = 0.04$",
        "the\noutput is the same to six digits for all of them",
        "every gradient of a first-layer weight is below\n$10^{-9}$ and every gradient of a second-layer "
        "weight below $10^{-8}$, no larger than Adam's\n$\\varepsilon = 10^{-8}$",
        "The last layers do get steps of full size",
        "at the first step the largest gradient of every layer is between\n$10^{-2}$ and 1.",
        "With He's scale the activations keep their\nsize through all six layers",
    ):
        assert claim in text
    runs = cell_source(TUTORIAL, "f0190a68")
    assert "torch.manual_seed(SEED)" in runs
    assert "random_class(nn.BCELoss(), relu_network())" in runs  # the network mlp(36, 32, 6) builds
    assert round(0.01 * math.sqrt(32 / 2), 2) == 0.04
    grads, outputs, hidden = _first_step(ref.SuperviseRandomWeights)
    assert float(outputs.max() - outputs.min()) < 1e-6
    assert grads[0] < 1e-9 and grads[1] < 1e-8
    assert all(g > 100 * 1e-8 for g in grads[3:])  # far above ε: Adam's steps have full size
    spreads = [float(h.std(dim=0).mean()) for h in hidden]  # across grids: the input-dependent part
    assert spreads[-1] < 0.01 * spreads[0] or spreads[-1] < 1e-3
    grads, _, hidden = _first_step(ref.SuperviseKaimingWeights)
    assert all(1e-2 < g < 1 for g in grads)
    stds = [float(h.std()) for h in hidden]
    assert max(stds) / min(stds) < 1.5


@pytest.mark.slow
def test_small_initialisation_stays_at_chance_and_kaiming_learns(reference_run):
    assert "Why does the network with N(0, 0.01²) weights stay at chance\nanyway?" in cell_source(
        TUTORIAL, "c68848b9")
    text = cell_source(TUTORIAL, "f2c84a65")
    assert "all they can learn is the base rate: predict 0.5" in text
    assert "The\nnetwork sits at the trivial solution and never escapes." in text
    runs = list(training_runs(reference_run(TUTORIAL), "f0190a68").values())
    small, kaiming = runs
    assert small.stop_reason == "no progress" and small.val_acc == 0.5 and small.train_acc == 0.5
    assert all(abs(loss - 0.6931) < 1e-3 for loss in small.losses) and small.losses
    assert kaiming.val_acc == 1.0 and kaiming.stop_reason == "100% validation accuracy"


@pytest.mark.slow
def test_batchnorm_and_residual_networks_of_tutorial_3_trained_where_the_plain_one_stayed_at_chance(
    reference_run,
):
    """Checked on the run made here: the networks with BatchNorm trained on both CPUs the course was
    run on, while a residual network without it stayed at chance on one of them (tutorial 3's runs are
    chaotic), so the text claims BatchNorm's runs only."""
    text = cell_source(TUTORIAL, "ea889b59")
    assert ("(with BatchNorm, tutorial 3's deep networks trained, where the\nplain 6-layer network with the "
            "same defaults stayed at chance)") in text
    t3 = reference_run("T3_TrainingDeepNetworks")
    (plain,) = [r for r in training_runs(t3, "4f8ae264").values() if r.label.startswith("6 layers")]
    assert plain.val_acc == 0.5 and plain.stop_reason == "no progress"
    with_batchnorm = [*training_runs(t3, "0e7f8666").values(), *training_runs(t3, "8e58efc7").values()]
    assert len(with_batchnorm) == 3 and all("BatchNorm" in r.label for r in with_batchnorm)
    assert all(r.val_acc >= 0.99 for r in with_batchnorm)


@pytest.mark.slow
def test_the_set_up_cell_prints_no_stray_value(reference_run):
    assert cell_outputs(reference_run(TUTORIAL), "b958f6a4") == "Random seed 7150 has been set.\n"


def test_the_pictures_fall_back_to_torch_nn_init_routines_that_draw_from_the_same_distribution():
    text = cell_source(TUTORIAL, "bb9b31d5")
    assert ("The pictures\nuse your initialiser once it passes its self-check; until then they use a "
            "`torch.nn.init` routine\nthat draws from the same distribution, and say so.") in text
    assert "the checks refuse `torch.nn.init` here" in text
    fallbacks = {
        "888c43d3": ("nn.init.zeros_(torch.empty(n_in, n_out))", 0.0),
        "943fc950": ("nn.init.normal_(torch.empty(n_in, n_out), std=scale)", 0.01),
        "28ea37cb": ('nn.init.kaiming_normal_(torch.empty(n_out, n_in), nonlinearity="linear").T',
                     1 / math.sqrt(300)),
        "35adfeec": ("nn.init.kaiming_normal_(torch.empty(n_out, n_in)).T", math.sqrt(2 / 300)),
    }
    torch.manual_seed(SEED)
    n_in, n_out = 300, 500
    for cell, (code, sigma) in fallbacks.items():
        assert code in cell_source(TUTORIAL, cell)
        weights = eval(f"lambda n_in, n_out, scale=0.01: {code}")(n_in, n_out)  # noqa: S307
        assert weights.shape == (n_in, n_out)
        assert float(weights.std()) == pytest.approx(sigma, rel=0.02, abs=1e-12)
    # each stand-in's one line names what runs
    assert ('instead=\'nn.init.kaiming_normal_ with nonlinearity="linear" (gain 1, so N(0, 1/n_in))\''
            in cell_source(TUTORIAL, "28ea37cb"))


def test_tutorial_3s_network_is_written_out_as_mlp_builds_it():
    text = cell_source(TUTORIAL, "f0190a68")
    assert '"""Tutorial 3\'s plain network: 6 Linear layers, 32 ReLU units wide, a sigmoid output."""' in text
    namespace: dict = {"nn": nn}
    exec(text[text.index("def relu_network"):text.index("def adam")], namespace)  # noqa: S102
    torch.manual_seed(SEED)
    written = namespace["relu_network"]()
    torch.manual_seed(SEED)
    reference = mlp(36, 32, 6, nn.ReLU)
    assert str(written) == str(reference)
    for a, b in zip(written.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)  # the same draws: the runs are those of tutorial 3's network
