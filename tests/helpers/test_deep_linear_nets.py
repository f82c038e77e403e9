"""Deep linear networks: models, the stand-in initialisation, training records, and (on the
instructor's side, ``dlnn_reference``) the answers of tutorial 1's exercises that the records match."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dlnn_helpers as dlnn
import dlnn_reference.deep_linear as reference
from dlnn_helpers.checks import CheckFailure, check_initializer

from ..t1_loop import deep_run, notebook_train, recording_train


@pytest.fixture(scope="module")
def tree_tensors():
    labels, features = dlnn.generate_hsd(random_state=2021)
    return labels, features, torch.tensor(labels).float(), torch.tensor(features).float()


def test_lnnet_shapes_and_no_bias():
    model = dlnn.LNNet(8, 30, 100)
    out, hid = model(torch.eye(8))
    assert out.shape == (8, 100) and hid.shape == (8, 30)
    assert [p.shape for p in model.parameters()] == [(30, 8), (100, 30)]
    assert dlnn.LRNet(8, 5)(torch.eye(8)).shape == (8, 5)


def test_reference_initializer_scale():
    model = dlnn.LNNet(5000, 5000, 1)
    reference.initializer_(model, gamma=1.0, generator=torch.Generator().manual_seed(0))
    first = next(model.parameters())
    assert abs(first.std().item() - 0.01) < 1e-4  # 1 / sqrt(5000 + 5000)
    small = dlnn.LNNet(300, 200, 100)
    reference.initializer_(small, gamma=2.0)
    for w in small.parameters():
        sigma = 2.0 / math.sqrt(sum(w.shape))
        assert abs(w.std().item() / sigma - 1) < 0.05


def test_the_stand_in_initialisation_is_pytorchs_scaled_and_not_the_exercise():
    model = dlnn.LNNet(300, 200, 100)
    torch.manual_seed(0)
    dlnn.default_init_(model, gamma=2.0)
    for w in model.parameters():
        n_in = w.shape[1]
        assert w.abs().max().item() <= 2.0 / math.sqrt(n_in)  # uniform on [-γ/√n_in, γ/√n_in]
        assert abs(w.std().item() / (2.0 / math.sqrt(3 * n_in)) - 1) < 0.05
    with pytest.raises(CheckFailure, match="should have σ = γ / sqrt"):
        check_initializer(dlnn.default_init_)


def test_no_answer_of_tutorial_1_is_left_in_the_student_package():
    for name in ("initializer_", "net_svd", "net_rsm", "linear_regression", "total_weight"):
        assert not hasattr(dlnn, name) and not hasattr(dlnn.deep_linear_nets, name), name


def test_net_svd_reconstructs_w_tot():
    torch.manual_seed(0)
    model = dlnn.LNNet(8, 30, 100)
    u, s, v = reference.net_svd(model, 8)
    w_tot = model.hid_out.weight @ model.in_hid.weight
    assert u.shape == (100, 8) and s.shape == (8,) and v.shape == (8, 8)
    assert torch.allclose(u @ torch.diag(s) @ v.T, w_tot, atol=1e-5)
    assert torch.all(s[:-1] >= s[1:])
    assert torch.allclose(reference.total_weight(model, 8), w_tot.detach())


def test_rsm_is_symmetric_positive_semidefinite():
    h = torch.randn(8, 30, generator=torch.Generator().manual_seed(1))
    rsm = reference.net_rsm(h)
    assert rsm.shape == (8, 8)
    assert torch.allclose(rsm, rsm.T)
    assert torch.linalg.eigvalsh(rsm.double()).min() > -1e-8


def test_train_records_have_documented_shapes(tree_tensors):
    _, _, x, y = tree_tensors
    model = dlnn.LNNet(8, 30, y.shape[1])
    reference.initializer_(model, 1e-12, generator=torch.Generator().manual_seed(0))
    record = recording_train()(model, x, y, n_epochs=20, lr=100.0)
    losses, modes, rsms, illusions = record  # unpacks like the classic tuple
    assert losses.shape == (20,) and modes.shape == (20, 8)
    assert rsms.shape == (20, 8, 8) and illusions.shape == (20,)
    assert np.all(np.diff(modes, axis=1) <= 1e-9)  # singular values in decreasing order


def test_train_records_the_answers_singular_values_and_rsm(tree_tensors):
    _, _, x, y = tree_tensors
    model = dlnn.LNNet(8, 30, y.shape[1])
    reference.initializer_(model, 1.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first_rsm = reference.net_rsm(model(x)[1]).numpy()  # recorded before the first step
    record = recording_train()(model, x, y, n_epochs=3, lr=0.01)
    assert np.allclose(record.rsms[0], first_rsm, rtol=1e-5, atol=0)
    assert np.allclose(record.modes[-1], reference.net_svd(model, 8)[1].numpy(), rtol=1e-5, atol=0)


def test_learning_is_staged_and_ends_near_zero_loss(tree_tensors):
    _, _, x, y = tree_tensors
    record = deep_run(x, y)
    assert record.losses[0] > 0.99 and record.losses[-1] < 1e-3
    # the largest mode is learned long before the smallest
    half = record.modes[-1] / 2
    reached = [int(np.argmax(record.modes[:, i] > half[i])) for i in range(8)]
    assert reached[0] < reached[1] < reached[-1]
    assert reached[-1] - reached[0] > 50


def test_illusory_correlation_rises_then_falls(tree_tensors):
    _, features, x, _ = tree_tensors
    shark = torch.tensor(dlnn.add_feature(features, [-1, 1, 1, 1, -1, -1, -1, -1])).float()
    record = deep_run(x, shark, illusory_i=0)
    peak = int(np.argmax(record.illusions))
    assert record.illusions[peak] > 0.2  # the Shark "has bones" for a while
    assert 0 < peak < len(record.illusions) - 1
    assert record.illusions[-1] < -0.9  # and finally it does not


def test_analytic_zero_depth_and_deep_agree(tree_tensors):
    labels, features, x, y = tree_tensors
    analytic = reference.linear_regression(labels.T, features.T)
    assert np.allclose(analytic, features.T)  # one-hot inputs: W is the feature matrix
    lr_model = dlnn.LRNet(8, y.shape[1])
    losses = dlnn.train_lrnet(lr_model, x, y, n_epochs=250, lr=1000.0)
    assert losses[-1] < losses[0]
    deep = dlnn.LNNet(8, 30, y.shape[1])
    reference.initializer_(deep, 1e-12, generator=torch.Generator().manual_seed(0))
    notebook_train()(deep, x, y, n_epochs=250, lr=100.0)
    assert np.allclose(analytic, lr_model.in_out.weight.detach().numpy(), atol=1e-2)
    assert np.allclose(analytic, reference.total_weight(deep, 8).numpy(), atol=1e-2)


def test_reference_linear_regression_matches_lstsq_and_validates():
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 30)), rng.random((3, 30))
    expected = np.linalg.lstsq(x.T, y.T, rcond=None)[0].T
    assert np.allclose(reference.linear_regression(x, y), expected)
    with pytest.raises(ValueError, match="share D samples"):
        reference.linear_regression(x, y[:, :5])
