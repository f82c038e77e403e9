"""Tutorial 5: a small regression MLP, a linear baseline, initialisation, and double descent.

* :class:`RegressionMLP` (2 → 4 → 3 → 1, ReLU) trained with Adam through a ``DataLoader``
  (:func:`train_regression_mlp`), and the least-squares line it should beat
  (:func:`linear_baseline`);
* :func:`xavier_init_` (Xavier-normal weights, zero biases) and :func:`compare_initialisations`;
* :func:`double_descent`: model-wise double descent with random ReLU features, and
  :func:`sample_wise_double_descent` along the number of training points;
* :func:`epoch_wise_double_descent`: double descent over the epochs of gradient descent, in closed
  form, for a linear model whose features come in a large-scale and a small-scale group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from .mlp_data import RegressionData
from .utils import torch_threads


class RegressionMLP(nn.Module):
    """Two hidden ReLU layers of 4 and 3 units and a linear output.

    Parameters
    ----------
    input_dim : int
    output_dim : int
    hidden : (int, int)
    """

    def __init__(self, input_dim: int = 2, output_dim: int = 1, hidden: tuple[int, int] = (4, 3)):
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Linear(input_dim, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU()
        )
        self.output_layer = nn.Linear(hidden[1], output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, output_dim)."""
        return self.output_layer(self.hidden(x))


def xavier_init_(model: nn.Module, gain: float = 1.0) -> nn.Module:
    """Xavier (Glorot) normal weights and zero biases for every ``nn.Linear`` of ``model``.

    Returns the model (changed in place).
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight, gain=gain)
            nn.init.zeros_(module.bias)
    return model


@dataclass
class RegressionRun:
    """Result of :func:`train_regression_mlp`.

    Attributes
    ----------
    model : RegressionMLP
    epoch_losses : np.ndarray of shape (n_epochs,)
        Mean training loss of each epoch.
    test_mse : float
    train_mse : float
    """

    model: nn.Module
    epoch_losses: np.ndarray
    test_mse: float
    train_mse: float


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error of ``model`` on ``(x, y)``."""
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x), y))


def train_regression_mlp(
    data: RegressionData,
    *,
    n_epochs: int = 500,
    lr: float = 0.01,
    batch_size: int = 128,
    seed: int = 0,
    init: Callable[[nn.Module], object] | None = None,
    model: nn.Module | None = None,
) -> RegressionRun:
    """Train a :class:`RegressionMLP` with Adam on minibatches from a shuffling ``DataLoader``.

    Parameters
    ----------
    data : RegressionData
    n_epochs, lr, batch_size : training settings (500, 0.01, 128 in the tutorial)
    seed : int
        Seeds the initial weights and the shuffling (private generators; global RNG untouched).
    init : callable, optional
        Applied to the new model before training, e.g. :func:`xavier_init_`.
    model : nn.Module, optional
        Train this model instead of a new :class:`RegressionMLP`.

    Returns
    -------
    RegressionRun
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if model is None:
            model = RegressionMLP(data.x_train.shape[1], data.y_train.shape[1])
        if init is not None:
            init(model)
    # The batches of DataLoader(dataset, batch_size, shuffle=True, generator=...), the same ones in
    # the same order, drawn as whole batches of indices: one indexing per batch instead of one per
    # sample and a collate (a third of the training time of these tiny networks).
    generator = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(data.x_train, data.y_train)
    loader = DataLoader(
        dataset, batch_size=None, generator=generator,
        sampler=BatchSampler(RandomSampler(dataset, generator=generator), batch_size, drop_last=False),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    losses = np.empty(n_epochs)
    model.train()
    with torch_threads(1):
        for epoch in range(n_epochs):
            total, count = 0.0, 0
            for xb, yb in loader:
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(xb)
                count += len(xb)
            losses[epoch] = total / count
    model.eval()
    return RegressionRun(
        model=model,
        epoch_losses=losses,
        test_mse=mse(model, data.x_test, data.y_test),
        train_mse=mse(model, data.x_train, data.y_train),
    )


def linear_baseline(data: RegressionData) -> tuple[float, float]:
    """Least-squares linear regression (with intercept) on the same split.

    Returns
    -------
    train_mse, test_mse : float
    """

    def design(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.ones(len(x), 1)], dim=1).double()

    coef = torch.linalg.lstsq(design(data.x_train), data.y_train.double()).solution
    train = float(((design(data.x_train) @ coef - data.y_train) ** 2).mean())
    test = float(((design(data.x_test) @ coef - data.y_test) ** 2).mean())
    return train, test


def compare_initialisations(
    data: RegressionData, seeds: Sequence[int] = (0, 1, 2), n_epochs: int = 500
) -> dict[str, np.ndarray]:
    """Test MSE of the MLP with PyTorch's default initialisation and with :func:`xavier_init_`.

    One network per seed and initialisation, trained as :func:`train_regression_mlp` trains it, all
    at once (:func:`train_side_by_side`).

    Returns
    -------
    dict
        ``"default"`` and ``"xavier"`` -> test MSE per seed; ``"default_curves"`` and
        ``"xavier_curves"`` -> training losses of shape (n_seeds, n_epochs).
    """
    out: dict[str, np.ndarray] = {}
    starts = [(seed, init) for init in (None, xavier_init_) for seed in seeds]
    test_mse, curves = train_side_by_side(data, starts, n_epochs=n_epochs)
    for k, label in enumerate(("default", "xavier")):
        part = slice(k * len(seeds), (k + 1) * len(seeds))
        out[label] = test_mse[part]
        out[f"{label}_curves"] = curves[part]
    return out


def _index_batches(n: int, batch_size: int, seed: int) -> DataLoader:
    """The index batches :func:`train_regression_mlp`'s loader draws with ``seed`` (same order)."""
    generator = torch.Generator().manual_seed(seed)
    indices = TensorDataset(torch.arange(n))
    return DataLoader(indices, batch_size=None, generator=generator,
                      sampler=BatchSampler(RandomSampler(indices, generator=generator), batch_size,
                                           drop_last=False))


def train_side_by_side(
    data: RegressionData,
    starts: Sequence[tuple[int, Callable[[nn.Module], object] | None]],
    *,
    n_epochs: int = 500,
    lr: float = 0.01,
    batch_size: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Train one :class:`RegressionMLP` per ``(seed, init)`` as :func:`train_regression_mlp` does,
    all at once: the networks' weights are stacked along a first axis of length R = len(starts),
    every step multiplies R batches at once (``torch.baddbmm``), and Adam, which acts on every
    weight separately, updates the stacked weights.  Each network sees the minibatches of its own
    seed, so the runs are those of :func:`train_regression_mlp` up to rounding (the batched
    products may add in another order).

    Parameters
    ----------
    data : RegressionData
    starts : sequence of (int, callable or None)
        The seed and the initialisation of each network (as ``train_regression_mlp``'s).
    n_epochs, lr, batch_size : training settings

    Returns
    -------
    test_mse : np.ndarray of shape (R,)
    epoch_losses : np.ndarray of shape (R, n_epochs)
    """
    models = []
    for seed, init in starts:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = RegressionMLP(data.x_train.shape[1], data.y_train.shape[1])
            if init is not None:
                init(model)
        models.append(model)
    linears = [[m.hidden[0], m.hidden[2], m.output_layer] for m in models]
    weights = [torch.stack([ls[k].weight.detach() for ls in linears]).transpose(1, 2).contiguous()
               .requires_grad_(True) for k in range(3)]  # (R, n_in, n_out) each
    biases = [torch.stack([ls[k].bias.detach() for ls in linears]).unsqueeze(1)
              .requires_grad_(True) for k in range(3)]  # (R, 1, n_out) each

    def forward(x: torch.Tensor) -> torch.Tensor:  # (R, B, n_in) -> (R, B, n_out)
        for k in range(3):
            x = torch.baddbmm(biases[k], x, weights[k])
            if k < 2:
                x = torch.relu(x)
        return x

    optimizer = torch.optim.Adam([*weights, *biases], lr=lr)
    n = len(data.x_train)
    losses = np.empty((len(starts), n_epochs))
    with torch_threads(1):
        loaders = [_index_batches(n, batch_size, seed) for seed, _ in starts]
        for epoch in range(n_epochs):
            total = torch.zeros(len(starts), dtype=torch.float64)
            for batches in zip(*loaders, strict=True):
                idx = torch.stack([b[0] for b in batches])  # (R, B)
                per_run = ((forward(data.x_train[idx]) - data.y_train[idx]) ** 2).mean(dim=(1, 2))
                optimizer.zero_grad()
                per_run.sum().backward()  # each network's gradient is that of its own loss
                optimizer.step()
                total += per_run.detach().double() * idx.shape[1]
            losses[:, epoch] = (total / n).numpy()
        with torch.no_grad():
            test = forward(data.x_test.expand(len(starts), -1, -1))
            test_mse = ((test - data.y_test) ** 2).mean(dim=(1, 2)).double().numpy()
    return test_mse, losses


def plot_initialisations(result: dict[str, np.ndarray], baseline_mse: float) -> None:
    """Training-loss curves of both initialisations and their test MSE per seed."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for label, color in (("default", "tab:blue"), ("xavier", "tab:orange")):
        curves = result[f"{label}_curves"]
        ax1.plot(curves.T, c=color, alpha=0.6)
        ax1.plot([], c=color, label=label)
        ax2.scatter(np.full(len(result[label]), label), result[label], c=color, s=40)
    ax1.set(yscale="log", xlabel="epoch", ylabel="training MSE", title="Training loss per seed")
    ax1.legend()
    ax2.axhline(baseline_mse, ls="--", c="grey", label="linear regression")
    ax2.set(ylabel="test MSE", title="Test MSE per seed")
    ax2.legend()
    fig.tight_layout()
    plt.show()


def plot_regression_fit(run: RegressionRun, data: RegressionData) -> None:
    """Training loss per epoch, and predicted against true prices on the test set."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(run.epoch_losses)
    ax1.set(yscale="log", xlabel="epoch", ylabel="training MSE", title="Training loss")
    with torch.no_grad():
        pred = run.model(data.x_test)[:, 0]
    lo, hi = float(data.y_test.min()), float(data.y_test.max())
    ax2.scatter(data.y_test[:, 0], pred, s=12)
    ax2.plot([lo, hi], [lo, hi], "--", c="grey")
    ax2.set(xlabel="true price (k$)", ylabel="predicted price (k$)",
            title=f"Test set: MSE {run.test_mse:.1f}")
    fig.tight_layout()
    plt.show()


# --------------------------------------------------------------------------------- double descent


@dataclass
class DoubleDescent:
    """Result of :func:`double_descent`.

    Attributes
    ----------
    n_features : np.ndarray of shape (k,)
        Model sizes (number of hidden units, i.e. trained parameters).
    train_mse, test_mse : np.ndarray of shape (k,)
        Median over repetitions (standardised prices: 1 is the error of predicting the mean).
    n_train : int
        Number of training points: no model with fewer features can fit the training set exactly.
    rank : np.ndarray of shape (k,)
        Median over repetitions of the rank of the training feature matrix (``n_train`` × size). A
        model fits its training set exactly once the rank reaches ``n_train``.
    """

    n_features: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray
    n_train: int
    rank: np.ndarray

    @property
    def threshold(self) -> int:
        """The interpolation threshold: the smallest size whose median rank is ``n_train`` (-1 when
        no size reaches it)."""
        reached = np.flatnonzero(self.rank >= self.n_train)
        return int(self.n_features[reached[0]]) if len(reached) else -1


def double_descent(
    n_features: Sequence[int] | None = None,
    *,
    n_train: int = 40,
    n_test: int = 500,
    n_repeats: int = 20,
    random_state: int = 0,
) -> DoubleDescent:
    """Model-wise double descent of a two-layer ReLU network with a fixed random first layer.

    Data: ``n_train`` districts of the synthetic housing data (:mod:`.mlp_data`), inputs and
    prices standardised with training statistics, and ``n_test`` fresh districts for testing.
    Model: ``f(x) = Σ_j a_j relu(w_j · x + b_j)`` with random Gaussian ``w_j, b_j`` and trained
    output weights ``a``, fitted by minimum-norm least squares -- the solution that gradient descent
    from ``a = 0`` converges to. With fewer than ``n_train`` hidden units this is ordinary least
    squares; with more, the network interpolates the training data, and among all interpolating
    solutions the minimum-norm one is chosen. The curve records, for every size, the median
    training and test errors and the median rank of the training feature matrix, and the
    interpolation threshold: the first size from which that rank is ``n_train``.

    Parameters
    ----------
    n_features : sequence of int, optional
        Model sizes; by default 2 … 75 × n_train, densest around the threshold.
    n_train, n_test : int
    n_repeats : int
        Independent draws of data and features; the median over draws is reported.
    random_state : int

    Returns
    -------
    DoubleDescent
    """
    from .mlp_data import make_housing_raw

    if n_features is None:
        grid = np.unique(np.round(np.geomspace(2, 75 * n_train, 30)).astype(int))
        n_features = np.unique(np.concatenate([grid, n_train + np.arange(-6, 7, 2)]))
    sizes = np.asarray(n_features)
    generator = torch.Generator().manual_seed(random_state)
    train = np.empty((n_repeats, len(sizes)))
    test = np.empty((n_repeats, len(sizes)))
    rank = np.empty((n_repeats, len(sizes)))
    p_max = int(sizes.max())
    with torch_threads(1):
        for r in range(n_repeats):
            x_np, y_np = make_housing_raw(n_train + n_test, random_state=random_state * 1000 + r)
            x, y = torch.tensor(x_np), torch.tensor(y_np)[:, None]
            x = (x - x[:n_train].mean(0)) / x[:n_train].std(0)
            y = (y - y[:n_train].mean()) / y[:n_train].std()
            w = torch.randn(x.shape[1], p_max, generator=generator, dtype=torch.float64)
            b = torch.randn(p_max, generator=generator, dtype=torch.float64)
            phi = torch.relu(x @ w + b)
            phi_train, y_train, phi_test, y_test = phi[:n_train], y[:n_train], phi[n_train:], y[n_train:]
            for k, p in enumerate(sizes):
                a = torch.linalg.lstsq(phi_train[:, :p], y_train, driver="gelsd").solution
                train[r, k] = float(((phi_train[:, :p] @ a - y_train) ** 2).mean())
                test[r, k] = float(((phi_test[:, :p] @ a - y_test) ** 2).mean())
                rank[r, k] = int(torch.linalg.matrix_rank(phi_train[:, :p]))
    return DoubleDescent(sizes, np.median(train, 0), np.median(test, 0), n_train, np.median(rank, 0))


@dataclass
class SampleWiseDoubleDescent:
    """Result of :func:`sample_wise_double_descent`.

    Attributes
    ----------
    n_train : np.ndarray of shape (k,)
        Numbers of training points.
    test_mse : np.ndarray of shape (k,)
        Median over repetitions of the test MSE, in units of the variance of the test prices (1 is
        the error of predicting their mean).
    rank : np.ndarray of shape (k,)
        Median over repetitions of the rank of the training feature matrix (``n_train`` × units).
    n_features : int
        The number of hidden units, the same for every training-set size.
    """

    n_train: np.ndarray
    test_mse: np.ndarray
    rank: np.ndarray
    n_features: int


def sample_wise_double_descent(
    n_train: Sequence[int] = (5, 10, 15, 20, 25, 30, 34, 38, 40, 42, 46, 50, 60, 80, 120, 200, 400),
    *,
    n_features: int = 40,
    n_test: int = 500,
    n_repeats: int = 20,
    random_state: int = 0,
) -> SampleWiseDoubleDescent:
    """Sample-wise double descent: the model of :func:`double_descent` with a fixed number of
    hidden units, trained on more and more data.

    For every repetition one random first layer of ``n_features`` units and one stream of districts
    of the synthetic housing data are drawn; the first ``n`` districts train (inputs and prices
    standardised with their statistics, output weights by minimum-norm least squares) and the same
    ``n_test`` further districts test, for every ``n`` of ``n_train``.

    Parameters
    ----------
    n_train : sequence of int
        Training-set sizes (each at least 2).
    n_features : int
        Hidden units.
    n_test : int
        Test districts.
    n_repeats : int
        Independent draws of data and features; the median over draws is reported.
    random_state : int

    Returns
    -------
    SampleWiseDoubleDescent
    """
    from .mlp_data import make_housing_raw

    sizes = np.asarray(n_train)
    if sizes.min() < 2:
        raise ValueError("every training set needs at least 2 points (to standardise them)")
    n_max = int(sizes.max())
    generator = torch.Generator().manual_seed(random_state)
    test = np.empty((n_repeats, len(sizes)))
    rank = np.empty((n_repeats, len(sizes)))
    with torch_threads(1):
        for r in range(n_repeats):
            x_np, y_np = make_housing_raw(n_max + n_test, random_state=random_state * 1000 + r)
            x, y = torch.tensor(x_np), torch.tensor(y_np)[:, None]
            w = torch.randn(x.shape[1], n_features, generator=generator, dtype=torch.float64)
            b = torch.randn(n_features, generator=generator, dtype=torch.float64)
            y_test = y[n_max:]
            for k, n in enumerate(sizes):
                x_mean, x_std = x[:n].mean(0), x[:n].std(0)
                y_mean, y_std = y[:n].mean(), y[:n].std()
                phi = torch.relu((x - x_mean) / x_std @ w + b)
                a = torch.linalg.lstsq(phi[:n], (y[:n] - y_mean) / y_std, driver="gelsd").solution
                prediction = phi[n_max:] @ a * y_std + y_mean
                test[r, k] = float(nn.functional.mse_loss(prediction, y_test) / y_test.var())
                rank[r, k] = int(torch.linalg.matrix_rank(phi[:n]))
    return SampleWiseDoubleDescent(sizes, np.median(test, 0), np.median(rank, 0), n_features)


def plot_sample_wise_double_descent(result: SampleWiseDoubleDescent) -> None:
    """Test MSE against the number of training points (log-log), the number of units marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.n_train, result.test_mse, "o-", ms=3, label="test MSE")
    ax.axvline(result.n_features, ls=":", c="grey", label=f"hidden units ({result.n_features})")
    ax.axhline(1.0, ls="--", c="grey", lw=0.8, label="predicting the mean")
    ax.set(xscale="log", yscale="log", xlabel="number of training points",
           ylabel="test MSE / variance (median over draws)", title="Sample-wise double descent")
    ax.legend()
    fig.tight_layout()
    plt.show()


def plot_double_descent(result: DoubleDescent) -> None:
    """Training and test MSE against the number of features (log-log), with the number of training
    points and the interpolation threshold marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.n_features, result.test_mse, "o-", ms=3, label="test MSE")
    ax.plot(result.n_features, np.maximum(result.train_mse, 1e-6), "s-", ms=3,
            label="training MSE")
    ax.axvline(result.n_train, ls=":", c="grey", label=f"training points ({result.n_train})")
    if result.threshold > 0:
        ax.axvline(result.threshold, ls="--", c="grey",
                   label=f"interpolation threshold (rank {result.n_train} from {result.threshold} units)")
    ax.set(xscale="log", yscale="log", xlabel="number of hidden units (trained parameters)",
           ylabel="MSE (median over draws)", title="Model-wise double descent")
    ax.legend()
    fig.tight_layout()
    plt.show()


# ------------------------------------------------------------------------ epoch-wise double descent


@dataclass
class EpochWiseDoubleDescent:
    """Result of :func:`epoch_wise_double_descent`.

    Attributes
    ----------
    epochs : np.ndarray of shape (k,)
        Numbers of full-batch gradient-descent steps, increasing, from 1.
    train_mse, test_mse : np.ndarray of shape (k,)
        Training MSE and expected test MSE (over fresh inputs and label noise, computed exactly),
        both in units of the variance of the targets: 1 is the error of predicting 0, their mean.
    noise_mse : float
        The part of ``test_mse`` that no model can remove (the label noise), in the same units.
    n_train : int
        Training points.
    n_features : (int, int)
        Features in the large-scale group and in the small-scale group.
    scales : (float, float)
        Standard deviation of the features of each group.
    """

    epochs: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray
    noise_mse: float
    n_train: int
    n_features: tuple[int, int]
    scales: tuple[float, float]

    def extrema(self) -> tuple[int, int, int]:
        """Indices into ``epochs`` of the first local minimum of the test MSE, of its largest value
        after that minimum (the peak), and of its smallest value after the peak.

        Raises
        ------
        ValueError
            When the test MSE has no local minimum before its last epoch (no rise at all).
        """
        test = self.test_mse
        falling_then_rising = np.flatnonzero((test[1:-1] < test[:-2]) & (test[1:-1] <= test[2:]))
        if not len(falling_then_rising):
            raise ValueError("the test MSE never rises after falling: no double descent on these epochs")
        first = int(falling_then_rising[0]) + 1
        peak = first + int(np.argmax(test[first:]))
        second = peak + int(np.argmin(test[peak:]))
        return first, peak, second


def epoch_wise_double_descent(
    epochs: Sequence[int] | np.ndarray | None = None,
    *,
    n_train: int = 200,
    n_features: tuple[int, int] = (140, 20),
    scales: tuple[float, float] = (1.0, 0.02),
    small_scale_share: float = 0.5,
    noise_std: float = 0.2,
    lr: float = 0.15,
    random_state: int = 0,
) -> EpochWiseDoubleDescent:
    """Epoch-wise double descent: full-batch gradient descent on a linear least-squares problem
    whose features come in two groups of very different scales, evaluated in closed form.

    Teacher: ``z ~ N(0, I)`` of dimension ``d = n_features[0] + n_features[1]``, target
    ``y = z · θ + ε`` with ``θ`` Gaussian (the second group carrying the share ``small_scale_share`` of the
    signal's variance, the first the rest) and label noise ``ε ~ N(0, noise_std²)``. Student: the
    linear model ``f(x) = x · w`` on the features ``x = z * s`` (``s`` is ``scales[0]`` on the first
    group, ``scales[1]`` on the second), trained from ``w = 0`` on ``n_train`` points by gradient
    descent on ``½ mean (x · w - y)²`` with step ``lr``.

    With the singular value decomposition ``X / √n = U diag(σ) Vᵀ`` of the training inputs, the
    weights after ``t`` steps are ``w_t = V diag((1 - (1 - lr σ²)^t) / σ) Uᵀ y / √n``, so every
    epoch is computed at once, without a training loop. The test MSE is the exact expectation over
    fresh inputs, ``Σ_j s_j² (w_j - θ_j / s_j)² + noise_std²``.

    Parameters
    ----------
    epochs : sequence of int, optional
        Epochs at which to evaluate (each at least 1); by default about 200 from 1 to 10⁶, evenly
        spaced on a log scale.
    n_train : int
        Training points.
    n_features : (int, int)
        Features in the first (large-scale) and the second (small-scale) group.
    scales : (float, float)
        Standard deviation of the features of each group.
    small_scale_share : float
        Share of the signal's variance carried by the second group, in [0, 1].
    noise_std : float
        Standard deviation of the label noise.
    lr : float
        Gradient-descent step; refused when it diverges on these data (``lr σ_max² ≥ 2``).
    random_state : int

    Returns
    -------
    EpochWiseDoubleDescent

    Raises
    ------
    ValueError
        For an epoch below 1, a share outside [0, 1], or a step on which gradient descent diverges.
    """
    if epochs is None:
        epochs = np.unique(np.geomspace(1, 1e6, 200).round().astype(np.int64))
    steps = np.asarray(epochs, dtype=np.int64)
    if steps.ndim != 1 or steps.min() < 1 or np.any(np.diff(steps) <= 0):
        raise ValueError("epochs must be increasing integers from 1 on")
    if not 0.0 <= small_scale_share <= 1.0:
        raise ValueError(f"small_scale_share must lie in [0, 1], got {small_scale_share}")
    rng = np.random.default_rng(random_state)
    n_fast, n_slow = n_features
    scale = np.concatenate([np.full(n_fast, float(scales[0])), np.full(n_slow, float(scales[1]))])
    theta = np.concatenate([rng.standard_normal(n_fast) * np.sqrt((1 - small_scale_share) / max(n_fast, 1)),
                            rng.standard_normal(n_slow) * np.sqrt(small_scale_share / max(n_slow, 1))])
    z = rng.standard_normal((n_train, n_fast + n_slow))
    x = z * scale
    y = z @ theta + noise_std * rng.standard_normal(n_train)
    u, sigma, vt = np.linalg.svd(x / np.sqrt(n_train), full_matrices=False)
    if lr * sigma.max() ** 2 >= 2:
        raise ValueError(f"gradient descent diverges with lr={lr}: the largest stable step on these "
                         f"data is {2 / sigma.max() ** 2:.3g}")
    keep = sigma > sigma.max() * max(x.shape) * np.finfo(float).eps  # directions the data reach
    u, sigma, vt = u[:, keep], sigma[keep], vt[keep]
    learned = 1 - (1 - lr * sigma**2)[None, :] ** steps[:, None]  # (k, r): share of each direction
    target = y @ u / np.sqrt(n_train) / sigma  # (r,): the least-squares weights, in V's basis
    weights = (learned * target) @ vt  # (k, d): w_t for every epoch
    variance = float(theta @ theta + noise_std**2)  # of the targets: the MSE of predicting 0
    test = (((weights - theta / scale) * scale) ** 2).sum(1) + noise_std**2
    train = ((weights @ x.T - y) ** 2).mean(1)
    return EpochWiseDoubleDescent(steps, train / variance, test / variance, noise_std**2 / variance,
                                  n_train, (n_fast, n_slow), (float(scales[0]), float(scales[1])))


def plot_epoch_wise_double_descent(result: EpochWiseDoubleDescent) -> None:
    """Training and test MSE against the epoch (log scale), the two minima and the peak marked."""
    first, peak, second = result.extrema()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.epochs, result.test_mse, "-", label="test MSE")
    ax.plot(result.epochs, result.train_mse, "-", label="training MSE")
    marks = result.epochs[[first, peak, second]], result.test_mse[[first, peak, second]]
    ax.plot(*marks, "o", c="k", ms=4, label="minimum, peak, minimum")
    ax.axhline(result.noise_mse, ls="--", c="grey", lw=0.8, label="label noise")
    ax.set(xscale="log", xlabel="epoch (full-batch gradient-descent steps)",
           ylabel="MSE / variance of the targets", title="Epoch-wise double descent")
    ax.legend(loc="upper right")
    fig.tight_layout()
    plt.show()
