"""dlnn_helpers.deep_training_data: the 6×6 "tiny" and "hard" classification tasks of tutorials 3 and 4.

The rules that label the grids are the tutorial's to find: they live in the answer key
(``dlnn_reference.deep_training_rules``), which generates the shipped grids; both are tested here.
"""

from __future__ import annotations

import inspect
import itertools

import matplotlib
import numpy as np
import pytest
import torch

from dlnn_helpers import deep_training_data as cd
from dlnn_reference import deep_training_rules as cr

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tiny():
    return cd.tiny_classification()


@pytest.fixture(scope="module")
def hard():
    return cd.hard_classification()


@pytest.mark.parametrize("name", ["tiny", "hard"])
def test_sets_have_the_specified_sizes_values_and_balance(name, request):
    data = request.getfixturevalue(name)
    assert [tuple(t.shape) for t in data] == [(8000, 36), (8000,), (1000, 36), (1000,)]
    for tensor in data:
        assert tensor.dtype == torch.float32
        assert set(tensor.unique().tolist()) == {0.0, 1.0}
    assert data.train_labels.sum() == 4000 and data.val_labels.sum() == 500
    pixels_on = data.train_data.mean(dim=0)
    assert ((pixels_on > 0.45) & (pixels_on < 0.55)).all()  # every pixel is a fair coin


@pytest.mark.parametrize(("name", "rule"), [("tiny", cr.tiny_rule), ("hard", cr.hard_rule)])
def test_labels_follow_the_documented_rule(name, rule, request):
    data = request.getfixturevalue(name)
    for x, y in ((data.train_data, data.train_labels), (data.val_data, data.val_labels)):
        assert np.array_equal(rule(x.numpy()), y.numpy().astype(np.int64))


def test_rules_by_hand_on_examples():
    grid = np.zeros((6, 6), dtype=int)
    assert cr.tiny_rule(grid) == 0 and cr.hard_rule(grid) == 0
    grid[2, 3] = 1  # one centre pixel: odd
    assert cr.tiny_rule(grid) == 1 and cr.hard_rule(grid) == 1
    grid[0, 0] = grid[5, 5] = 1  # two of the three corners do not count
    assert cr.tiny_rule(grid) == 1
    grid[0, 5] = 1  # all three corners on: +1
    assert cr.tiny_rule(grid) == 0 and cr.hard_rule(grid) == 0
    grid[5, 0] = 1  # the hard rule also counts the bottom-left corner
    assert cr.tiny_rule(grid) == 0 and cr.hard_rule(grid) == 1
    grid[4, 4] = 1  # an ignored pixel
    assert cr.tiny_rule(grid) == 0 and cr.hard_rule(grid) == 1
    assert cr.tiny_rule(grid.reshape(36)) == 0  # flat input works too


def test_hard_is_tiny_xor_the_bottom_left_corner():
    grids = np.array(list(itertools.product([0, 1], repeat=9)))
    full = np.zeros((len(grids), 6, 6), dtype=int)
    cells = [(2, 2), (2, 3), (3, 2), (3, 3), (0, 0), (0, 5), (5, 5), (5, 0), (1, 1)]
    for i, (r, c) in enumerate(cells):
        full[:, r, c] = grids[:, i]
    assert np.array_equal(cr.hard_rule(full), cr.tiny_rule(full) ^ full[:, 5, 0])
    # the tiny label is uncorrelated with every single pixel (a parity): no linear signal
    labels = cr.tiny_rule(full)
    for r, c in cells:
        assert labels[full[:, r, c] == 1].mean() == pytest.approx(labels.mean())


def test_generation_is_deterministic_distinct_and_leaves_the_global_rng_alone(tiny):
    torch.manual_seed(3)
    np.random.seed(3)  # noqa: NPY002
    expected = torch.rand(2), np.random.rand(2)  # noqa: NPY002
    torch.manual_seed(3)
    np.random.seed(3)  # noqa: NPY002
    again = cd.tiny_classification()
    assert torch.equal(torch.rand(2), expected[0])
    assert np.array_equal(np.random.rand(2), expected[1])  # noqa: NPY002
    for a, b in zip(again, tiny, strict=True):
        assert torch.equal(a, b)
    other = cr.tiny_data(random_state=1)
    assert not torch.equal(other.train_data, tiny.train_data)
    rows = {tuple(r) for r in torch.cat([tiny.train_data, tiny.val_data]).int().tolist()}
    assert len(rows) == 9000  # no grid twice, so validation grids are never in training


@pytest.mark.parametrize(("name", "generate"), [("tiny", cr.tiny_data), ("hard", cr.hard_data)])
def test_the_shipped_grids_are_what_the_reference_generates(name, generate, request):
    for shipped, fresh in zip(request.getfixturevalue(name), generate(), strict=True):
        assert torch.equal(shipped, fresh)


def test_the_student_package_holds_the_data_but_not_the_rules():
    source = inspect.getsource(cd)
    assert not {"tiny_rule", "hard_rule", "make_classification", "CORNERS"} & set(vars(cd))
    for detail in ("(0, 5)", "(5, 5)", "odd", "parity", "corner"):
        assert detail not in source


def test_make_classification_rejects_bad_sizes_and_grids():
    with pytest.raises(ValueError, match="even"):
        cr.make_classification(cr.tiny_rule, n_train=7)
    with pytest.raises(ValueError, match="too unbalanced"):
        cr.make_classification(lambda g: np.zeros(len(g), dtype=int), n_train=10, n_val=2)
    with pytest.raises(ValueError, match="6, 6"):
        cr.tiny_rule(np.zeros((3, 5)))


def test_plot_grids_draws_one_panel_per_sample(tiny):
    assert cd.plot_grids(tiny.train_data, tiny.train_labels, n=2) is None
    fig = cd.plot_grids(tiny.train_data, tiny.train_labels, n=5, title="x", show=False)
    assert len(fig.axes) == 5
    assert fig.axes[0].get_title() == f"label {int(tiny.train_labels[0])}"

