"""dlnn_helpers.mlp_data: T5's synthetic housing data."""

from __future__ import annotations

import numpy as np
import torch

from dlnn_helpers.mlp_data import make_housing_data, make_housing_raw


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
