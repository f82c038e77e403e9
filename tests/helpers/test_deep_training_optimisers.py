"""dlnn_helpers.deep_training_optimisers: runs from the same start, and their figure."""

from __future__ import annotations

import matplotlib
import torch
from torch import nn

from dlnn_helpers.deep_training import Supervise
from dlnn_helpers.deep_training_optimisers import plot_same_start_runs, same_start_runs

matplotlib.use("Agg")


def _net():
    return Supervise(nn.MSELoss(), nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))


def test_every_run_starts_from_the_same_weights_and_leaves_the_global_seed_as_given():
    x, y = torch.randn(20, 3), torch.randn(20)
    runs = same_start_runs(_net, {"a": lambda p: torch.optim.SGD(p, lr=0.1),
                                  "b": lambda p: torch.optim.SGD(p, lr=0.1),
                                  "c": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)},
                           x, y, n_steps=7, seed=3)
    assert list(runs) == ["a", "b", "c"]
    assert runs["a"].losses == runs["b"].losses and torch.equal(runs["a"].weights, runs["b"].weights)
    assert runs["a"].losses[0] == runs["c"].losses[0]  # the same start, then other steps
    assert runs["a"].losses[-1] != runs["c"].losses[-1]
    assert len(runs["c"].losses) == 7 and runs["c"].weights.shape == (3 * 4 + 4 + 4 + 1,)
    assert runs["a"].losses[-1] < runs["a"].losses[0]


def test_the_figure_has_one_curve_per_run():
    x, y = torch.randn(10, 3), torch.randn(10)
    runs = same_start_runs(_net, {"a": lambda p: torch.optim.SGD(p, lr=0.1),
                                  "b": lambda p: torch.optim.SGD(p, lr=0.2)}, x, y, n_steps=3)
    fig = plot_same_start_runs(runs, "t", show=False)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    assert lines[1].get_linestyle() == "--"
