"""dlnn_helpers.mlp_regression: the regression MLP and its linear baseline, Xavier initialisation,
and the double-descent demonstrations of T5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlnn_helpers import mlp_regression as mr
from dlnn_helpers.mlp_data import make_housing_data


def test_sample_wise_double_descent_is_reproducible_and_refuses_a_single_point():
    curve = mr.sample_wise_double_descent((3, 12, 30), n_features=8, n_test=50, n_repeats=3)
    again = mr.sample_wise_double_descent((3, 12, 30), n_features=8, n_test=50, n_repeats=3)
    assert np.array_equal(curve.test_mse, again.test_mse) and curve.test_mse.shape == (3,)
    assert curve.rank[0] <= 3 and curve.rank[-1] <= 8 and curve.n_features == 8
    with pytest.raises(ValueError, match="at least 2 points"):
        mr.sample_wise_double_descent((1, 5))


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
