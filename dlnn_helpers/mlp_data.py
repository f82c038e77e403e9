"""Tutorial 5: a synthetic house-price regression with two inputs, generated on the spot.

The classic example of the source material, the Boston house-prices data, was withdrawn from
scikit-learn (version 1.2) because one of its columns was engineered from an assumption about the
racial make-up of neighbourhoods; it also cannot be downloaded here.  :func:`make_housing_data`
draws a data set of the same size and flavour instead: two inputs, the average number of rooms of a
district and the share of low-income households (in %), negatively correlated, and a median price in
thousands of dollars that grows with rooms and falls *non-linearly* with the low-income share, plus
noise, capped at 50 like the original.  The formula is invented; only the shape is inspired by the
well-known scatter plots of that data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FEATURE_NAMES = ("rooms", "low_income_pct")
NOISE_STD = 3.0
"""Standard deviation of the price noise (thousands of dollars): the best possible MSE is about 9."""


def housing_price(rooms: np.ndarray, low_income: np.ndarray) -> np.ndarray:
    """The noiseless median price (thousands of dollars) of the synthetic districts."""
    extra_rooms = np.maximum(rooms - 6.5, 0.0)
    return 9.0 + 30.0 * np.exp(-low_income / 9.0) + 2.0 * (rooms - 6.0) + 9.0 * extra_rooms**2


@dataclass
class RegressionData:
    """A standardised train/test split (float32 tensors).

    Attributes
    ----------
    x_train, x_test : torch.Tensor of shape (n, 2)
        Inputs standardised with the *training* mean and standard deviation.
    y_train, y_test : torch.Tensor of shape (n, 1)
        Prices in thousands of dollars (not standardised).
    x_mean, x_std : torch.Tensor of shape (2,)
        The statistics used for the standardisation.
    feature_names : tuple of str
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_mean: torch.Tensor
    x_std: torch.Tensor
    feature_names: tuple[str, ...] = FEATURE_NAMES


def make_housing_raw(n_samples: int = 506, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw the raw inputs (rooms, low-income %) and prices.

    Parameters
    ----------
    n_samples : int
    random_state : int
        Seed of a private ``np.random.default_rng``.

    Returns
    -------
    x : np.ndarray of shape (n_samples, 2)
    y : np.ndarray of shape (n_samples,)
    """
    rng = np.random.default_rng(random_state)
    rooms = np.clip(rng.normal(6.3, 0.7, n_samples), 3.5, 8.8)
    low_income = np.clip(np.exp(rng.normal(2.4 - 0.45 * (rooms - 6.3), 0.45)), 1.5, 38.0)
    price = housing_price(rooms, low_income) + NOISE_STD * rng.normal(size=n_samples)
    return np.stack([rooms, low_income], axis=1), np.clip(price, 5.0, 50.0)


def make_housing_data(
    n_samples: int = 506, test_fraction: float = 0.2, random_state: int = 0
) -> RegressionData:
    """Draw the data, split it at random and standardise the inputs with training statistics.

    Parameters
    ----------
    n_samples : int
    test_fraction : float
        Share of the points held out for testing.
    random_state : int

    Returns
    -------
    RegressionData
    """
    x, y = make_housing_raw(n_samples, random_state)
    order = np.random.default_rng(random_state + 1).permutation(n_samples)
    n_test = int(round(test_fraction * n_samples))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)

    def f32(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float32)

    return RegressionData(
        x_train=f32((x[train] - mean) / std),
        y_train=f32(y[train, None]),
        x_test=f32((x[test] - mean) / std),
        y_test=f32(y[test, None]),
        x_mean=f32(mean),
        x_std=f32(std),
    )
