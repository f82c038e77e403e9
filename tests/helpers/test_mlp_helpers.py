"""T5 helpers: activations and their derivatives, backprop by hand, the housing data, the regression
MLP and its baseline, and the double-descent demonstration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlnn_helpers import backprop as bp
from dlnn_helpers import mlp_regression as mr
from dlnn_helpers.activations import ACTIVATIONS
from dlnn_helpers.regression_data import make_housing_data, make_housing_raw


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


def test_sample_wise_double_descent_is_reproducible_and_refuses_a_single_point():
    from dlnn_helpers import mlp_regression as mr

    curve = mr.sample_wise_double_descent((3, 12, 30), n_features=8, n_test=50, n_repeats=3)
    again = mr.sample_wise_double_descent((3, 12, 30), n_features=8, n_test=50, n_repeats=3)
    assert np.array_equal(curve.test_mse, again.test_mse) and curve.test_mse.shape == (3,)
    assert curve.rank[0] <= 3 and curve.rank[-1] <= 8 and curve.n_features == 8
    with pytest.raises(ValueError, match="at least 2 points"):
        mr.sample_wise_double_descent((1, 5))


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


def test_housing_data_is_reproducible_standardised_and_private():
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    data = make_housing_data(random_state=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    again = make_housing_data(random_state=3)
    assert torch.equal(data.x_train, again.x_train) and torch.equal(data.y_test, again.y_test)
    assert data.x_train.shape == (405, 2) and data.x_test.shape == (101, 2)
    assert torch.allclose(data.x_train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    x, y = make_housing_raw(506, random_state=3)
    assert np.corrcoef(x[:, 0], x[:, 1])[0, 1] < -0.3  # more rooms, fewer low-income households
    assert 5.0 <= y.min() and y.max() <= 50.0


def test_mlp_beats_the_linear_baseline_and_xavier_zeroes_biases():
    data = make_housing_data(random_state=0)
    linear_train, linear_test = mr.linear_baseline(data)
    coef = np.linalg.lstsq(np.c_[data.x_train.numpy(), np.ones(405)], data.y_train.numpy(),
                           rcond=None)[0]
    pred = np.c_[data.x_test.numpy(), np.ones(101)] @ coef
    assert np.isclose(linear_test, np.mean((pred - data.y_test.numpy()) ** 2), rtol=1e-4)
    run = mr.train_regression_mlp(data, n_epochs=300, seed=0, init=mr.xavier_init_)
    assert run.test_mse < 0.8 * linear_test
    assert run.epoch_losses[-1] < run.epoch_losses[0] / 5
    model = mr.xavier_init_(mr.RegressionMLP())
    assert all(torch.all(m.bias == 0) for m in model.modules() if isinstance(m, nn.Linear))


def test_training_is_reproducible_from_its_seed():
    data = make_housing_data(random_state=0)
    a = mr.train_regression_mlp(data, n_epochs=5, seed=4)
    b = mr.train_regression_mlp(data, n_epochs=5, seed=4)
    assert np.array_equal(a.epoch_losses, b.epoch_losses)


def test_the_loader_draws_the_batches_of_a_shuffling_dataloader():
    """train_regression_mlp hands its DataLoader whole batches of indices: the same batches, in the
    same order, as DataLoader(dataset, batch_size, shuffle=True, generator=...) gives."""
    from torch.utils.data import DataLoader, TensorDataset

    data = make_housing_data(random_state=0)
    dataset = TensorDataset(data.x_train, data.y_train)
    plain = DataLoader(dataset, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(7))
    ours = mr._index_batches(len(dataset), 128, 7)
    for _ in range(3):  # epochs: the generator is shared across them
        pairs = list(zip(plain, ours, strict=True))
        assert len(pairs) == 4
        for (xb, yb), (idx,) in pairs:
            assert torch.equal(xb, data.x_train[idx]) and torch.equal(yb, data.y_train[idx])


def test_side_by_side_training_is_the_one_by_one_training_up_to_rounding():
    data = make_housing_data(random_state=0)
    starts = [(0, None), (3, mr.xavier_init_), (5, None)]
    test_mse, curves = mr.train_side_by_side(data, starts, n_epochs=40)
    for k, (seed, init) in enumerate(starts):
        run = mr.train_regression_mlp(data, n_epochs=40, seed=seed, init=init)
        assert np.allclose(curves[k], run.epoch_losses, rtol=1e-5)
        assert np.isclose(test_mse[k], run.test_mse, rtol=1e-5)
    assert curves.shape == (3, 40) and test_mse.shape == (3,)


def test_double_descent_peaks_at_the_interpolation_threshold():
    result = mr.double_descent(n_repeats=8, random_state=1)
    peak = result.n_features[np.argmax(result.test_mse)]
    assert abs(peak - result.n_train) <= 4
    assert result.test_mse.max() > 10 * result.test_mse[0]
    assert result.test_mse.max() > 10 * result.test_mse[-1]
    beyond = result.n_features > result.n_train + 6
    assert np.all(result.train_mse[beyond] < 1e-6)
    # the rank of the training features: below n_train for smaller models, n_train from the threshold
    assert result.rank.shape == result.n_features.shape
    assert np.all(result.rank <= np.minimum(result.n_features, result.n_train))
    assert np.all(np.diff(result.rank) >= 0)
    # a few units above n_train (dead units add no rank), up to the spacing of the size grid there
    assert result.n_train < result.threshold <= 1.5 * result.n_train
    fits = result.n_features >= result.threshold
    assert np.all(result.rank[fits] == result.n_train) and np.all(result.rank[~fits] < result.n_train)
    assert np.all(result.train_mse[fits] < 1e-6) and np.all(result.train_mse[~fits] > 1e-6)
    again = mr.double_descent(n_repeats=8, random_state=1)
    assert np.array_equal(result.test_mse, again.test_mse)


@pytest.mark.parametrize("random_state", [0, 1, 2021])
def test_epoch_wise_double_descent_has_two_minima_and_a_peak_between_them(random_state):
    curve = mr.epoch_wise_double_descent(random_state=random_state)
    first, peak, second = curve.extrema()
    assert first < peak < second
    test = curve.test_mse
    assert test[first] < 0.9  # a first descent from 1 (w = 0, before the first step)...
    assert test[peak] > 1.3 * test[first]  # ...a rise...
    assert test[second] < 0.5 * test[first]  # ...and a second descent, below the first minimum
    assert curve.epochs[peak] >= 10 * curve.epochs[first] and curve.epochs[second] >= 100 * curve.epochs[peak]
    assert np.all(np.diff(curve.train_mse) <= 1e-12)  # gradient descent on least squares
    assert test.min() > curve.noise_mse  # no model beats the label noise


def test_epoch_wise_double_descent_matches_a_gradient_descent_loop():
    epochs = np.arange(1, 301)
    curve = mr.epoch_wise_double_descent(epochs, n_train=30, n_features=(12, 5), scales=(1.0, 0.3),
                                         lr=0.1, random_state=3)
    # the same draws as the helper, then 300 explicit steps
    rng = np.random.default_rng(3)
    scale = np.r_[np.ones(12), np.full(5, 0.3)]
    theta = np.r_[rng.standard_normal(12) * np.sqrt(0.5 / 12), rng.standard_normal(5) * np.sqrt(0.5 / 5)]
    z = rng.standard_normal((30, 17))
    x, y = z * scale, z @ theta + 0.2 * rng.standard_normal(30)
    w, train, test = np.zeros(17), [], []
    for _ in epochs:
        w -= 0.1 * x.T @ (x @ w - y) / 30
        train.append(np.mean((x @ w - y) ** 2))
        test.append(np.sum(((w - theta / scale) * scale) ** 2) + 0.04)
    variance = theta @ theta + 0.04
    np.testing.assert_allclose(curve.train_mse, np.array(train) / variance, rtol=1e-8)
    np.testing.assert_allclose(curve.test_mse, np.array(test) / variance, rtol=1e-8)
    assert np.isclose(curve.noise_mse, 0.04 / variance)


def test_epoch_wise_double_descent_refuses_a_diverging_step_and_bad_epochs():
    with pytest.raises(ValueError, match="diverges with lr=1"):
        mr.epoch_wise_double_descent(lr=1.0)
    with pytest.raises(ValueError, match="increasing integers from 1"):
        mr.epoch_wise_double_descent([0, 10])
    with pytest.raises(ValueError, match="increasing integers from 1"):
        mr.epoch_wise_double_descent([10, 5])
    with pytest.raises(ValueError, match="small_scale_share"):
        mr.epoch_wise_double_descent(small_scale_share=1.5)
    flat = mr.epoch_wise_double_descent(np.arange(1, 4), n_features=(10, 0), random_state=0)
    with pytest.raises(ValueError, match="no double descent"):
        flat.extrema()
