"""T6 helpers: data, elbow initialisation, batched training (same result as separate training),
snapshots, gradient features and the snapshot slider."""

from __future__ import annotations

import copy
import time

import matplotlib
import numpy as np
import pytest
import torch

from dlnn_helpers import relu_features as rf

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def data():
    return rf.make_relu_data()


def _nets(depth, widths=(3, 5, 8), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [rf.make_relu_net(w, depth, generator=generator) for w in widths]


def test_target_is_piecewise_linear_between_tenths():
    k = np.arange(11)
    assert np.allclose(rf.target_function(k / 10), np.sin(12345 * k), atol=1e-9)
    mid = rf.target_function(np.array([0.35]))[0]
    assert np.isclose(mid, 0.5 * (np.sin(12345 * 3) + np.sin(12345 * 4)))


def test_data_is_reproducible_and_leaves_the_global_rng_alone(data):
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    again = rf.make_relu_data()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_train, data.y_train)
    assert data.x_train.shape == (200, 1) and data.x_test.shape == (1200, 1)
    assert torch.all(data.x_train[1:] >= data.x_train[:-1])
    noise = data.y_train.numpy() - rf.target_function(data.x_train.numpy())
    assert 0.07 < noise.std() < 0.13
    assert not torch.equal(rf.make_relu_data(random_state=2).y_train, data.y_train)


@pytest.mark.parametrize("depth", [1, 2])
def test_elbows_start_sorted_inside_the_unit_interval(depth):
    net = rf.make_relu_net(40, depth, generator=torch.Generator().manual_seed(3))
    e = rf.elbows(net)
    assert torch.all((e >= 0) & (e <= 1)) and torch.all(e[1:] >= e[:-1])
    assert len([m for m in net if isinstance(m, torch.nn.Linear)]) == depth + 1


def test_minibatches_are_subsets_without_repeats():
    idx = rf.minibatch_indices(200, 40, 50, torch.Generator().manual_seed(0))
    assert idx.shape == (50, 40)
    assert all(len(set(row.tolist())) == 40 for row in idx)
    assert idx.min() >= 0 and idx.max() < 200
    assert not torch.equal(idx[0].sort().values, idx[1].sort().values)


@pytest.mark.parametrize("depth", [1, 2])
def test_batched_training_equals_separate_training(data, depth):
    nets = _nets(depth)
    runs = nets + nets
    lrs = [0.02, 0.02, 0.02, 0.2, 0.2, 0.2]
    only = [False] * 3 + [True] * 3
    histories = rf.train_relu_nets(runs, data, lrs=lrs, output_only=only, n_steps=300,
                                   snapshot_every=100, seed=5, dtype=torch.float64)
    for net, lr, flag, history in zip(runs, lrs, only, histories, strict=True):
        separate = rf.train_one_net(copy.deepcopy(net), data, lr=lr, output_only=flag, n_steps=300,
                                    snapshot_every=100, seed=5, dtype=torch.float64)
        for batched, alone, start in zip(history.params, separate, net.parameters(), strict=True):
            assert batched.shape[1:] == alone.shape
            assert torch.allclose(batched[-1].double(), alone, rtol=1e-5, atol=1e-6)
            assert torch.equal(batched[0], start.detach().float())
        moved = [not torch.allclose(h[-1], h[0]) for h in history.params]
        assert moved == ([not flag] * (2 * depth) + [True, True])


@pytest.mark.parametrize("depth", [1, 2])
def test_one_core_and_two_cores_train_the_same_bits(data, depth, monkeypatch):
    """On two cores the two groups (all layers, output layer only) train side by side; on one core
    (Colab) one after the other: the runs must be the same to the last bit."""
    nets = _nets(depth, widths=(3, 5, 8, 3, 5))
    settings = dict(lrs=[0.02] * 5 + [0.2] * 5, output_only=[False] * 5 + [True] * 5, n_steps=250,
                    snapshot_every=50, seed=3)
    runs = {}
    for cores in (1, 2):
        monkeypatch.setattr(rf, "available_cores", lambda cores=cores: cores)
        runs[cores] = rf.train_relu_nets(nets * 2, data, **settings)
    for one, two in zip(runs[1], runs[2], strict=True):
        assert all(torch.equal(a, b) for a, b in zip(one.params, two.params, strict=True))
        assert np.array_equal(one.test_error, two.test_error)
    assert not torch.equal(runs[1][5].params[-1][-1], runs[1][5].params[-1][0])  # it trained


def test_the_original_networks_are_not_modified(data):
    nets = _nets(1)
    before = [copy.deepcopy(n.state_dict()) for n in nets]
    rf.train_relu_nets(nets, data, n_steps=50, snapshot_every=10)
    for net, state in zip(nets, before, strict=True):
        for key, value in net.state_dict().items():
            assert torch.equal(value, state[key])


def test_snapshots_and_errors(data):
    nets = _nets(1, widths=(20,))
    start = time.perf_counter()
    (history,) = rf.train_relu_nets(nets, data, n_steps=2500, snapshot_every=500, seed=1)
    wall = time.perf_counter() - start
    assert list(history.steps) == [0, 500, 1000, 1500, 2000, 2500]
    assert history.params[0].shape == (6, 20, 1)
    net = history.net_at(-1)
    with torch.no_grad():
        test = torch.mean((net(data.x_test)[:, 0] - data.y_test) ** 2).item()
    assert np.isclose(history.test_error[-1], test, rtol=1e-4)
    assert history.train_error[-1] < history.train_error[0]
    assert history.label == "width 20, all layers"
    # the recorded time is that of the training itself: inside the call, and most of it
    assert 0.3 * wall <= history.seconds <= wall


def test_final_test_errors_group_runs_by_width_and_the_figures_draw(data, monkeypatch):
    import matplotlib.pyplot as plt

    nets = _nets(1, widths=(3, 5, 3))
    runs = rf.train_relu_nets(nets * 2, data, output_only=[False] * 3 + [True] * 3, n_steps=200,
                              snapshot_every=100)
    errors = rf.final_test_errors(runs[:3])
    assert list(errors) == [3, 5]
    assert np.array_equal(errors[3], [runs[0].test_error[-1], runs[2].test_error[-1]])
    assert np.array_equal(errors[5], [runs[1].test_error[-1]])
    monkeypatch.setattr(plt, "show", lambda: None)
    plt.close("all")
    rf.plot_width_comparison(runs[:3], runs[3:])
    (ax,) = plt.gcf().axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["3", "5"]
    medians = [line.get_ydata() for line in ax.get_lines()]
    assert np.allclose(medians[0], [np.median(errors[3]), errors[5][0]])
    plt.close("all")
    rf.plot_final_fits(runs[:2], runs[3:5], data)
    axes = plt.gcf().axes
    assert len(axes) == 4 and "output layer only" in axes[2].get_title()
    assert f"{runs[0].test_error[-1]:.4f}" in axes[0].get_title()
    plt.close("all")


def test_share_near_kinks_counts_elbows_close_to_a_tenth():
    net = rf.make_relu_net(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # elbows -b/w at 0.1, 0.23, 0.55 and 0.95: 0, 0.03, 0.05, 0.05 from a kink
        net[0].weight[:, 0] = torch.tensor([1.0, -2.0, 0.5, 1.0])
        net[0].bias.copy_(-torch.tensor([0.1, 0.23, 0.55, 0.95]) * net[0].weight[:, 0])
    assert rf.share_near_kinks(net) == 0.25
    assert rf.share_near_kinks(net, tolerance=0.04) == 0.5
    assert rf.share_near_kinks(net, tolerance=0.06) == 1.0


def _loop_features(net, x):
    """The feature matrix by a loop over points (the test's own answer to ex_feature_matrix)."""
    rows = []
    for k in range(len(x)):
        net.zero_grad()
        net(x[k : k + 1]).squeeze().backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    return torch.stack(rows)


def test_features_spectra_and_figures_from_the_students_functions(data, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda: None)
    (one,) = rf.train_relu_nets(_nets(1, widths=(6,)), data, n_steps=100, snapshot_every=50)
    (two,) = rf.train_relu_nets(_nets(2, widths=(4,)), data, n_steps=100, snapshot_every=50)
    x = data.x_train
    gw, gb = rf.first_layer_features(one, "trained", x, _loop_features)
    phi = _loop_features(one.net_at(-1), x)
    assert torch.equal(gw, phi[:, :6]) and torch.equal(gb, phi[:, 6:12])
    assert torch.allclose(gw, gb * x, atol=1e-6)  # the first layer's input is x
    pairs = rf.first_layer_features(one, "initial", x, lambda net, x: (_loop_features(net, x)[:, :6, None],
                                                                       _loop_features(net, x)[:, 6:12]))
    assert pairs[0].shape == (len(x), 6) and torch.equal(pairs[1], _loop_features(one.net_at(0), x)[:, 6:12])
    b2 = rf.second_layer_bias_features(two, "trained", x,
                                       lambda net, x: (None, _loop_features(net, x)[:, 24:28]))
    assert b2.shape == (len(x), 4)
    found = rf.spectrum(one, "trained", x, _loop_features)
    s = torch.linalg.svdvals(phi)
    assert torch.allclose(found.s, s) and found.curves.shape == (len(rf.SVD_GRID), rf.N_PRINCIPAL)
    # the principal features at the training points are U diag(s): their norms are the singular values
    at_points = rf.spectrum(one, "trained", x, lambda net, z: _loop_features(net, x))
    assert torch.allclose(at_points.curves.norm(dim=0), s[: rf.N_PRINCIPAL], rtol=1e-4)
    plt.close("all")
    rf.plot_first_layer_features(x, one, _loop_features)
    rf.plot_second_layer_features(x, two, lambda net, x: (None, _loop_features(net, x)[:, 24:28]))
    rf.plot_svd({"trained": found})
    assert len(plt.get_fignums()) == 3
    plt.close("all")


def test_precomputed_features_cover_the_tutorials_networks(data, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda: None)
    table = rf.PRECOMPUTED
    assert rf.PRECOMPUTED_PATH.stat().st_size < 60_000
    x = data.x_train
    runs = {(d, w): rf.History(np.zeros(1), [], np.zeros(1), np.zeros(1), w, d, 0.02, False)
            for d, w in [(1, 10), (1, 20), (1, 40), (2, 10), (2, 20), (2, 40)]}
    for width in (10, 20, 40):
        for stage in rf.STAGES:
            gw, gb = rf.first_layer_features(runs[1, width], stage, x, table)
            assert gb.shape == (200, width) and torch.allclose(gw, gb * x)
            found = rf.spectrum(runs[1, width], stage, x, table)
            assert torch.all(found.s[:-1] >= found.s[1:]) and found.curves.shape == (400, rf.N_PRINCIPAL)
        d = width * width + 4 * width + 1  # the parameters of two hidden layers
        assert rf.spectrum(runs[2, width], "trained", x, table).s.shape == (min(200, d),)
    for stage in rf.STAGES:
        assert rf.second_layer_bias_features(runs[2, 10], stage, x, table).shape == (200, 10)
        assert rf.first_layer_features(runs[2, 10], stage, x, table)[1].shape == (200, 10)
    with pytest.raises(KeyError, match="only the tutorial's own networks"):
        rf.spectrum(runs[2, 10], "initial", x, table)
    plt.close("all")
    rf.plot_first_layer_features(x, runs[1, 10], table)
    rf.plot_second_layer_features(x, runs[2, 10], table)
    assert len(plt.get_fignums()) == 2
    plt.close("all")


def test_snapshot_slider_static_and_interactive(data, monkeypatch, capsys):
    import matplotlib.pyplot as plt

    (history,) = rf.train_relu_nets(_nets(1, widths=(4,)), data, n_steps=200, snapshot_every=100)
    monkeypatch.setenv("DLNN_STATIC_WIDGETS", "1")
    plt.close("all")
    monkeypatch.setattr(plt, "show", lambda: None)
    rf.snapshot_slider([history], data)
    assert len(plt.get_fignums()) == 1
    assert "step 200" in plt.gcf().axes[0].get_title()
    monkeypatch.setenv("DLNN_STATIC_WIDGETS", "0")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs: shown.extend(objs))
    rf.snapshot_slider([history], data)
    (box,) = shown
    slider, image = box.children
    first = image.value
    assert first[:4] == b"\x89PNG" and slider.value == 200
    slider.value = 0  # moving the slider redraws the image
    assert image.value[:4] == b"\x89PNG" and image.value != first
    assert capsys.readouterr().err == ""
