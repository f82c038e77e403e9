"""Every claim the text of tutorial 2 makes about a result, checked against the same computation.

Tutorial 2's demonstrations are cheap and deterministic (a two-dimensional loss, no random draws
except the jump series, which has its own seed), so each test recomputes what the notebook cell
runs with the reference implementations (the solution's answers: ``dlnn_reference.optimisation``)
and asserts the claim.  Each test first asserts that the
wording of its claim is in the cell it guards.
"""

from __future__ import annotations

import re

import nbformat
import numpy as np
import pytest
import torch

from courselayout import solution_path
from dlnn_helpers.optimisation_demos import make_jump_series, record_gradients
from dlnn_helpers.optimisation_surface import START, LossFunctionWithPlot
from dlnn_helpers.utils import torch_threads
from dlnn_reference import optimisation as reference

from .claims_tools import cell_outputs, cell_source

TUTORIAL = "T2_Optimisation"
SEED = 2021  # the notebook's SEED


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small computations: one thread is as fast on an idle machine and much faster on a busy one."""
    with torch_threads(1):
        yield


def _gradient_descent(learning_rate, n_steps=50):
    loss_fn = LossFunctionWithPlot()
    x = torch.tensor(START, requires_grad=True)
    reference.gradient_descent(loss_fn, x, learning_rate=learning_rate, n_steps=n_steps)
    return loss_fn, x


def _optimiser_run(make, n_steps=50):
    loss_fn = LossFunctionWithPlot()
    x = torch.tensor(START, requires_grad=True)
    optimizer = make([x])
    for _ in range(n_steps):
        loss_fn(x).backward()
        optimizer.step()
        optimizer.zero_grad()
    return loss_fn, x, optimizer


def _sgd_gradients():
    grads, _ = record_gradients(
        LossFunctionWithPlot(), torch.tensor(START), lambda params: torch.optim.SGD(params, lr=0.1), 50
    )
    return grads.numpy()


def test_the_loss_rises_six_times_faster_along_x0_and_starts_where_the_text_says():
    text = cell_source(TUTORIAL, "9d056b35")
    assert "rises more than six times faster along `x[0]` than along `x[1]`" in text
    assert "$\\mathcal{L} = 0$ at the origin" in text and "$x = (-1.5, 1.2)$" in text
    loss_fn = LossFunctionWithPlot()
    along_0 = float(loss_fn(torch.tensor([1.0, 0.0])))  # the loss is positively homogeneous
    along_1 = float(loss_fn(torch.tensor([0.0, 1.0])))
    assert along_0 / along_1 > 6
    assert float(loss_fn(torch.zeros(2))) == 0.0
    assert START == (-1.5, 1.2)


def test_gradient_descent_makes_fast_progress_then_zigzags_across_the_valley():
    text = cell_source(TUTORIAL, "914e00fa")
    assert "The first steps make fast progress, then the loss jumps back up" in text
    assert "the path zig-zags across the\nnarrow valley while hardly moving along it." in text
    assert "its gradient\ndoes not shrink near the bottom" in text
    loss_fn, _ = _gradient_descent(0.1)
    losses = np.array(loss_fn.losses)
    lowest = int(losses[:15].argmin())
    assert losses[lowest] < 0.05 * losses[0] and lowest <= 10  # fast progress
    assert losses[lowest:].max() > 2 * losses[lowest]  # then the loss jumps back up
    steps = np.diff(loss_fn.path(), axis=0)[12:]
    assert (np.sign(steps[1:, 0]) != np.sign(steps[:-1, 0])).all()  # zig-zag across the valley
    path = loss_fn.path()[12:]
    two_steps = np.linalg.norm(path[2:] - path[:-2], axis=1)  # where the zig-zag gets in two steps
    assert two_steps.mean() < np.abs(steps[:, 0]).mean() / 10  # hardly moving along the valley
    x = torch.tensor([1e-4, -1e-4], requires_grad=True)  # a cone: the gradient keeps its size
    LossFunctionWithPlot()(x).backward()
    assert float(x.grad.norm()) > 0.3


def test_the_cone_grows_linearly_along_rays_so_the_directions_differ_in_slope_not_curvature():
    text = cell_source(TUTORIAL, "914e00fa")
    assert ("This loss is a cone: along any ray from the origin it\ngrows linearly, so what differs "
            "between the two directions is the **slope**, not a curvature.") in text
    assert "Along `x[0]` the slope is steep, the gradient is large" in text
    assert "Along `x[1]` the slope is gentle" in text
    assert "Because the slope of a cone does not flatten out" in text
    loss_fn = LossFunctionWithPlot()
    rng = np.random.default_rng(0)
    for direction in rng.standard_normal((5, 2)):
        d = torch.tensor(direction, dtype=torch.float64)
        values = [float(loss_fn(t * d)) for t in (0.5, 1.0, 2.0)]
        assert values[1] == pytest.approx(2 * values[0], rel=1e-5)  # linear along the ray
        assert values[2] == pytest.approx(2 * values[1], rel=1e-5)
        hessian = torch.autograd.functional.hessian(lambda x: loss_fn(x), d)
        assert float(d @ hessian @ d) == pytest.approx(0.0, abs=1e-6)  # no curvature along a ray
    slopes = []
    for axis in (0, 1):
        x = torch.zeros(2, dtype=torch.float64)
        x[axis] = 1.0
        x.requires_grad_(True)
        loss_fn(x).backward()
        slopes.append(float(x.grad[axis]))
    assert slopes[0] > 6 * slopes[1] > 0  # steep along x[0], gentle along x[1]


def test_per_coordinate_rates_reach_0_04_and_keep_falling_where_one_rate_sticks_at_0_28():
    text = cell_source(TUTORIAL, "831de2ed")
    assert ("With $(0.02, 0.2)$ the loss at the last step is about 0.04 and still\n"
            "falling, far below the 0.28 at which the single rate 0.1 got stuck.") in text
    assert "torch.tensor([0.02, 0.2])" in cell_source(TUTORIAL, "ea5555cd")
    tuned, _ = _gradient_descent(torch.tensor([0.02, 0.2]))
    assert round(tuned.losses[-1], 2) == 0.04
    assert all(np.diff(tuned.losses[-10:]) < 0)  # still falling
    single, _ = _gradient_descent(0.1)
    assert round(single.losses[-1], 2) == 0.28
    assert max(single.losses[-20:]) - min(single.losses[-20:]) < 0.01  # stuck


def test_a_learning_rate_of_0_01_leaves_the_loss_above_1_1_after_50_steps():
    text = cell_source(TUTORIAL, "5f0eba79")
    assert "with $\\eta = 0.01$ the loss here is\nstill above 1.1 after 50 steps" in text
    loss_fn, x = _gradient_descent(0.01)
    assert 1.1 < loss_fn.losses[-1] < 1.2  # the loss at the last step, as the demonstrations print it
    assert 1.1 < float(loss_fn(x.detach())) < 1.2  # and at the point the 50th step reached


def test_weak_weight_decay_does_not_change_the_picture():
    text = cell_source(TUTORIAL, "cb26267c")
    assert "The weight decay is far too weak to change the picture" in text
    assert "the optimiser still gets stuck bouncing\nacross the valley." in text
    decayed, _, _ = _optimiser_run(lambda p: reference.SimpleGradientDescent(p, lr=0.1, weight_decay=1e-3))
    plain, _ = _gradient_descent(0.1)
    assert np.allclose(decayed.losses[-20:], plain.losses[-20:], atol=0.01)
    assert max(decayed.losses[-20:]) - min(decayed.losses[-20:]) < 0.01  # stuck
    steps = np.diff(decayed.path(), axis=0)[12:]
    assert (np.sign(steps[1:, 0]) != np.sign(steps[:-1, 0])).all()


def test_the_gradient_statistics_of_sgd_are_the_numbers_in_the_text():
    text = cell_source(TUTORIAL, "8b1983de")
    for claim in (
        "the gradient is about −2.35 for the first seven steps",
        "from step 12 on it jumps between about +2.2 and −2.2 at every step",
        "Its RMS (2.11) is\nlarge, but its mean is only −0.30",
        "(RMS 0.31) but lopsided — positive for the first steps",
        "larger when positive than when negative\nafterwards",
        "so its mean, 0.09, is 30 % of its RMS, against 14 % along `x[0]`",
        "steps about seven times smaller than those along `x[0]`",
    ):
        assert claim in text
    grads = _sgd_gradients()
    g0, g1 = grads[:, 0], grads[:, 1]
    assert np.allclose(g0[:7], -2.35, atol=0.07)
    assert (np.sign(g0[13:]) != np.sign(g0[12:-1])).all()
    assert np.allclose(np.abs(g0[12:]), 2.2, atol=0.1)
    mean, rms = (t.numpy() for t in reference.gradient_mean_rms(torch.from_numpy(grads)))
    assert [round(float(v), 2) for v in rms] == [2.11, 0.31]
    assert [round(float(v), 2) for v in mean] == [-0.30, 0.09]
    assert round(abs(mean[1]) / rms[1], 2) == 0.31 and round(abs(mean[0]) / rms[0], 2) == 0.14  # 30 % / 14 %
    first_negative = int(np.argmax(g1 < 0))
    assert first_negative >= 5 and (g1[:first_negative] > 0).all()  # positive for the first steps
    later = g1[first_negative:]
    assert later[later > 0].mean() > np.abs(later[later < 0]).mean()  # larger when positive
    assert round(np.abs(g0).mean() / np.abs(g1).mean()) == 7  # steps are lr * gradient


def test_the_jump_series_and_its_moving_averages_behave_as_described():
    text = cell_source(TUTORIAL, "9ca6742b")
    assert "sits near −10 for 100 steps, then jumps to about 0.5" in text
    assert "series = make_jump_series(random_state=SEED)" in cell_source(TUTORIAL, "44888a74")
    text = cell_source(TUTORIAL, "7b8eb46d")
    assert "The ordinary mean (about −4.7) describes neither half of the series." in text
    assert "needs a few multiples of $1/(1-\\beta) = 10$ steps to forget the old level" in text
    assert ("starts at $(1-\\beta)\\,x_1 \\approx -1$ and comes within 5 % of −10\n"
            "only after about 30 steps") in text
    series = make_jump_series(random_state=SEED)
    before, after = float(series[:100].mean()), float(series[100:].mean())
    assert round(before) == -10 and abs(after - 0.5) < 0.1 and len(series) == 200
    assert round(float(series.mean()), 1) == -4.7
    ema, ema_star = reference.ema_history(series, 0.9)
    ema, ema_star = ema.numpy(), ema_star.numpy()
    jump = after - before
    assert ema[100 + 10] < after - jump / 4  # one multiple of 10 steps is not enough
    assert np.all(np.abs(ema[100 + 30:] - after) < jump / 10)  # three are
    assert round(float(ema_star[0]), 1) == -1.0
    close = np.flatnonzero(np.abs(ema_star[:100] - (-10)) <= 0.5)
    assert 25 <= close[0] + 1 <= 35 and np.all(np.diff(close) == 1)  # t counts from 1


def test_adam_reaches_0_03_with_full_steps_first_and_shrinking_steps_later():
    text = cell_source(TUTORIAL, "aaf8d743")
    for claim in (
        "Adam's loss at the last step is about 0.03, where plain gradient descent stalled near 0.28",
        "For the first 15 steps both coordinates move by almost exactly\n$\\eta = 0.1$ per step",
        "$m_t / \\sqrt{v_t} \\approx \\pm 1$",
        "although its gradient is about seven times smaller",
        "steps shrink (to a few hundredths in the last 20 steps)",
        "The two implementations agree to float32\nrounding.",
    ):
        assert claim in text
    assert "Adam(params, lr=0.1, weight_decay=0.1)" in cell_source(TUTORIAL, "0f017c72")
    ours, _, _ = _optimiser_run(lambda p: reference.ADAMOptimizer(p, lr=0.1, weight_decay=0.1))
    theirs, _, _ = _optimiser_run(lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1))
    assert round(ours.losses[-1], 2) == 0.03
    steps = np.abs(np.diff(ours.path(), axis=0))
    assert np.allclose(steps[:15], 0.1, atol=0.007)
    assert 0.01 <= steps[-20:].mean() < 0.05
    grads, _ = record_gradients(
        LossFunctionWithPlot(), torch.tensor(START),
        lambda p: reference.ADAMOptimizer(p, lr=0.1, weight_decay=0.1), n_steps=15
    )
    ratio = np.abs(grads[:, 0].numpy()) / np.abs(grads[:, 1].numpy())
    assert np.all((ratio > 5) & (ratio < 9))  # the gradient along x[1] is about 7 times smaller
    assert np.abs(ours.path() - theirs.path()).max() < 1e-6


def test_the_next_tutorial_does_not_train_with_the_students_optimisers():
    text = cell_source(TUTORIAL, "26577962")
    assert "The next tutorial trains networks with optimisers of this kind, but not with yours" in text
    next_tutorial = nbformat.read(solution_path("T3_TrainingDeepNetworks"), as_version=4)
    code = "\n".join(c.source for c in next_tutorial.cells if c.cell_type == "code")
    assert "class SimpleGradientDescent" not in code and "class ADAMOptimizer" not in code
    assert "def ema_update" not in code
    constructed = set(re.findall(r"\b(SimpleGradientDescent|ADAMOptimizer|torch\.optim\.\w+)\(", code))
    assert constructed, "the next tutorial builds no optimiser"
    # whatever it builds is imported or from torch, never a name the student defined in tutorial 2
    for name in constructed - {n for n in constructed if n.startswith("torch.optim.")}:
        assert re.search(rf"^from [\w.]+ import .*\b{name}\b", code, re.MULTILINE)



@pytest.mark.slow
def test_the_set_up_cell_prints_no_stray_value(reference_run):
    assert cell_outputs(reference_run(TUTORIAL), "c74328c8") == "Random seed 2021 has been set.\n"


def test_the_stand_in_of_gradient_descent_takes_the_same_path():
    text = cell_source(TUTORIAL, "3b01feb7")
    assert "by `torch.optim.SGD`, which takes the same path" in text
    assert "descend_with_torch_sgd" in cell_source(TUTORIAL, "584ad142")
    from dlnn_helpers.optimisation_demos import descend_with_torch_sgd

    for learning_rate in (0.1, torch.tensor([0.02, 0.2])):
        ours, _ = _gradient_descent(learning_rate)
        theirs = LossFunctionWithPlot()
        descend_with_torch_sgd(theirs, torch.tensor(START, requires_grad=True), learning_rate, 50)
        assert np.array_equal(ours.path(), theirs.path())


@pytest.mark.slow
def test_the_demonstrations_use_the_solutions_own_answers(reference_run):
    """The set-up text says the demonstrations use the student's code once it passes."""
    assert "the demonstrations use your own code as soon as it passes its self-check" in cell_source(
        TUTORIAL, "9d056b35")
    nb = reference_run(TUTORIAL)
    for cell_id, name in (("584ad142", "gradient_descent"), ("e9af11ae", "SimpleGradientDescent"),
                          ("17a2718b", "gradient_mean_rms"), ("44888a74", "ema_update"),
                          ("0f017c72", "ADAMOptimizer")):
        assert cell_outputs(nb, cell_id).startswith(f"Using your {name}.\n"), cell_id
