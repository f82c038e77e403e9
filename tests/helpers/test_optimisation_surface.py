"""dlnn_helpers.optimisation_surface: the ill-conditioned 2-D loss of tutorial 2 and its figures.

The paths drawn here are the reference's (``dlnn_reference.optimisation``), as in the notebook's
demonstrations.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from dlnn_helpers.optimisation_demos import make_jump_series, record_gradients  # noqa: E402
from dlnn_helpers.optimisation_surface import START, LossFunctionWithPlot, plot_ema  # noqa: E402
from dlnn_reference.optimisation import ema_history, gradient_descent, gradient_mean_rms  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_warnings_and_close")  # tests/helpers/conftest.py


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


# ------------------------------------------------------------------------------------ figures


def test_plot_history_draws_surface_path_and_losses():
    loss_fn = LossFunctionWithPlot()
    gradient_descent(loss_fn, torch.tensor(START, requires_grad=True), 0.1, 10)
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

