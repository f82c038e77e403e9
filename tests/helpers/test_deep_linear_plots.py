"""dlnn_helpers.deep_linear_plots: T1's figures, drawn from their arguments only, without warnings."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import dlnn_helpers as dlnn  # noqa: E402

from ..t1_loop import deep_run  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_warnings_and_close")  # tests/helpers/conftest.py


@pytest.fixture(scope="module")
def record():
    labels, features = dlnn.generate_hsd(200, random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    return deep_run(x, y, n_epochs=60, lr=50.0, gamma=1e-3)


def test_plot_tree_data_default_and_custom():
    fig = dlnn.plot_tree_data(show=False)
    ax_labels, ax_features = fig.axes[:2]
    assert [t.get_text() for t in ax_labels.get_yticklabels()] == list(dlnn.ITEM_NAMES)
    assert [t.get_text() for t in ax_features.get_xticklabels()] == list(dlnn.READABLE_FEATURE_NAMES)
    names = ["Shark", *dlnn.ITEM_NAMES[1:]]
    features = dlnn.add_feature(np.ones((8, 20)), [-1, 1, 1, 1, -1, -1, -1, -1])
    fig = dlnn.plot_tree_data(names, features, "has_bones", show=False)
    assert fig.axes[0].get_yticklabels()[0].get_text() == "Shark"
    assert fig.axes[1].get_xticklabels()[-1].get_text() == "has_bones"
    assert fig.axes[1].images[0].get_array().shape == (8, 10)
    with pytest.raises(ValueError, match="item names"):
        dlnn.plot_tree_data(names[:4], features, show=False)


def test_learning_curve_figures(record):
    fig = dlnn.plot_loss(record.losses, show=False)
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), record.losses)
    fig = dlnn.plot_loss_sv_twin(record.losses, record.modes, show=False)
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 8
    assert max(line.get_ydata().max() for line in fig.axes[1].lines) == pytest.approx(1.0)
    fig = dlnn.plot_loss_sv(record.losses, record.modes, show=False)
    assert len(fig.axes[1].lines) == 8
    fig = dlnn.plot_ills_sv_twin(record.illusions, record.modes, "Shark has bones", show=False)
    assert fig.axes[0].get_ylabel() == "Shark has bones"
    fig = dlnn.plot_x_y_hier_data(np.eye(8), np.ones((8, 50)), show=False)
    assert len(fig.axes) == 2


def test_rsm_figure_uses_given_names(record):
    names = [f"item{i}" for i in range(8)]
    fig = dlnn.plot_loss_sv_rsm(
        record.losses, record.modes, record.rsms, 30, names, show=False
    )
    rsm_ax = fig.axes[1]
    assert rsm_ax.get_title() == "RSM at epoch 30"
    assert [t.get_text() for t in rsm_ax.get_yticklabels()] == names
    with pytest.raises(ValueError, match="i_ep"):
        dlnn.plot_loss_sv_rsm(record.losses, record.modes, record.rsms, 60, names, show=False)
