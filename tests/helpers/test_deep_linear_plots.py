"""T1 figures and widgets: drawn from their arguments only, no warnings, static on the site."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import dlnn_helpers as dlnn  # noqa: E402
from dlnn_helpers.course import STATIC_ENV_VAR  # noqa: E402
from dlnn_reference.deep_linear import initializer_  # noqa: E402

from ..t1_loop import deep_run, recording_train  # noqa: E402

LOOP = {"train": recording_train(), "initializer": initializer_}


@pytest.fixture(autouse=True)
def _no_warnings_and_close():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


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


def test_widgets_draw_one_static_figure_on_the_site(monkeypatch):
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    monkeypatch.setattr(plt, "show", lambda: None)
    labels, features = dlnn.generate_hsd(random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    dlnn.loss_widget(x, y, **LOOP)
    assert len(plt.get_fignums()) == 1
    dlnn.rsm_widget(x, y, **LOOP)
    assert len(plt.get_fignums()) == 2
    assert plt.figure(2).axes[1].get_title() == "RSM at epoch 130"


def test_widgets_build_controls_interactively(monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs: shown.extend(objs))
    labels, features = dlnn.generate_hsd(200, random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    assert dlnn.rsm_widget(x, y, **LOOP) is None
    (box,) = shown
    *controls, image = box.children
    assert [control.description for control in controls] == ["eta", "gamma", "Epoch"]
    assert controls[2].min == 10 and controls[2].max == 241 and controls[2].value == 130
    assert controls[1].value == pytest.approx(1e-12)
    assert image.value[:4] == b"\x89PNG"
    assert plt.get_fignums() == []  # rendered and closed: nothing left for the inline backend


def test_moving_a_control_redraws_the_image(monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    labels, features = dlnn.generate_hsd(200, random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    live = dlnn.rsm_widget(x, y, **LOOP, display=False)
    first = live.image.value
    live.controls["i_ep"].value = 20
    assert live.renders == 2 and live.image.value[:4] == b"\x89PNG" and live.image.value != first
    loss = dlnn.loss_widget(x, y, **LOOP, display=False)
    before = loss.image.value
    loss.controls["gamma"].value = 1e-3
    assert loss.renders == 2 and loss.image.value != before
    assert plt.get_fignums() == []


def test_a_message_or_an_error_replaces_the_figure(monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    import ipywidgets

    from dlnn_helpers.widgets import LiveFigure, figure_png

    def draw(n: int):
        if n < 0:
            raise ValueError("n must be non-negative")
        return "a message" if n == 0 else dlnn.plot_loss(np.arange(n), show=False)

    live = LiveFigure(draw, {"n": ipywidgets.IntSlider(value=3, min=-1)})
    drawn = live.image.value
    live.controls["n"].value = 0
    assert live.image.value == figure_png("a message") != drawn
    live.controls["n"].value = -1  # an error in a callback is drawn where the student looks
    assert live.image.value == figure_png("ValueError: n must be non-negative")
    assert plt.get_fignums() == []


def test_divergence_is_reported_not_raised(monkeypatch, capsys):
    labels, features = dlnn.generate_hsd(100, random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    record = deep_run(x, y, lr=200.0, gamma=10.0)
    assert record.diverged_at is not None
    assert np.isnan(record.losses[-1]) and np.all(np.isfinite(record.losses[: record.diverged_at]))
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    monkeypatch.setattr(plt, "show", lambda: None)
    monkeypatch.setattr("dlnn_helpers.widgets.DEFAULT_LR", 200.0)
    monkeypatch.setattr("dlnn_helpers.widgets.DEFAULT_GAMMA", 10.0)
    dlnn.loss_widget(x, y, **LOOP)
    assert "diverged at epoch" in plt.gcf().axes[0].get_title()
    dlnn.rsm_widget(x, y, **LOOP)
    assert "Training diverged" in capsys.readouterr().out


def test_static_figures_while_autograding(monkeypatch):
    from dlnn_helpers.course import static_figures

    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not static_figures()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert static_figures()
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    assert static_figures()
