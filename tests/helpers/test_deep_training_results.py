"""The qualitative story of tutorials 3 and 4 holds on our data with the notebooks' fixed seed.

Each experiment is run exactly as the notebook runs it (same seed, network, optimiser, loss and
stopping rule), and each assertion is one claim the tutorial's text makes.
"""

from __future__ import annotations

import contextlib
import copy
import io

import pytest
import torch
from torch import nn

from dlnn_helpers.classification_data import hard_classification, tiny_classification
from dlnn_helpers.deep_training import (
    AUTOGRADE_ENV_VAR,
    Supervise,
    batchnorm_mlp,
    mlp,
    residual_net,
    run_test,
)
from dlnn_helpers.initialisation import SuperviseKaimingWeights, SuperviseRandomWeights
from dlnn_helpers.optimisers import ADAMOptimizer, SimpleGradientDescent

SEED = 7150


@pytest.fixture(autouse=True)
def _not_autograding(monkeypatch):
    monkeypatch.delenv(AUTOGRADE_ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def tiny():
    return tiny_classification()


def _run(make_net, optmaker, data, supervise=Supervise, criterion=None):
    torch.manual_seed(SEED)
    net = make_net()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = run_test(supervise(criterion or nn.BCELoss(), net), optmaker, data, plot=False)
    return result, net


def _adam(weight_decay=1e-3):
    return lambda p: ADAMOptimizer(p, lr=0.01, weight_decay=weight_decay)


def test_sigmoid_with_sgd_stays_near_chance_and_relu_does_clearly_better(tiny):
    sigmoid, _ = _run(lambda: mlp(36, 128, 3, nn.Sigmoid), lambda p: SimpleGradientDescent(p, lr=1.0),
                      tiny, criterion=nn.MSELoss())
    relu, _ = _run(lambda: mlp(36, 128, 3, nn.ReLU), lambda p: SimpleGradientDescent(p, lr=1.0),
                   tiny, criterion=nn.MSELoss())
    assert 0.44 <= sigmoid.val_acc <= 0.56 and sigmoid.best_val_acc <= 0.56
    assert relu.val_acc >= sigmoid.val_acc + 0.1
    assert relu.train_acc >= sigmoid.train_acc + 0.1


def test_adam_without_weight_decay_fits_the_training_set_but_not_the_rule(tiny):
    adam, _ = _run(lambda: mlp(36, 128, 3, nn.ReLU), _adam(weight_decay=0.0), tiny)
    assert adam.train_acc == 1.0
    assert adam.train_acc - adam.val_acc >= 0.05


def test_deep_plain_network_small_init_is_stuck_while_kaiming_and_batchnorm_learn(tiny):
    small, _ = _run(lambda: mlp(36, 32, 6, nn.ReLU), _adam(), tiny, SuperviseRandomWeights)
    kaiming, _ = _run(lambda: mlp(36, 32, 6, nn.ReLU), _adam(), tiny, SuperviseKaimingWeights)
    batchnorm, _ = _run(lambda: batchnorm_mlp(36, 32, 6), _adam(), tiny)
    assert 0.49 <= small.val_acc <= 0.51 and small.best_val_acc <= 0.51
    assert kaiming.val_acc >= 0.8
    assert batchnorm.val_acc >= 0.8


def test_batchnorm_residual_network_reaches_full_accuracy_and_fine_tuning_beats_scratch(tiny):
    pretrained, net = _run(lambda: residual_net(36, 16, 32, 2, batchnorm=True), _adam(), tiny)
    assert pretrained.val_acc == 1.0 and pretrained.epochs <= 2000
    hard = hard_classification()
    scratch, _ = _run(lambda: residual_net(36, 16, 32, 2, batchnorm=True), _adam(), hard)
    fine_tuned, _ = _run(lambda: copy.deepcopy(net), _adam(), hard)
    assert scratch.val_acc <= 0.6
    assert fine_tuned.val_acc >= scratch.val_acc + 0.3
