"""Cheating answers to tutorial 1's exercises, each refused by the self-check with its message.

The corpus (issue 11): a refused routine reached plainly, by ``getattr`` with a built name, through
a wrapper; the course's expected values read from the shipped file (``open``, ``pathlib``,
``importlib.resources``, ``os.open``) or asked from :func:`~dlnn_helpers.checks._expected.expected`
(directly or through ``importlib`` with a built name); the instructor's package, which the student
release does not hold; and the routines of the student package that come closest to an answer.
Only ``linear_regression`` refuses a routine (``lstsq``); every check refuses the course's answers.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import json
import math
import os
import sys
import warnings

import numpy as np
import pytest
import torch

import dlnn_helpers as dlnn
from dlnn_helpers.checks import (
    CheckFailure,
    ShortcutUsed,
    _expected,
    check_initializer,
    check_linear_regression,
    check_net_rsm,
    check_net_svd,
)

SHIPPED = _expected.SHIPPED / "deep_linear.json"
LSTSQ = "linear_regression uses {}: the exercise is to solve the normal equations yourself"
READS = ("{} reads the course's expected answers (the data the self-check compares with): the "
         "exercise is to compute them yourself")
RSM_KEY = _expected.settings_key("check_net_rsm", {"seed": 2021, "shape": (7, 17)})
LR_KEY = _expected.settings_key("check_linear_regression", {"seed": 2021, "shapes": (3, 4, 37)})


# ------------------------------------------------------------------------- lstsq, however reached


def lr_lstsq(X, Y):
    return np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T


def lr_lstsq_getattr(X, Y):
    solver = getattr(getattr(np, "lin" + "alg"), "lst" + "sq")
    return solver(X.T, Y.T, rcond=None)[0].T


def lr_torch_lstsq(X, Y):
    solution = getattr(torch.linalg, "".join(["l", "st", "sq"]))(torch.from_numpy(X.T),
                                                                 torch.from_numpy(Y.T)).solution
    return solution.T.numpy()


def _solve(a, b):  # a helper of the notebook's own that hides the call
    return np.linalg.lstsq(a, b, rcond=None)[0]


def lr_wrapped(X, Y):
    return _solve(X.T, Y.T).T


class _Solver:
    """A callable object whose method calls the refused routine."""

    def __call__(self, X, Y):
        partial = functools.partial(np.linalg.lstsq, rcond=None)
        return partial(X.T, Y.T)[0].T


_ALIAS = np.linalg.lstsq  # bound when the notebook cell runs, before the check watches lstsq
_TORCH_ALIAS = torch.linalg.lstsq


def lr_alias(X, Y):
    return _ALIAS(X.T, Y.T, rcond=None)[0].T


def lr_private_module(X, Y):
    return np.linalg._linalg.lstsq(X.T, Y.T, rcond=None)[0].T


def lr_torch_alias(X, Y):
    return _TORCH_ALIAS(torch.from_numpy(X.T), torch.from_numpy(Y.T)).solution.T.numpy()


def lr_pinv(X, Y):
    return Y @ np.linalg.pinv(X)


def lr_torch_pinv(X, Y):
    return (torch.from_numpy(Y) @ torch.linalg.pinv(torch.from_numpy(X))).numpy()


_PINV_ALIAS = np.linalg.pinv  # bound before the check watches pinv


def lr_pinv_alias(X, Y):
    return Y @ _PINV_ALIAS(X)


LSTSQ_CORPUS = [
    (lr_lstsq, "numpy.linalg.lstsq"),
    (lr_lstsq_getattr, "numpy.linalg.lstsq"),
    (lr_torch_lstsq, "torch.linalg.lstsq"),
    (lr_wrapped, "numpy.linalg.lstsq"),
    (_Solver(), "numpy.linalg.lstsq"),
    (lr_pinv, "numpy.linalg.pinv"),
    (lr_torch_pinv, "torch.linalg.pinv"),
    (lr_pinv_alias, "numpy.linalg.pinv"),
]

@pytest.mark.parametrize(("answer", "routine"), LSTSQ_CORPUS,
                         ids=["plain", "getattr", "torch", "wrapper", "callable-object", "pinv",
                              "torch-pinv", "pinv-alias"])
def test_a_least_squares_solver_is_refused(answer, routine):
    with pytest.raises(ShortcutUsed) as info:
        check_linear_regression(answer)
    assert str(info.value) == LSTSQ.format(routine)


@pytest.mark.parametrize("answer", [lr_alias, lr_private_module, lr_torch_alias],
                         ids=["alias", "numpy-private-module", "torch-alias"])
def test_a_least_squares_solver_bound_before_the_check_is_refused(answer):
    try:
        check_linear_regression(answer)
    except ShortcutUsed as exc:
        assert "lstsq: the exercise is to solve the normal equations yourself" in str(exc)
    else:
        raise AssertionError(f"{answer.__name__} passed")


def test_the_refusal_is_said_by_the_self_check_and_the_hidden_tests():
    for settings in ({}, {"seed": 6, "shapes": (5, 5, 50)}):
        with pytest.raises(ShortcutUsed, match="uses numpy.linalg.lstsq"):
            check_linear_regression(lr_lstsq, **settings)


# ------------------------------------------------------------- the course's expected values


def _decoded(key):
    with open(SHIPPED, encoding="utf-8") as stream:
        return _expected.decode(json.load(stream)[key])


def rsm_from_shipped_file(h):
    return torch.tensor(_decoded(RSM_KEY)["correct"], dtype=torch.float32)


def rsm_pathlib(h):
    table = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return torch.tensor(_expected.decode(table[RSM_KEY])["correct"], dtype=torch.float32)


def rsm_resources(h):
    files = importlib.resources.files("dlnn_helpers.checks")
    table = json.loads(files.joinpath("expected", "deep_linear.json").read_text(encoding="utf-8"))
    return torch.tensor(_expected.decode(table[RSM_KEY])["correct"], dtype=torch.float32)


def rsm_os_open(h):
    descriptor = os.open(str(SHIPPED), os.O_RDONLY)
    try:
        os.read(descriptor, 10)
    finally:
        os.close(descriptor)
    return h @ h.T


def rsm_asks_expected(h):
    values = _expected.expected("check_net_rsm", seed=2021, shape=tuple(h.shape))
    return torch.tensor(values["correct"], dtype=torch.float32)


def rsm_asks_expected_by_built_name(h):
    module = importlib.import_module("dlnn_helpers.checks._" + "exp" + "ected")
    values = getattr(module, "exp" + "ected")("check_net_rsm", seed=2021, shape=tuple(h.shape))
    return torch.tensor(values["correct"], dtype=torch.float32)


def svd_reads_the_file_then_computes(model, in_dim):
    SHIPPED.read_bytes()  # only a look: it is refused all the same
    w_tot = torch.eye(in_dim)
    for weight in model.parameters():
        w_tot = weight.detach() @ w_tot
    u, s, vh = torch.linalg.svd(w_tot, full_matrices=False)
    return u, s, vh.mT


def svd_asks_expected(model, in_dim):
    s = torch.tensor(_expected.expected("check_net_svd", seed=2021, dims=(8, 30, 100))["correct"],
                     dtype=torch.float32)
    return torch.zeros(100, 8), s, torch.zeros(8, 8)


def lr_from_shipped_file(X, Y):
    return _decoded(LR_KEY)["correct"]


def lr_asks_expected(X, Y):
    return _expected.expected("check_linear_regression", seed=2021, shapes=(3, 4, 37))["correct"]


def init_reads_the_file(model, gamma=1e-12):
    SHIPPED.read_text(encoding="utf-8")
    for weight in model.parameters():
        torch.nn.init.normal_(weight, 0.0, gamma / math.sqrt(sum(weight.shape)))


EXPECTED_CORPUS = [
    (check_net_rsm, rsm_from_shipped_file, "ex_net_rsm"),
    (check_net_rsm, rsm_pathlib, "ex_net_rsm"),
    (check_net_rsm, rsm_resources, "ex_net_rsm"),
    (check_net_rsm, rsm_os_open, "ex_net_rsm"),
    (check_net_rsm, rsm_asks_expected, "ex_net_rsm"),
    (check_net_rsm, rsm_asks_expected_by_built_name, "ex_net_rsm"),
    (check_net_svd, svd_reads_the_file_then_computes, "ex_net_svd"),
    (check_net_svd, svd_asks_expected, "ex_net_svd"),
    (check_linear_regression, lr_from_shipped_file, "linear_regression"),
    (check_linear_regression, lr_asks_expected, "linear_regression"),
    (check_initializer, init_reads_the_file, "ex_initializer_"),
]


@pytest.mark.parametrize(("check", "answer", "exercise"), EXPECTED_CORPUS,
                         ids=[a.__name__ for _, a, _ in EXPECTED_CORPUS])
def test_the_course_expected_values_are_refused(check, answer, exercise):
    with pytest.raises(ShortcutUsed) as info:
        check(answer)
    assert str(info.value) == READS.format(exercise)


def test_the_shipped_values_only_cover_the_default_settings():
    """A table read before the check runs escapes the self-check's window, but not the hidden tests."""
    table = _decoded(RSM_KEY)["correct"]

    def replays(h):
        return torch.tensor(table, dtype=torch.float32)

    assert "is correct" in check_net_rsm(replays)  # the self-check's own data: fooled
    with pytest.raises(CheckFailure, match=r"The RSM has shape \(7, 7\); it should have shape \(12, 12\)"):
        check_net_rsm(replays, seed=4, shape=(12, 12))


# -------------------------------------------------------------- the packages a student could use


def test_the_instructor_package_is_not_in_the_release(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "dlnn_reference"] + ["dlnn_reference"]:
        monkeypatch.setitem(sys.modules, name, None)  # as in the student release

    def from_the_reference(h):
        from dlnn_reference.deep_linear import net_rsm

        return net_rsm(h)

    with pytest.raises(CheckFailure, match="ex_net_rsm raised ModuleNotFoundError"):
        check_net_rsm(from_the_reference)
    with _expected.shipped_only():  # and the self-check still works without it
        assert "is correct" in check_net_rsm(lambda h: h @ h.T)


@pytest.mark.parametrize("name", ["initializer_", "net_svd", "net_rsm", "linear_regression",
                                  "total_weight"])
def test_the_old_answers_are_gone_from_the_student_package(name):
    for module in (dlnn, dlnn.linear_nets, dlnn.widgets, dlnn.deep_linear_plots, dlnn.tree_data):
        assert not hasattr(module, name), (module.__name__, name)


def test_the_stand_in_initialisation_is_not_an_answer():
    with pytest.raises(CheckFailure, match=r"should have σ = γ / sqrt\(n_in \+ n_out\)"):
        check_initializer(dlnn.default_init_)


def test_the_package_trains_nothing_itself_its_widgets_run_the_notebooks_loop():
    """No loop of the package computes W_tot or an RSM: the widgets call what the notebook gives."""
    assert not hasattr(dlnn, "train") and not hasattr(dlnn.linear_nets, "train")
    calls = []

    def initializer(model, gamma):
        calls.append(("initializer", gamma))

    def train(model, inputs, targets, n_epochs, lr, illusory_i=0):
        calls.append(("train", n_epochs, lr, illusory_i))
        return dlnn.TrainingRecord.empty(n_epochs, 3, inputs.shape[0])

    record = dlnn.train_deep_linear(torch.eye(3), torch.zeros(3, 5), train=train,
                                    initializer=initializer, n_epochs=4, lr=2.0, gamma=0.5)
    assert calls == [("initializer", 0.5), ("train", 4, 2.0, 0)]
    assert np.isnan(record.modes).all() and np.isnan(record.rsms).all()


# ------------------------------------- the notebook's stand-ins for ex_net_svd and ex_net_rsm


_MULTI_DOT = torch.linalg.multi_dot  # bound before the check watches it
_NP_MULTI_DOT = np.linalg.multi_dot


def _svd_of(product):
    u, s, vh = torch.linalg.svd(product, full_matrices=False)
    return u, s, vh.mT


def _weights(model):
    return [weight.detach() for weight in model.parameters()][::-1]


SVD_SHORTCUTS = [
    (lambda model, in_dim: _svd_of(torch.linalg.multi_dot(_weights(model))), "torch.linalg.multi_dot"),
    (lambda model, in_dim: _svd_of(_MULTI_DOT(_weights(model))), "torch.linalg.multi_dot"),
    (lambda model, in_dim: _svd_of(getattr(torch, "chain_" + "matmul")(*_weights(model))),
     "torch.chain_matmul"),
    (lambda model, in_dim: _svd_of(torch.from_numpy(_NP_MULTI_DOT([w.numpy() for w in _weights(model)]))),
     "numpy.linalg.multi_dot"),
]


@pytest.mark.parametrize(("answer", "routine"), SVD_SHORTCUTS,
                         ids=["multi_dot", "alias", "chain_matmul", "numpy-alias"])
def test_a_product_of_all_weights_in_one_call_is_refused(answer, routine):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.chain_matmul is deprecated
        with pytest.raises(ShortcutUsed) as info:
            check_net_svd(answer)
    assert str(info.value) == (f"ex_net_svd uses {routine}: the exercise is to multiply the weights "
                               "into W_tot yourself, one layer at a time")


@pytest.mark.parametrize("answer", [lambda h: torch.inner(h, h), lambda h: h.inner(h),
                                    lambda h: getattr(torch, "in" + "ner")(h, h)],
                         ids=["torch.inner", "method", "getattr"])
def test_torch_inner_is_refused_however_reached(answer):
    with pytest.raises(ShortcutUsed, match="ex_net_rsm uses torch.inner: the exercise is to compute "
                                           "the dot products yourself"):
        check_net_rsm(answer)


def test_the_grader_finds_the_new_refused_routines_in_the_text_and_not_in_ordinary_names():
    from autograder.grading.shortcuts import find

    assert find("W = Y @ np.linalg.pinv(X)", ("lstsq",)) == [("lstsq", "np.linalg.pinv")]
    assert find("pinv = np.linalg.inv(X @ X.T)\nW = Y @ X.T @ pinv", ("lstsq",)) == []
    assert find("w = torch.linalg.multi_dot(ws)", ("multi_dot",)) == [
        ("multi_dot", "torch.linalg.multi_dot")]
    assert find("return torch.inner(h, h)", ("torch.inner",)) == [("torch.inner", "torch.inner")]
    assert find("inner = h @ h.T\nreturn inner", ("torch.inner",)) == []
