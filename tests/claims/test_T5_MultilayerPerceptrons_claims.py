"""Every claim the text of tutorial 5 makes about a result, checked against the same computation.

The activations, the housing data and the double-descent sweep (about 2 s) are cheap and seeded, so
they are recomputed here with the reference helpers; the regression runs are read from the
reference run, and the one network the text explains is retrained from its seed. Each test first
asserts that the wording of its claim is in the cell it guards.
"""

from __future__ import annotations

import inspect
import re
from functools import cache

import numpy as np
import pytest
import torch

from dlnn_helpers import mlp_regression as mr
from dlnn_helpers.mlp_activations import ACTIVATIONS
from dlnn_helpers.mlp_data import NOISE_STD, housing_price, make_housing_data, make_housing_raw
from dlnn_helpers.utils import torch_threads

from .claims_tools import cell_outputs, cell_source

TUTORIAL = "T5_MultilayerPerceptrons"
SEED = 2021  # the notebook's SEED


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_threads(1):
        yield


def _output(reference_run, cell_id: str) -> str:
    return re.sub(r"<Figure[^>]*>", "\n", cell_outputs(reference_run(TUTORIAL), cell_id))


@cache
def _curve() -> mr.DoubleDescent:
    return mr.double_descent(random_state=SEED)


def _flat(cell_id: str) -> str:
    """The cell's text with every run of white space (line breaks, list indents) as one space."""
    return " ".join(cell_source(TUTORIAL, cell_id).split())


# ------------------------------------------------------------------------------ Section 1


def test_activation_derivatives_as_the_text_describes_them():
    text = _flat("0c8f8c7b")
    assert "The sigmoid's derivative is at most 1/4." in text
    assert "has derivative exactly 1 for $x > 0$ and 0 for $x < 0$" in text
    assert "their derivative dips slightly below 0 for negative inputs" in text
    x = torch.linspace(-8, 8, 16_001, dtype=torch.float64)
    sigmoid = ACTIVATIONS["sigmoid"].derivative(x)
    assert torch.isclose(sigmoid.max(), torch.tensor(0.25, dtype=torch.float64))
    relu = ACTIVATIONS["relu"].derivative(x)
    assert torch.all(relu[x > 0] == 1) and torch.all(relu[x < 0] == 0)
    for name in ("gelu", "silu"):
        d = ACTIVATIONS[name].derivative(x)
        assert -0.2 < d.min() < 0 and torch.all(d[x > 0] > 0), name
    for name in ("sigmoid", "tanh"):  # saturating: almost no gradient for large |x|
        assert ACTIVATIONS[name].derivative(torch.tensor([8.0], dtype=torch.float64)) < 1e-2


# ------------------------------------------------------------------------------ Section 2


def test_the_product_of_jacobians_is_autograds_gradient_and_the_relus_jacobian_is_diagonal(capsys):
    text = _flat("5a7d2c91")
    assert "the derivative of the composition is the product of the Jacobians" in text
    assert "Each step is a **vector–Jacobian product** (VJP), and that is all a backward pass does" in text
    assert "compares the result with autograd's gradient with respect to the input" in text
    state = torch.random.get_rng_state()
    exec(cell_source(TUTORIAL, "6b8e3da2"), {"torch": torch, "SEED": SEED})  # noqa: S102 - the cell
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is untouched
    out = capsys.readouterr().out
    assert re.findall(r"shape \((\d+), (\d+)\)", out) == [("5", "3"), ("5", "5"), ("2", "5")]
    assert "the ReLU's Jacobian is diagonal: True" in out
    assert float(re.search(r"largest difference: ([\d.e+-]+)", out)[1]) < 1e-6
    rows = re.findall(r"∂L/∂x, [^:]+: +\[([^\]]+)\]", out)
    assert len(rows) == 2 and rows[0].split() == rows[1].split()
    assert float(np.abs(np.array(rows[0].split(), dtype=float)).max()) > 1e-3  # not a trivial zero


def test_the_exercises_refuse_autograd_as_their_text_says():
    from dlnn_helpers.checks import ShortcutUsed, check_linear_layer, check_relu_layer

    assert ("the self-check and the grader refuse autograd (`.backward()`, `torch.autograd`, "
            "`torch.func`)") in _flat("07e773f1")
    assert "Here too the backward passes are written by hand: autograd is refused." in _flat("c5fccc0f")

    def backward_by_autograd(grad_out, x, weight):
        x = x.clone().requires_grad_(True)
        (x @ weight.T).backward(grad_out)
        return x.grad, grad_out.T @ x.detach(), grad_out.sum(0)

    with pytest.raises(ShortcutUsed, match="ex_linear_backward uses autograd"):
        check_linear_layer(lambda x, w, b: x @ w.T + b, backward=backward_by_autograd)
    with pytest.raises(ShortcutUsed, match="ex_relu_backward uses torch.func.vjp"):
        check_relu_layer(torch.relu, backward=lambda g, x: torch.func.vjp(torch.relu, x)[1](g)[0])


@pytest.mark.slow
def test_backprop_by_hand_agrees_with_autograd_to_rounding(reference_run):
    text = _flat("f9a1bc69")
    assert "its gradients agree with autograd's to rounding error" in text
    assert "`mlp_backprop.gradients_by_hand` does exactly that with your layers" in text
    source = cell_source(TUTORIAL, "8d704321")
    for forward, backward in (("ex_linear_forward", "ex_linear_backward"),
                              ("ex_relu_forward", "ex_relu_backward"), ("ex_mse_forward", "ex_mse_backward")):
        assert f"mlp_backprop.own_or_autograd({forward}, {backward}," in source
    assert _output(reference_run, "8d704321").startswith(
        "Using your linear layer.\nUsing your ReLU layer.\nUsing your squared error.\n")
    differences = re.findall(r"largest difference from autograd: ([\d.e+-]+)",
                             _output(reference_run, "8d704321"))
    assert len(differences) == 6 and max(float(d) for d in differences) < 1e-6


# ------------------------------------------------------------------------------ Section 3


def test_the_housing_data_as_described():
    text = _flat("f9c90857")
    assert "506 districts with two inputs" in text
    assert "noise of standard deviation 3 (so no model can get a test MSE much below 9)" in text
    assert "a training set (80 %) and a test set (20 %)" in text
    assert "rises with rooms and falls non-linearly with the low-income share" in text
    data = make_housing_data(random_state=0)
    assert len(data.x_train) + len(data.x_test) == 506 and len(data.x_test) == 101
    assert NOISE_STD == 3.0
    x, y = make_housing_raw(20_000, random_state=5)
    best = np.mean((housing_price(x[:, 0], x[:, 1]) - y) ** 2)  # the noiseless price as predictor
    assert 8 < best < 10
    rooms, low = np.meshgrid(np.linspace(4, 8.5, 10), np.linspace(2, 35, 10))
    assert np.all(np.diff(housing_price(rooms, low), axis=1) > 0)  # rises with rooms
    assert np.all(np.diff(housing_price(rooms, low), axis=0) < 0)  # falls with the low-income share


def test_think_3_1_the_price_falls_steeply_then_levels_off_and_rises_faster_for_large_houses():
    answer = _flat("b37861cb")
    assert ("The price falls steeply with the low-income share at first and then levels off, and it "
            "rises faster for large houses") in answer
    low = np.array([2.0, 6.0, 20.0, 24.0])
    price = housing_price(np.full(4, 6.3), low)
    assert (price[0] - price[1]) > 5 * (price[2] - price[3]) > 0
    rooms = np.array([5.0, 5.5, 7.5, 8.0])
    price = housing_price(rooms, np.full(4, 10.0))
    assert price[3] - price[2] > 2 * (price[1] - price[0]) > 0


@pytest.mark.slow
def test_think_3_1_the_mlp_of_31_parameters_beats_the_linear_model(reference_run):
    question = _flat("76084f0e")
    assert "The MLP has only 31 parameters, yet its test error is well below the linear model's." in question
    assert sum(p.numel() for p in mr.RegressionMLP().parameters()) == 31
    out = _output(reference_run, "e2baae5e")
    mlp_test = float(re.search(r"MLP:\s+train MSE\s+[\d.]+, test MSE\s+([\d.]+)", out)[1])
    linear_test = float(re.search(r"linear regression: train MSE\s+[\d.]+, test MSE\s+([\d.]+)", out)[1])
    assert mlp_test < 0.8 * linear_test
    answer = _flat("b37861cb")
    assert (f"its test MSE ({mlp_test:.1f}) is less than half as far above the noise level (about 9) as "
            f"the linear model's ({linear_test:.1f})") in answer
    assert mlp_test - 9 < 0.5 * (linear_test - 9)


# ------------------------------------------------------------------------------ Section 4


def _initialisations(reference_run) -> dict[str, np.ndarray]:
    out = _output(reference_run, "90f8ba39")
    found = dict(re.findall(r"^(default|xavier)\s+test MSE per seed: \[([^\]]+)\]", out, flags=re.M))
    return {label: np.array([float(v) for v in values.split()]) for label, values in found.items()}


@pytest.mark.slow
def test_think_4_1_one_default_network_ends_far_above_the_others_and_the_baseline(reference_run):
    question = _flat("62869085")
    assert ("In this run one of the three networks with the default initialisation ends far above the "
            "others, even above the linear baseline.") in question
    runs = _initialisations(reference_run)
    linear_test = float(re.search(r"linear regression: train MSE\s+[\d.]+, test MSE\s+([\d.]+)",
                                  _output(reference_run, "e2baae5e"))[1])
    default = np.sort(runs["default"])
    assert len(default) == 3 and default[-1] > linear_test and default[-1] > 5 * default[1]
    assert np.all(runs["xavier"] < linear_test)  # "dead units become much less likely"
    assert "dead units become much less likely" in _flat("2f995b42")


@pytest.mark.slow
def test_think_4_1_the_bad_default_network_has_a_dead_second_layer(reference_run):
    answer = _flat("2f995b42")
    assert ("That is what happened to the third default network: all three units of its second layer "
            "are dead, it predicts the same price everywhere, and its test MSE (108) is above the "
            "variance of the test prices (about 73).") in answer
    runs = _initialisations(reference_run)
    assert round(runs["default"][2]) == 108 and runs["default"].argmax() == 2
    data = make_housing_data(random_state=0)
    run = mr.train_regression_mlp(data, n_epochs=500, seed=2)  # the third seed, default initialisation
    assert round(run.test_mse, 2) == runs["default"][2]
    with torch.no_grad():
        hidden = run.model.hidden(torch.cat([data.x_train, data.x_test]))
        prediction = run.model(data.x_test)
    assert not torch.any(hidden > 0)
    assert float(prediction.std()) < 1e-4
    variance = float(data.y_test.var(unbiased=False))
    assert round(variance) == 73 and run.test_mse > variance


def test_think_4_1_zero_biases_put_every_first_layer_elbow_through_the_data():
    answer = _flat("2f995b42")
    assert ("With zero biases every first-layer unit starts with its elbow through the centre of the "
            "standardised data, so it is active on about half the points") in answer
    data = make_housing_data(random_state=0)
    for seed in range(5):
        torch.manual_seed(seed)
        model = mr.xavier_init_(mr.RegressionMLP())
        with torch.no_grad():
            active = (model.hidden[0](data.x_train) > 0).float().mean(0)
        assert torch.all((active > 0.2) & (active < 0.8)), (seed, active)


# ------------------------------------------------------------------------------ Section 5


def test_double_descent_peaks_at_41_units_between_40_and_the_threshold_at_44():
    curve = _curve()
    peak = int(curve.n_features[curve.test_mse.argmax()])
    at_n_train = int(curve.rank[curve.n_features == curve.n_train][0])
    question = _flat("3f12d616")
    assert (f"The run puts the peak of the test error at {peak} hidden units, just above the "
            f"{curve.n_train} training points, and the training error reaches zero from "
            f"{curve.threshold} units on.") in question
    answer = _flat("6ca63ce2")
    assert (f"with {curve.n_train} units the features have rank {at_n_train} only (the median over the "
            f"draws), and rank {curve.n_train}, an exact fit, comes at {curve.threshold} units") in answer
    assert f"the median test error peaks in between, at {peak} units" in answer
    assert curve.n_train < peak < curve.threshold <= curve.n_train + 6
    assert at_n_train < curve.n_train
    fits = curve.n_features >= curve.threshold
    assert np.all(curve.train_mse[fits] < 1e-12) and np.all(curve.train_mse[~fits] > 1e-3)


def test_double_descent_rises_to_the_threshold_and_falls_again_beyond_it():
    intro = _flat("41346d53")
    assert ("the test error rises as the model approaches the *interpolation threshold*, the size at which "
            "it can just fit the training data exactly, peaks there, and falls again beyond it") in intro
    assert ("The model can fit the 40 training points exactly once the matrix of its features at those "
            "points (40 rows, one column per unit) has rank 40.") in intro
    answer = _flat("6ca63ce2")  # the reason is the sample answer's, not said above Think! 5.1
    assert ("The size is not exactly 40 because some random ReLU units are zero at every training point, "
            "or nearly copy others, and add nothing") in answer
    assert ("* Test error against model size can descend twice, with a peak near the interpolation "
            "threshold,") in cell_source(TUTORIAL, "3cdcf29c")
    assert "`mr.double_descent` repeats this for 20 random draws and reports the median errors" in intro
    for reason in ("has to bend wildly", "minimum-norm one is smooth", "adds nothing"):
        assert reason not in intro
    assert inspect.signature(mr.double_descent).parameters["n_repeats"].default == 20
    curve = _curve()
    test, sizes = curve.test_mse, curve.n_features
    peak = test.argmax()
    best_small = test[sizes < curve.n_train].argmin()
    assert np.all(np.diff(test[best_small : peak + 1]) > 0)  # rises all the way to the peak
    assert test[peak] > 100 * test[best_small]
    below_1 = peak + int(np.argmax(test[peak:] < 1))
    assert np.all(np.diff(test[peak : below_1 + 1]) < 0)  # falls until it beats predicting the mean
    assert np.all(test[below_1:] < 1.05) and test[-1] < 1  # and stays there (no second rise)
    # the dead units: with random Gaussian weights, some units are zero at every training point
    x, _ = make_housing_raw(40 + 500, random_state=SEED * 1000)
    x = torch.tensor(x[:40])
    x = (x - x.mean(0)) / x.std(0)
    generator = torch.Generator().manual_seed(SEED)
    w = torch.randn(2, 3000, generator=generator, dtype=torch.float64)
    b = torch.randn(3000, generator=generator, dtype=torch.float64)
    dead = (torch.relu(x @ w + b).sum(0) == 0)[:40]
    assert dead.sum() >= 1


@cache
def _by_size() -> mr.SampleWiseDoubleDescent:
    return mr.sample_wise_double_descent(random_state=SEED)


def test_sample_wise_more_data_first_hurts_then_helps():
    assert "mr.sample_wise_double_descent(random_state=SEED)" in cell_source(TUTORIAL, "a2b3c4d5")
    intro = _flat("f1a2b3c4")
    assert "Keep the network fixed at 40 random hidden units" in intro
    assert "again the median of 20 draws" in intro
    question = _flat("b3c4d5e6")
    assert ("With 40 units, 10 training points give a test error below that of predicting the mean, but "
            "about 38 points give one hundreds of times larger; from 80 points on the error is lower than "
            "with 10.") in question
    answer = _flat("c4d5e6f7")
    assert "The 40 random units give only about 37 or 38 independent features (the rank printed" in answer
    for reason in ("interpolation threshold", "nearly singular", "averages the noise"):
        assert reason not in intro and reason not in question
    curve = _by_size()
    mse = dict(zip(curve.n_train.tolist(), curve.test_mse, strict=True))
    rank = dict(zip(curve.n_train.tolist(), curve.rank, strict=True))
    assert curve.n_features == 40 and mse[10] < 1
    peak = int(curve.n_train[curve.test_mse.argmax()])
    assert peak == 38 and mse[38] > 100 * mse[10]
    assert all(mse[n] < mse[10] for n in curve.n_train.tolist() if n >= 80)
    assert {rank[n] for n in curve.n_train.tolist() if n >= 40} <= {37.0, 38.0}
    assert rank[38] < 38  # the features of 38 points are not independent either


@cache
def _by_epoch() -> mr.EpochWiseDoubleDescent:
    return mr.epoch_wise_double_descent(random_state=SEED)


def test_epoch_wise_set_up_as_the_text_describes_it():
    assert "mr.epoch_wise_double_descent(random_state=SEED)" in cell_source(TUTORIAL, "f2a3b4c5")
    intro = _flat("e1f2a3b4")
    assert ("a linear model $f(\\mathbf x) = \\mathbf x \\cdot \\mathbf w$ on 160 generated features, 200 "
            "training points and noisy targets (noise of variance 0.04 against a signal of variance 0.8)"
            ) in intro
    assert ("140 of standard deviation 1 and 20 of standard deviation 0.02, and each group carries half of "
            "the signal") in intro
    assert "Full-batch gradient descent starts at $\\mathbf w = 0$ with step 0.15" in intro
    assert "1 is the error of predicting 0, which is what the model does before its first step" in intro
    defaults = inspect.signature(mr.epoch_wise_double_descent).parameters
    assert defaults["n_train"].default == 200 and defaults["n_features"].default == (140, 20)
    assert defaults["scales"].default == (1.0, 0.02) and defaults["small_scale_share"].default == 0.5
    assert defaults["noise_std"].default == 0.2 and defaults["lr"].default == 0.15
    curve = _by_epoch()
    assert curve.epochs[0] == 1 and curve.epochs[-1] == 1_000_000  # "a million epochs"
    signal = 0.2**2 * (1 / curve.noise_mse - 1)  # noise_mse = noise / (signal + noise)
    assert round(signal, 1) == 0.8
    for name in ("fast", "slow", "unlearn", "interpolation threshold", "2500"):  # the Think!'s answer
        assert name not in intro and name not in _flat("a3b4c5d6")


def test_epoch_wise_the_test_error_falls_rises_and_falls_again_as_think_5_3_says():
    question = _flat("a3b4c5d6")
    assert ("The test error falls for the first ten or so epochs, rises above the error of predicting 0 "
            "after about a hundred, peaks near epoch 700, and then falls again, to about a third of its "
            "first minimum, while the training error falls all along.") in question
    curve = _by_epoch()
    first, peak, second = curve.extrema()
    epochs, test = curve.epochs, curve.test_mse
    assert 5 <= epochs[first] <= 20 and test[first] < 0.8
    above = epochs[test > 1]
    assert 50 <= above[0] <= 200 and above[-1] > epochs[peak]
    assert 500 <= epochs[peak] <= 1000 and test[peak] > 1.1
    assert np.all(np.diff(test[first:peak + 1]) > 0) and np.all(np.diff(test[peak:]) < 1e-12)
    assert 0.25 < test[second] / test[first] < 0.4 and second == len(epochs) - 1
    assert np.all(np.diff(curve.train_mse) <= 0)


def test_think_5_3_sample_answer_claims():
    answer = _flat("b4c5d6e7")
    assert "learned about $(1/0.02)^2 = 2500$ times faster than those of scale 0.02" in answer
    assert "the large-scale group alone, 140 features for 200 points" in answer
    assert ("the error falls once, within a hundred epochs, to below 0.15, and then creeps up a little to "
            "the final value of least squares, with no second descent") in answer
    assert "stopping early here would keep an error three times the final one" in answer
    curve = _by_epoch()
    first, peak, second = curve.extrema()
    assert 2.5 < curve.test_mse[first] / curve.test_mse[second] < 3.5
    # after a million epochs gradient descent is within 1 % of the least-squares fit (10⁹ epochs)
    least_squares = mr.epoch_wise_double_descent(epochs=[10**9], random_state=SEED).test_mse[0]
    assert np.isclose(least_squares, curve.test_mse[-1], rtol=0.01)
    # up to the peak the large-scale group alone makes the curve: the same draw with small-scale
    # features that cannot learn in a million epochs (scale 10⁻⁶) gives it to within 5 %
    alone = mr.epoch_wise_double_descent(random_state=SEED, scales=(1.0, 1e-6))
    assert np.allclose(alone.test_mse[:peak + 1], curve.test_mse[:peak + 1], rtol=0.05)
    assert alone.test_mse[-1] > curve.test_mse[peak]  # and without them there is no second descent
    equal = mr.epoch_wise_double_descent(random_state=SEED, scales=(1.0, 1.0))
    best = int(np.argmin(equal.test_mse))
    assert equal.epochs[best] <= 100 and equal.test_mse[best] < 0.15
    assert np.all(np.diff(equal.test_mse[:best + 1]) < 0) and np.all(np.diff(equal.test_mse[best:]) > -1e-6)
    assert np.isclose(equal.test_mse[-1], least_squares, rtol=1e-6)  # the same least-squares fit


@pytest.mark.slow
def test_the_notebook_prints_the_same_double_descent_numbers(reference_run):
    out = _output(reference_run, "bdd47542")
    curve = _curve()
    peak = int(curve.n_features[curve.test_mse.argmax()])
    assert f"{curve.n_train} training points; the test MSE peaks at {peak} hidden units" in out
    assert f"the training MSE reaches 0 (rank {curve.n_train}) from {curve.threshold} units on" in out
    by_size = _by_size()
    out = _output(reference_run, "a2b3c4d5")
    assert "40 hidden units: the test MSE peaks at 38 training points" in out
    assert f"  10 training points: test MSE {by_size.test_mse[1]:8.3f}" in out
    by_epoch = _by_epoch()
    first, peak, _ = by_epoch.extrema()
    out = _output(reference_run, "f2a3b4c5")
    for label, i in (("first minimum", first), ("peak", peak), ("last epoch", -1)):
        assert (f"{label:13s} epoch {by_epoch.epochs[i]:>9,d}: test MSE {by_epoch.test_mse[i]:.2f}, "
                f"training MSE {by_epoch.train_mse[i]:.3f}") in out


# ------------------------------------------------------------------------------ set-up


@pytest.mark.slow
def test_the_set_up_cell_prints_no_stray_value(reference_run):
    assert "from dlnn_helpers.checks import self_check" in cell_source(TUTORIAL, "b91672d0")
    assert cell_outputs(reference_run(TUTORIAL), "b91672d0") == f"Random seed {SEED} has been set.\n"
