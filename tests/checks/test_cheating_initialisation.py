"""Cheating answers of tutorial 4's exercises, each refused by its self-check with a plain message.

``ex_zero_weights``, ``ex_random_weights``, ``ex_lecun_weights`` and ``ex_he_weights`` refuse
``torch.nn.init``: it is caught where it runs, however it is reached (an attribute built from
strings, a name imported before the check, a wrapper, ``functools.partial``, a helper of the student
package that calls it).  ``Supervise_random_weights`` and ``Supervise_Kaiming_weights`` use
``torch.nn.init`` on purpose and refuse nothing, but like every exercise they refuse the course's
expected data.  The checks of this tutorial judge by defining properties (statistics), so they
work the same with the shipped values only and with live ones.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.init import kaiming_normal_

import dlnn_helpers
from dlnn_helpers.checks import CheckFailure, ShortcutUsed, _expected
from dlnn_helpers.checks.initialisation import check_init_weights, check_supervise_init
from dlnn_helpers.deep_training import Supervise, precomputed
from dlnn_helpers.mlp_regression import xavier_init_
from dlnn_reference import initialisation as reference

TASK = "the exercise is to draw the weights from the distribution yourself"
READS = ("reads the course's expected answers (the data the self-check compares with): the exercise "
         "is to compute them yourself")
EXPECTED_FOLDER = Path(dlnn_helpers.__file__).parent / "checks" / "expected"


def he_by_getattr(n_in, n_out):
    init = getattr(torch.nn, "in" + "it")
    return getattr(init, "kaiming" + "_normal_")(torch.empty(n_out, n_in)).T


def he_by_import_module(n_in, n_out):
    init = importlib.import_module("torch.nn.init")
    return vars(init)["kaiming_normal_"](torch.empty(n_out, n_in)).T


def he_imported_before(n_in, n_out):
    return kaiming_normal_(torch.empty(n_out, n_in)).T  # bound when this module was imported


def _my_kaiming(weight):
    return nn.init.kaiming_normal_(weight)


def he_by_wrapper(n_in, n_out):
    return _my_kaiming(torch.empty(n_out, n_in)).T


_PARTIAL = functools.partial(kaiming_normal_, mode="fan_in")


def he_by_partial(n_in, n_out):
    return _PARTIAL(torch.empty(n_out, n_in)).T


def he_by_package_helper(n_in, n_out):
    """xavier_init_ (tutorial 5's helper) calls nn.init.xavier_normal_; rescaled to He's variance."""
    layer = nn.Linear(n_in, n_out)
    xavier_init_(nn.Sequential(layer), gain=math.sqrt(1.0 + n_out / n_in))
    return layer.weight.detach().T.contiguous()


def lecun_by_normal(n_in, n_out):
    return nn.init.normal_(torch.empty(n_in, n_out), std=1.0 / math.sqrt(n_in))


def random_by_trunc_normal(n_in, n_out, scale=0.01):
    return nn.init.trunc_normal_(torch.empty(n_in, n_out), std=scale, a=-10 * scale, b=10 * scale)


def zero_by_constant(n_in, n_out):
    return nn.init.constant_(torch.empty(n_in, n_out), 0.0)


@pytest.mark.parametrize(
    ("method", "answer", "routine"),
    [
        ("he", he_by_getattr, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_import_module, "torch.nn.init.kaiming_normal_"),
        ("he", he_imported_before, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_wrapper, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_partial, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_package_helper, "torch.nn.init.xavier_normal_"),
        ("lecun", lecun_by_normal, "torch.nn.init.normal_"),
        ("random", random_by_trunc_normal, "torch.nn.init.trunc_normal_"),
        ("zero", zero_by_constant, "torch.nn.init.constant_"),
    ],
    ids=["getattr", "import_module", "imported-before", "wrapper", "partial", "package-helper",
         "lecun-normal_", "random-trunc_normal_", "zero-constant_"],
)
def test_torch_nn_init_is_refused_however_it_is_reached(method, answer, routine):
    with pytest.raises(ShortcutUsed, match=f"^ex_{method}_weights uses {re.escape(routine)}: {TASK}$"):
        check_init_weights(answer, method)


def he_from_the_shipped_folder(n_in, n_out):
    for path in EXPECTED_FOLDER.glob("*.json"):
        path.read_text(encoding="utf-8")
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in)


def he_asking_expected(n_in, n_out):
    try:
        _expected.expected("check_init_weights", n_in=n_in, n_out=n_out)
    except Exception:  # noqa: BLE001 - whatever comes back, asking is the shortcut
        pass
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in)


class KaimingAskingExpected(reference.SuperviseKaimingWeights):
    def __init__(self, criterion, net):
        super().__init__(criterion, net)
        try:
            _expected.expected("check_supervise_init", method="kaiming")
        except Exception:  # noqa: BLE001
            pass


class RandomReadingShipped(reference.SuperviseRandomWeights):
    def forward(self, x, y):
        for path in EXPECTED_FOLDER.glob("*.json"):
            path.read_bytes()
        return super().forward(x, y)


@pytest.mark.parametrize(
    ("run", "answer", "exercise"),
    [
        (lambda a: check_init_weights(a, "he"), he_from_the_shipped_folder, "ex_he_weights"),
        (lambda a: check_init_weights(a, "he"), he_asking_expected, "ex_he_weights"),
        (lambda a: check_supervise_init(a, "kaiming"), KaimingAskingExpected, "Supervise_Kaiming_weights"),
        (lambda a: check_supervise_init(a, "random"), RandomReadingShipped, "Supervise_random_weights"),
    ],
    ids=["file", "expected", "supervise-expected", "supervise-file-in-forward"],
)
def test_the_course_data_is_refused(run, answer, exercise):
    assert any(EXPECTED_FOLDER.glob("*.json"))  # there is something to read
    with pytest.raises(ShortcutUsed, match=f"^{re.escape(exercise + ' ' + READS)}$"):
        run(answer)


def _pytorch_default_rescaled(n_in, n_out):
    """nn.Linear's own initialisation (kaiming_uniform_ run inside torch), rescaled to He's std."""
    return nn.Linear(n_in, n_out).weight.detach().T.contiguous() * math.sqrt(6.0)


@pytest.mark.parametrize(
    ("run", "answer", "message"),
    [
        (lambda a: check_init_weights(a, "he"), _pytorch_default_rescaled,
         "that is a uniform distribution"),
        (lambda a: check_supervise_init(a, "kaiming"), Supervise, "was not re-initialised"),
        (lambda a: check_supervise_init(a, "random"), precomputed("Supervise_random_weights"),
         "was not re-initialised"),
        (lambda a: check_supervise_init(a, "kaiming"), precomputed("Supervise_Kaiming_weights"),
         "was not re-initialised"),
        (lambda a: check_init_weights(a, "he"), precomputed("ex_mlp"),
         "is a dlnn_helpers.deep_training.PrecomputedNetwork; it should be a torch.Tensor"),
    ],
    ids=["linear-default", "supervise", "precomputed-random", "precomputed-kaiming", "precomputed-net"],
)
def test_package_routines_that_come_close_fail(run, answer, message):
    with pytest.raises(CheckFailure, match=message):
        run(answer)


def test_the_supervise_classes_may_use_torch_nn_init():
    assert "is correct" in check_supervise_init(reference.SuperviseKaimingWeights, "kaiming")
    assert "is correct" in check_supervise_init(reference.SuperviseRandomWeights, "random")


@pytest.mark.parametrize("mode", ["shipped_only", "live_only"])
def test_the_checks_need_no_expected_values(mode):
    """Hidden settings pass without any expected value (the self-check calls: test_expected)."""
    with getattr(_expected, mode)():
        assert "is correct" in check_init_weights(reference.he_weights, "he", seed=10, shape=(1000, 40))
        assert "is correct" in check_supervise_init(reference.SuperviseKaimingWeights, "kaiming", seed=8,
                                                    sizes=(40, 300, 3))
