"""The T6 checks accept vectorised and loop-based answers and name the usual mistakes."""

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
from dlnn_helpers.checks._core import NotImplementedYet, self_check
from dlnn_helpers.checks.relu_features import (
    check_feature_matrix,
    check_first_layer_gradients,
    check_principal_features,
    check_second_layer_gradients,
)
from dlnn_reference import relu_features as ref

# ------------------------------------------------------------------------- first-layer gradients


def first_loop_item(model, x):
    """The source's way: a loop over points reading every element with .item(), into tensors."""
    width = model[0].out_features
    gw, gb = torch.zeros(len(x), width), torch.zeros(len(x), width)
    for k in range(len(x)):
        model.zero_grad()
        model(x[k : k + 1]).sum().backward()
        for i in range(width):
            gw[k, i] = model[0].weight.grad[i, 0].item()
            gb[k, i] = model[0].bias.grad[i].item()
    return gw, gb


def first_loop_numpy(model, x):
    """The same loop into NumPy arrays: float64 arrays where float32 tensors are documented."""
    width = model[0].out_features
    gw, gb = np.zeros((len(x), width)), np.zeros((len(x), width))
    for k in range(len(x)):
        model.zero_grad()
        model(x[k : k + 1]).sum().backward()
        gw[k] = model[0].weight.grad[:, 0].numpy()
        gb[k] = model[0].bias.grad.numpy()
    return gw, gb


def first_analytic(model, x):
    w, b = model[0].weight.detach()[:, 0], model[0].bias.detach()
    v = model[2].weight.detach()[0]
    active = (x * w + b > 0).float()
    return (v * active * x, v * active)


def first_jacobian_3d(model, x):
    grads = ref.gradient_features(model, x)
    return grads["0.weight"], grads["0.bias"]  # (n, width, 1): outside the documented (n, width)


def first_float64(model, x):
    gw, gb = first_analytic(model.double(), x.double())
    return gw, gb


def first_no_zero_grad(model, x):
    gw, gb = [], []
    for k in range(len(x)):
        model(x[k : k + 1]).sum().backward()
        gw.append(model[0].weight.grad[:, 0].clone())
        gb.append(model[0].bias.grad.clone())
    return torch.stack(gw), torch.stack(gb)


def first_summed(model, x):
    model.zero_grad()
    model(x).sum().backward()
    n = len(x)
    return model[0].weight.grad[:, 0].expand(n, -1).clone(), model[0].bias.grad.expand(n, -1).clone()


def first_no_mask(model, x):
    v = model[2].weight.detach()[0]
    return v * x, v.expand(len(x), -1).clone()


def first_no_x(model, x):
    gw, gb = first_analytic(model, x)
    return gb, gb


def first_swapped(model, x):
    gw, gb = first_analytic(model, x)
    return gb, gw


def first_transposed(model, x):
    gw, gb = first_analytic(model, x)
    return gw.T, gb.T


@pytest.mark.parametrize("answer", [ref.first_layer_gradients, first_loop_item, first_analytic])
def test_first_layer_gradients_accepts_correct_answers(answer):
    assert "gives ∂y/∂w₁ and ∂y/∂b₁" in check_first_layer_gradients(answer)
    assert "width-13" in check_first_layer_gradients(answer, seed=11, width=13, n_points=57)


@pytest.mark.parametrize(
    "answer, message",
    [
        (first_no_zero_grad, "the gradients accumulate from point to point"),
        (first_summed, "summed over all points"),
        (first_no_mask, "grad_w is wrong: the ReLU's derivative 1[w x + b > 0] is missing"),
        (first_no_x, "grad_w is wrong: the factor x is missing"),
        (first_swapped, "returned (grad_b, grad_w)"),
        (first_transposed, "grad_w has shape (8, 40); it should have shape (40, 8) = (n, width): "
                           "one row per point, one column per hidden unit: it looks transposed"),
        (first_jacobian_3d, "grad_w has shape (40, 8, 1); it should have shape (40, 8) = (n, width): "
                            "one row per point, one column per hidden unit: it has an extra axis "
                            "of size 1"),
        (first_loop_numpy, "grad_w is a np.ndarray of dtype float64 and shape (40, 8); it should be "
                           "a torch.Tensor of dtype torch.float32 and shape (40, 8)"),
        (first_float64, "grad_w has dtype torch.float64; it should be torch.float32"),
    ],
)
def test_first_layer_gradients_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure, match=re.escape(message)):
        check_first_layer_gradients(answer)


def test_first_layer_gradients_not_implemented_and_quiet(capsys):
    def todo(model, x):
        raise NotImplementedError

    with pytest.raises(NotImplementedYet, match="not implemented yet"):
        check_first_layer_gradients(todo)
    assert self_check(check_first_layer_gradients, first_loop_item)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------ feature matrix


def fm_loop(model, x):
    rows = []
    for k in range(len(x)):
        model.zero_grad()
        model(x[k : k + 1]).squeeze().backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    return torch.stack(rows)


def fm_jacrev(model, x):
    params = dict(model.named_parameters())
    jac = torch.func.jacrev(lambda p: torch.func.functional_call(model, p, (x,))[:, 0])(params)
    return torch.cat([j.reshape(len(x), -1) for j in jac.values()], dim=1).detach()


def fm_weights_first(model, x):
    grads = list(ref.gradient_features(model, x).values())
    n = len(x)
    return torch.cat([g.reshape(n, -1) for g in grads[0::2] + grads[1::2]], dim=1)


def fm_transposed(model, x):
    return ref.feature_matrix(model, x).T


def fm_first_layer_only(model, x):
    return ref.feature_matrix(model, x)[:, : 2 * model[0].out_features]


def fm_no_zero_grad(model, x):
    rows = []
    for k in range(len(x)):
        model(x[k : k + 1]).squeeze().backward()
        rows.append(torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()]))
    return torch.stack(rows)


def fm_column_major(model, x):
    grads = ref.gradient_features(model, x)
    return torch.cat([g.transpose(1, 2).reshape(len(x), -1) if g.dim() == 3 else g.reshape(len(x), -1)
                      for g in grads.values()], dim=1)


@pytest.mark.parametrize("answer", [ref.feature_matrix, fm_loop, fm_jacrev])
@pytest.mark.parametrize("depth", [1, 2])
def test_feature_matrix_accepts_correct_answers(answer, depth):
    assert "feature matrix" in check_feature_matrix(answer, depth=depth)


@pytest.mark.parametrize(
    "answer, message, depth",
    [
        (fm_weights_first, "all weights first, then all biases", 1),
        (fm_transposed, "it looks transposed", 1),
        (fm_first_layer_only, "the first layer's parameters only", 1),
        (fm_no_zero_grad, "the gradients accumulate", 1),
        (fm_column_major, "flattened column by column", 2),
    ],
)
def test_feature_matrix_rejects_wrong_answers(answer, message, depth):
    with pytest.raises(CheckFailure, match=re.escape(message)):
        check_feature_matrix(answer, depth=depth)


# ------------------------------------------------------------------------- principal features


def pf_numpy(features):
    u, s, _ = np.linalg.svd(features.numpy(), full_matrices=False)
    return s, u @ np.diag(s)


def pf_full_sliced(features):
    u, s, _ = torch.linalg.svd(features)  # full U, then only the first r columns: the same answer
    return s, u[:, : len(s)] * s


def pf_full_u(features):
    u, s, _ = torch.linalg.svd(features)
    return s, u


def pf_f_times_v(features):
    _, s, vh = torch.linalg.svd(features, full_matrices=False)
    return s, features @ vh.T


def pf_flipped_signs(features):
    s, p = ref.principal_features(features)
    return s, -p


@pytest.mark.parametrize("answer", [ref.principal_features, pf_full_sliced, pf_f_times_v,
                                    pf_flipped_signs])
def test_principal_features_accepts_correct_answers(answer):
    assert "singular values" in check_principal_features(answer)
    assert "singular values" in check_principal_features(answer, seed=31, n_points=12, width=8)


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda f: (torch.linalg.svd(f, full_matrices=False)[1],
                    torch.linalg.svd(f, full_matrices=False)[0]), "that is U alone"),
        (lambda f: (torch.linalg.svd(f)[1] ** 2, ref.principal_features(f)[1]), "squares of the singular"),
        (lambda f: (ref.principal_features(f)[0].flip(0), ref.principal_features(f)[1]), "increasing order"),
        (lambda f: (ref.principal_features(f)[0], f.clone()), "equals the feature matrix itself"),
        (lambda f: (ref.principal_features(f)[0],
                    torch.linalg.svd(f, full_matrices=False)[2].T * ref.principal_features(f)[0]),
         "probably V diag(s)"),
        (lambda f: (ref.principal_features(f)[0],
                    ref.principal_features(f)[1] * ref.principal_features(f)[0]),
         "scaled by s[k]²"),
        (pf_numpy, "s is a np.ndarray of dtype float64 and shape (16,); it should be a torch.Tensor "
                   "of dtype torch.float64 and shape (16,)"),
        (pf_full_u, "principal has shape (30, 30); it should have shape (30, 16) = (n, r): one row "
                    "per point, one column per singular value: that is the full U of "
                    "full_matrices=True"),
        (lambda f: (ref.principal_features(f)[0].float(), ref.principal_features(f)[1].float()),
         "s has dtype torch.float32; it should be torch.float64"),
    ],
)
def test_principal_features_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure, match=re.escape(message)):
        check_principal_features(answer)


# ------------------------------------------------------------------------ second-layer gradients


def second_loop(model, x):
    gw, gb = [], []
    for k in range(len(x)):
        model.zero_grad()
        model(x[k : k + 1]).squeeze().backward()
        gw.append(model[2].weight.grad.clone())
        gb.append(model[2].bias.grad.clone())
    return torch.stack(gw), torch.stack(gb)


def second_analytic(model, x):
    with torch.no_grad():
        h1 = torch.relu(model[0](x))
        active = (model[2](h1) > 0).float()
        v = model[4].weight[0]
        gb = v * active
        return gb[:, :, None] * h1[:, None, :], gb


def second_numpy(model, x):
    gw, gb = second_analytic(model, x)
    return gw.numpy(), gb.numpy()


def second_flat(model, x):
    gw, gb = second_analytic(model, x)
    return gw.reshape(len(x), -1), gb


def second_torch_func(model, x):
    grads = ref.gradient_features(model, x)
    return grads["2.weight"], grads["2.bias"]


def second_transposed(model, x):
    gw, gb = second_analytic(model, x)
    return gw.transpose(1, 2), gb


def second_first_layer(model, x):
    grads = ref.gradient_features(model, x)
    return second_analytic(model, x)[0], grads["0.bias"]


def second_no_zero_grad(model, x):
    gw, gb = [], []
    for k in range(len(x)):
        model(x[k : k + 1]).squeeze().backward()
        gw.append(model[2].weight.grad.clone())
        gb.append(model[2].bias.grad.clone())
    return torch.stack(gw), torch.stack(gb)


def second_no_h1(model, x):
    gw, gb = second_analytic(model, x)
    return gb[:, :, None].expand_as(gw).clone(), gb


@pytest.mark.parametrize("answer", [second_loop, second_analytic, second_torch_func])
def test_second_layer_gradients_accepts_correct_answers(answer):
    assert "two-hidden-layer" in check_second_layer_gradients(answer)
    assert "width 7" in check_second_layer_gradients(answer, seed=41, width=7, n_points=33)


@pytest.mark.parametrize(
    "answer, message",
    [
        (second_transposed, "the last two axes are swapped"),
        (second_first_layer, "first layer's bias gradients"),
        (second_no_zero_grad, "the gradients accumulate"),
        (second_no_h1, "the factor h1"),
        (second_flat, "grad_W2 has shape (30, 25); it should have shape (30, 5, 5) = (n, m, m): "
                      "point k, output unit i, input unit j of the second layer: each point's "
                      "gradient is flattened"),
        (second_numpy, "grad_W2 is a np.ndarray of dtype float32 and shape (30, 5, 5); it should be "
                       "a torch.Tensor of dtype torch.float32 and shape (30, 5, 5)"),
    ],
)
def test_second_layer_gradients_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure, match=re.escape(message)):
        check_second_layer_gradients(answer)


def test_a_returned_subclass_is_not_trusted():
    class Liar(torch.Tensor):
        pass

    def liar(model, x):
        gw, gb = ref.first_layer_gradients(model, x)
        return gw.as_subclass(Liar), gb

    with pytest.raises(CheckFailure, match="should be a torch.Tensor"):
        check_first_layer_gradients(liar)


# ================================================================================================
# Cheating answers (were test_cheating_relu_features.py):
# T6: answers that take a shortcut are refused by the self-check, with the message asserted.
# ================================================================================================

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
