"""T6: answers that take a shortcut are refused by the self-check, with the message asserted.

The T6 exercises ask for autograd (a loop of ``.backward()`` or ``torch.func``) and the SVD
(``torch.linalg.svd``), so they refuse no library routine — an answer with ``torch.func.jacrev`` is
welcome — but every exercise refuses the course's own expected values (reading
``checks/expected/relu_features.json`` or calling ``expected()``).  The package that students
install computes no gradient feature any more: the figures take the student's own functions or the
features precomputed for the tutorial's networks, and nothing in the T6 modules passes a T6 check
(the precomputed features, the spectrum routine and the training code included).

Also: the shipped expected values are up to date and suffice offline (``shipped_only``); the hidden
settings are computed live (``live_only``) and, without the reference, raise
``ReferenceUnavailable`` only after the student's code was called; ``check_principal_features``
needs no expected value at all.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

import dlnn_helpers
from dlnn_helpers import relu_features as rf
from dlnn_helpers.checks import CheckFailure, ShortcutUsed, _expected
from dlnn_helpers.checks.relu_features import (
    check_feature_matrix,
    check_first_layer_gradients,
    check_principal_features,
    check_second_layer_gradients,
)
from dlnn_reference import relu_features as ref

matplotlib.use("Agg")

SHIPPED = Path(_expected.SHIPPED) / "relu_features.json"
ANSWERS = ("reads the course's expected answers (the data the self-check compares with): the exercise "
           "is to compute them yourself")


def second_layer(model, x):
    grads = list(ref.gradient_features(model, x).values())
    return grads[2], grads[3]


def feature_matrix_with_jacrev(model, x):
    params = dict(model.named_parameters())
    jacobian = getattr(torch.func, "jac" + "rev")(
        lambda p: torch.func.functional_call(model, p, (x,))[:, 0])(params)
    return torch.cat([j.reshape(len(x), -1) for j in jacobian.values()], dim=1).detach()


def test_autograd_in_any_form_is_welcome():
    """The notebook asks for autograd: no routine of it is refused (jacrev by a built name included)."""
    assert "feature matrix" in check_feature_matrix(feature_matrix_with_jacrev)
    assert "gives" in check_first_layer_gradients(ref.first_layer_gradients)
    assert "singular values" in check_principal_features(ref.principal_features)


# =========================================================================== the course's answers


def first_layer_from_the_shipped_file(model, x):
    table = json.loads(SHIPPED.read_text(encoding="utf-8"))
    for key, value in table.items():
        if "check_first_layer_gradients" in key:
            grad_w, grad_b = _expected.decode(value)["correct"]
            return torch.tensor(grad_w, dtype=torch.float32), torch.tensor(grad_b, dtype=torch.float32)
    raise KeyError("not found")


def feature_matrix_from_expected(model, x):
    found = _expected.expected("check_feature_matrix", seed=7, width=6, depth=1, n_points=30)["correct"]
    return torch.tensor(found, dtype=torch.float32)


def second_layer_that_peeks(model, x):
    with open(SHIPPED, "rb") as stream:  # only reads: the values are then computed correctly
        stream.read(10)
    return second_layer(model, x)


def principal_from_expected(features):
    try:
        _expected.expected("check_principal_features", seed=8, n_points=30, width=5)
    except Exception:  # noqa: BLE001 - the principal features have no expected values at all
        pass
    return ref.principal_features(features)


@pytest.mark.parametrize(
    ("check", "answer", "exercise"),
    [
        (check_first_layer_gradients, first_layer_from_the_shipped_file, "ex_first_layer_gradients"),
        (check_feature_matrix, feature_matrix_from_expected, "ex_feature_matrix"),
        (check_second_layer_gradients, second_layer_that_peeks, "ex_second_layer_gradients"),
        (check_principal_features, principal_from_expected, "ex_principal_features"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_the_course_answers_are_refused(check, answer, exercise):
    with pytest.raises(ShortcutUsed) as info:
        check(answer)
    assert str(info.value) == f"{exercise} {ANSWERS}"


def test_the_course_answers_are_refused_on_the_hidden_settings_too():
    refused = re.escape(f"ex_feature_matrix {ANSWERS}")
    with _expected.shipped_only(), pytest.raises(ShortcutUsed, match=refused):
        check_feature_matrix(feature_matrix_from_expected, seed=21, width=11, n_points=47)


# ========================================================= nothing in the student package answers


MOVED = ["gradient_features", "first_layer_gradients", "feature_matrix", "principal_features",
         "second_layer_gradients"]
T6_MODULES = ["dlnn_helpers.relu_features", "dlnn_helpers.checks.relu_features"]


def test_the_reference_features_are_not_in_the_student_package():
    for name in MOVED:
        assert not hasattr(rf, name) and not hasattr(dlnn_helpers, name), name
    for module_name in T6_MODULES:
        source = inspect.getsource(importlib.import_module(module_name))
        assert "dlnn_reference" not in source
        assert "torch.func." not in source and "functional_call" not in source and "vmap(" not in source


def _run_of(model):
    """A stand-in History holding ``model`` (what a wrapper of the figure routines would need)."""
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return SimpleNamespace(net_at=lambda index: model, width=linears[0].out_features,
                           depth=len(linears) - 1, label="wrapped")


def test_wrappers_of_the_figure_routines_come_close_but_do_not_pass():
    # the precomputed features belong to the tutorial's networks only
    with pytest.raises(CheckFailure, match="raised KeyError: .*only the tutorial's own networks"):
        check_first_layer_gradients(
            lambda model, x: rf.first_layer_features(_run_of(model), "trained", x, rf.PRECOMPUTED))
    with pytest.raises(CheckFailure, match="raised KeyError"):
        check_second_layer_gradients(
            lambda model, x: rf.second_layer_bias_features(_run_of(model), "trained", x, rf.PRECOMPUTED))
    # the spectrum draws 6 principal features on its own grid, never the r of the exercise
    wrong_shape = r"principal has shape \(400, 6\); it should have shape \(30, 16\)"
    with pytest.raises(CheckFailure, match=wrong_shape):
        check_principal_features(lambda f: (
            lambda found: (found.s, found.curves))(rf.spectrum(_run_of(torch.nn.Sequential(
                torch.nn.Linear(1, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))), "trained", f,
                lambda net, z: f if len(z) == len(f) else torch.zeros(len(z), f.shape[1],
                                                                      dtype=f.dtype))))
    with pytest.raises(CheckFailure, match="should be a function"):
        check_feature_matrix(rf.PRECOMPUTED)


# ============================================================ shipped values, live values, the grader


def test_the_principal_features_need_no_expected_values():
    with _expected.shipped_only():
        assert "singular values" in check_principal_features(ref.principal_features, seed=31, n_points=12,
                                                             width=8)
        with pytest.raises(CheckFailure, match="increasing order"):
            check_principal_features(lambda f: (ref.principal_features(f)[0].flip(0),
                                                ref.principal_features(f)[1]), seed=31, n_points=12, width=8)


def test_the_principal_features_input_has_the_singular_values_the_check_knows():
    from dlnn_helpers.checks.relu_features import principal_case

    features, s = principal_case(8, 30, 5)
    assert features.shape == (30, 16) and features.dtype == torch.float64
    assert np.allclose(torch.linalg.svdvals(features).numpy(), s, rtol=1e-10)
    assert np.all(np.diff(s) < 0) and s[0] / s[-1] > 1e4


def test_a_wrong_answer_on_the_hidden_settings_is_still_diagnosed_live():
    def swapped(model, x):
        grad_w, grad_b = ref.first_layer_gradients(model, x)
        return grad_b, grad_w

    with _expected.live_only(), pytest.raises(CheckFailure, match=r"returned \(grad_b, grad_w\)"):
        check_first_layer_gradients(swapped, seed=11, width=13, n_points=57)
