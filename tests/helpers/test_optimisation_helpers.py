"""T2 helpers: the loss surface, the stand-ins and data of the demonstrations, and the figures.

The reference optimisers and the EMA live on the instructor side (``dlnn_reference.optimisation``):
they are tested here too, as the references the checks' expected values come from.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from dlnn_reference.shipped import RTOL

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dlnn_helpers import optimisers, optimisers_data  # noqa: E402
from dlnn_helpers.loss_surface import START, LossFunctionWithPlot, plot_ema  # noqa: E402
from dlnn_helpers.optimisers import (  # noqa: E402
    descend_with_torch_sgd,
    make_jump_series,
    precomputed_ema,
    precomputed_gradient_mean_rms,
    record_gradients,
)
from dlnn_reference import optimisation as reference  # noqa: E402
from dlnn_reference.optimisation import (  # noqa: E402
    ADAMOptimizer,
    SimpleGradientDescent,
    ema_history,
    ema_update,
    gradient_descent,
    gradient_mean_rms,
)


@pytest.fixture(autouse=True)
def _no_warnings_and_close():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def _start():
    return torch.tensor(START, requires_grad=True)


# ------------------------------------------------------------------------------ the loss surface


def test_loss_is_zero_at_the_origin_and_positive_elsewhere():
    loss_fn = LossFunctionWithPlot()
    assert float(loss_fn(torch.zeros(2))) == 0.0
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(200, 2, generator=generator)
    assert all(float(loss_fn(p)) > 0 for p in points)
    assert float(loss_fn(torch.tensor(START))) == pytest.approx(3.9365, abs=1e-4)


def test_loss_is_steep_along_x0_and_shallow_along_x1():
    loss_fn = LossFunctionWithPlot()
    slope_0 = float(loss_fn(torch.tensor([1.0, 0.0])))  # the loss is positively homogeneous
    slope_1 = float(loss_fn(torch.tensor([0.0, 1.0])))
    assert slope_0 / slope_1 > 6
    # the square of the loss is the quadratic xᵀ BᵀB x; its curvatures differ by a factor > 300
    curvatures = torch.linalg.eigvalsh(2 * loss_fn.bowl.T @ loss_fn.bowl)
    assert curvatures[1] / curvatures[0] > 300
    hessian = torch.autograd.functional.hessian(lambda x: loss_fn(x) ** 2, torch.tensor([0.3, -0.2]))
    assert torch.allclose(torch.linalg.eigvalsh(hessian), curvatures, rtol=1e-4)


def test_gradient_is_the_analytic_one_and_keeps_its_size_near_the_minimum():
    loss_fn = LossFunctionWithPlot()
    b = loss_fn.bowl
    for point in ([-1.5, 1.2], [1e-3, -2e-3]):
        x = torch.tensor(point, requires_grad=True)
        loss_fn(x).backward()
        y = b @ x.detach()
        assert torch.allclose(x.grad, b.T @ y / y.norm(), rtol=1e-5)
        assert x.grad.norm() > 0.3  # a cone: no gradient shrinks to 0 near the bottom


def test_loss_records_every_point_and_can_be_reset():
    loss_fn = LossFunctionWithPlot(((1.0, 0.0), (0.0, 2.0)))
    x = torch.tensor([3.0, 1.0], requires_grad=True)
    loss_fn(x)
    with torch.no_grad():
        x += 1.0
    loss_fn(x)
    assert [p.tolist() for p in loss_fn.track] == [[3.0, 1.0], [4.0, 2.0]]
    assert loss_fn.losses == pytest.approx([math.sqrt(13), math.sqrt(32)])
    assert loss_fn.path().shape == (2, 2)
    assert not loss_fn.track[0].requires_grad
    loss_fn.reset()
    assert loss_fn.track == [] and loss_fn.losses == [] and loss_fn.path().shape == (0, 2)


def test_loss_rejects_a_bowl_of_the_wrong_shape():
    with pytest.raises(ValueError, match="2x2"):
        LossFunctionWithPlot(torch.eye(3))


def test_loss_on_grid_matches_the_loss():
    loss_fn = LossFunctionWithPlot()
    xs, ys = np.linspace(-1, 1, 5), np.linspace(-2, 2, 3)
    grid = loss_fn.loss_on_grid(xs, ys)
    assert grid.shape == (3, 5)
    assert grid[2, 1] == pytest.approx(float(loss_fn(torch.tensor([xs[1], ys[2]]))), rel=1e-6)


# ---------------------------------------------------------------------------- the optimisers


def test_gradient_descent_takes_n_steps_and_clears_the_gradient():
    loss_fn = LossFunctionWithPlot()
    x = _start()
    gradient_descent(loss_fn, x, torch.tensor([0.1, 0.55]), 7)
    assert len(loss_fn.track) == 7 and x.grad is None
    expected = torch.tensor(START)
    b = loss_fn.bowl
    for _ in range(7):
        y = b @ expected
        expected = expected - torch.tensor([0.1, 0.55]) * (b.T @ y / y.norm())
    assert torch.allclose(x.detach(), expected, rtol=1e-5)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 1))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda p: SimpleGradientDescent(p, lr=0.2, weight_decay=0.01),
         lambda p: torch.optim.SGD(p, lr=0.2, weight_decay=0.01)),
        (lambda p: ADAMOptimizer(p, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3),
         lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3)),
    ],
)
def test_reference_optimisers_train_a_network_like_torch(ours, theirs):
    generator = torch.Generator().manual_seed(1)
    inputs, targets = torch.randn(32, 5, generator=generator), torch.randn(32, 1, generator=generator)
    results = []
    for make in (ours, theirs):
        model = _model()
        optimiser = make(model.parameters())  # a generator, as in a training loop
        for _ in range(60):
            optimiser.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            optimiser.step()  # outside torch.no_grad()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(results[0], results[1], rtol=1e-4, atol=1e-6)


def test_optimisers_skip_parameters_without_gradient_and_zero_grad_clears():
    used = torch.ones(3, requires_grad=True)
    unused = torch.full((2,), 5.0, requires_grad=True)
    for optimiser in (SimpleGradientDescent([used, unused], weight_decay=0.5),
                      ADAMOptimizer([used, unused], weight_decay=0.5)):
        (used**2).sum().backward()
        optimiser.step()
        assert torch.equal(unused.detach(), torch.full((2,), 5.0))
        optimiser.zero_grad()
        assert used.grad is None


def test_adam_state_is_updated_in_place():
    x = torch.ones(4, requires_grad=True)
    optimiser = ADAMOptimizer([x])
    buffers = (optimiser.m_star[0], optimiser.v_star[0])
    for _ in range(2):
        (3 * x).sum().backward()
        optimiser.step()
        optimiser.zero_grad()
    assert optimiser.m_star[0] is buffers[0] and optimiser.v_star[0] is buffers[1]
    assert optimiser.t == 2
    assert torch.allclose(buffers[0], torch.full((4,), 3 * (1 - 0.9**2)))


# ---------------------------------------------------------------------------------- the EMA


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.999])
def test_ema_of_a_constant_series_is_that_constant_at_every_t(beta):
    star, star_tensor = 0.0, torch.zeros(2, 3)
    for t in range(1, 300):
        ema, star = ema_update(-2.5, beta, t, star)
        assert ema == pytest.approx(-2.5, rel=1e-9)
        assert star == pytest.approx(-2.5 * (1 - beta**t), rel=1e-9)  # EMA* is biased to 0
        ema_tensor, star_tensor = ema_update(torch.full((2, 3), 4.0), beta, t, star_tensor)
        assert torch.allclose(ema_tensor, torch.full((2, 3), 4.0), rtol=1e-4)


def test_ema_at_t_1_is_the_first_value_and_forgets_it_later():
    assert ema_update(7.0, 0.9, 1, 0.0)[0] == pytest.approx(7.0)
    series = make_jump_series(random_state=3)
    ema, ema_star = ema_history(series, 0.9)
    assert ema[0] == pytest.approx(float(series[0]))
    assert ema_star[0] == pytest.approx(0.1 * float(series[0]), rel=1e-5)
    assert abs(float(ema[50]) + 10.0) < 0.3  # tracks the first level
    assert abs(float(ema[-1]) - 0.5) < 1.0  # and the second, long after the jump
    assert abs(float(series.mean()) - (-4.75)) < 0.3  # while the plain mean sits in between


def test_jump_series_is_reproducible_and_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected_next = torch.rand(2)
    torch.manual_seed(5)
    first = make_jump_series(random_state=11)
    assert torch.equal(torch.rand(2), expected_next)
    assert torch.equal(first, make_jump_series(random_state=11))
    assert not torch.equal(first, make_jump_series(random_state=12))
    assert first.shape == (200,)
    assert float(first[:100].mean()) == pytest.approx(-10.0, abs=0.05)
    assert float(first[100:].mean()) == pytest.approx(0.5, abs=0.3)


# ------------------------------------------------------------------------------------ figures


def test_plot_history_draws_surface_path_and_losses():
    loss_fn = LossFunctionWithPlot()
    gradient_descent(loss_fn, _start(), 0.1, 10)
    fig = loss_fn.plot_history(show=False, title="test")
    surface, losses = fig.axes[0], fig.axes[1]
    path_line = next(line for line in surface.get_lines() if line.get_label() == "path")
    assert np.allclose(path_line.get_xydata(), loss_fn.path())
    assert np.allclose(losses.get_lines()[0].get_ydata(), loss_fn.losses)


def test_plot_history_with_gradients_adds_one_panel_per_coordinate():
    loss_fn = LossFunctionWithPlot()
    grads, _ = record_gradients(loss_fn, torch.tensor(START), lambda p: torch.optim.SGD(p, lr=0.1), 20)
    mean, rms = gradient_mean_rms(grads)
    fig = loss_fn.plot_history(grads, mean, rms, show=False)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("Raw gradient")]
    assert len(panels) == 2
    labels = [line.get_label() for line in panels[1].get_lines()]
    assert f"mean = {float(mean[1]):.3f}" in labels and f"±RMS = ±{float(rms[1]):.3f}" in labels
    with pytest.raises(ValueError, match="shape"):
        loss_fn.plot_history(torch.zeros(5, 3), show=False)


def test_plot_ema_shows_data_mean_ema_and_ema_star():
    series = make_jump_series(random_state=0)
    ema, ema_star = ema_history(series, 0.9)
    fig = plot_ema(series, ema, ema_star, beta=0.9, show=False)
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert {"ordinary mean", "EMA (bias-corrected)", "EMA* (no correction)"} <= labels
    assert "β = 0.9" in fig.axes[0].get_title()


# ---------------------------------------------------------------------- stand-ins and their data


@pytest.mark.parametrize("learning_rate", [0.1, torch.tensor([0.02, 0.2]), 0.01])
def test_the_torch_sgd_stand_in_takes_the_same_path_as_gradient_descent(learning_rate):
    ours, theirs = LossFunctionWithPlot(), LossFunctionWithPlot()
    x, y = _start(), _start()
    gradient_descent(ours, x, learning_rate, 50)
    descend_with_torch_sgd(theirs, y, learning_rate, 50)
    assert torch.equal(x.detach(), y.detach()) and ours.losses == theirs.losses
    assert y.grad is None


_NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def _assert_same_source(shipped: str, fresh: str) -> None:
    """The generated module is the reference's: the same text, its numbers equal within the
    shipped values' cross-machine tolerance (BLAS and CPUs change the last printed digits)."""
    assert _NUMBER.split(shipped) == _NUMBER.split(fresh)
    a = np.array([float(x) for x in _NUMBER.findall(shipped)])
    b = np.array([float(x) for x in _NUMBER.findall(fresh)])
    assert a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=1e-7)


def test_the_precomputed_values_are_the_references_and_refuse_other_data():
    assert optimisers_data.__doc__ and "generated" in optimisers_data.__doc__
    _assert_same_source(Path(optimisers_data.__file__).read_text(encoding="utf-8"),
                        reference.fallback_source())  # up to date
    series = make_jump_series(random_state=2021)
    ema, ema_star = precomputed_ema(series, 0.9)
    ref_ema, ref_star = ema_history(series, 0.9)
    assert torch.allclose(ema, ref_ema, rtol=1e-6) and torch.allclose(ema_star, ref_star, rtol=1e-6)
    grads, _ = record_gradients(LossFunctionWithPlot(), torch.tensor(START),
                                lambda p: torch.optim.SGD(p, lr=0.1), 50)
    mean, rms = precomputed_gradient_mean_rms(grads)
    ref_mean, ref_rms = gradient_mean_rms(grads)
    assert torch.allclose(mean, ref_mean, rtol=1e-6) and torch.allclose(rms, ref_rms, rtol=1e-6)
    assert mean.dtype == rms.dtype == torch.float32 and mean.shape == (2,)
    with pytest.raises(ValueError, match="Section 3 only"):
        precomputed_gradient_mean_rms(grads[:, [1, 0]])
    with pytest.raises(ValueError, match="random_state=2021"):
        precomputed_ema(make_jump_series(random_state=3), 0.9)
    with pytest.raises(ValueError, match="beta = 0.9"):
        precomputed_ema(series, 0.5)


def test_the_student_package_holds_no_reference_optimiser():
    for name in ("gradient_descent", "SimpleGradientDescent", "ema_update", "ema_history",
                 "ADAMOptimizer", "gradient_mean_rms"):
        assert not hasattr(optimisers, name)
