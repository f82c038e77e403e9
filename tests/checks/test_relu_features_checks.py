"""The T6 checks accept vectorised and loop-based answers and name the usual mistakes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dlnn_helpers.checks._core import CheckFailure, NotImplementedYet, self_check
from dlnn_helpers.checks.relu_features import (
    check_feature_matrix,
    check_first_layer_gradients,
    check_principal_features,
    check_second_layer_gradients,
)
from dlnn_reference import relu_features as rf

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
    grads = rf.gradient_features(model, x)
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


@pytest.mark.parametrize("answer", [rf.first_layer_gradients, first_loop_item, first_analytic])
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
    grads = list(rf.gradient_features(model, x).values())
    n = len(x)
    return torch.cat([g.reshape(n, -1) for g in grads[0::2] + grads[1::2]], dim=1)


def fm_transposed(model, x):
    return rf.feature_matrix(model, x).T


def fm_first_layer_only(model, x):
    return rf.feature_matrix(model, x)[:, : 2 * model[0].out_features]


def fm_no_zero_grad(model, x):
    rows = []
    for k in range(len(x)):
        model(x[k : k + 1]).squeeze().backward()
        rows.append(torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()]))
    return torch.stack(rows)


def fm_column_major(model, x):
    grads = rf.gradient_features(model, x)
    return torch.cat([g.transpose(1, 2).reshape(len(x), -1) if g.dim() == 3 else g.reshape(len(x), -1)
                      for g in grads.values()], dim=1)


@pytest.mark.parametrize("answer", [rf.feature_matrix, fm_loop, fm_jacrev])
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
    s, p = rf.principal_features(features)
    return s, -p


@pytest.mark.parametrize("answer", [rf.principal_features, pf_full_sliced, pf_f_times_v,
                                    pf_flipped_signs])
def test_principal_features_accepts_correct_answers(answer):
    assert "singular values" in check_principal_features(answer)
    assert "singular values" in check_principal_features(answer, seed=31, n_points=12, width=8)


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda f: (torch.linalg.svd(f, full_matrices=False)[1],
                    torch.linalg.svd(f, full_matrices=False)[0]), "that is U alone"),
        (lambda f: (torch.linalg.svd(f)[1] ** 2, rf.principal_features(f)[1]), "squares of the singular"),
        (lambda f: (rf.principal_features(f)[0].flip(0), rf.principal_features(f)[1]), "increasing order"),
        (lambda f: (rf.principal_features(f)[0], f.clone()), "equals the feature matrix itself"),
        (lambda f: (rf.principal_features(f)[0],
                    torch.linalg.svd(f, full_matrices=False)[2].T * rf.principal_features(f)[0]),
         "probably V diag(s)"),
        (lambda f: (rf.principal_features(f)[0], rf.principal_features(f)[1] * rf.principal_features(f)[0]),
         "scaled by s[k]²"),
        (pf_numpy, "s is a np.ndarray of dtype float64 and shape (16,); it should be a torch.Tensor "
                   "of dtype torch.float64 and shape (16,)"),
        (pf_full_u, "principal has shape (30, 30); it should have shape (30, 16) = (n, r): one row "
                    "per point, one column per singular value: that is the full U of "
                    "full_matrices=True"),
        (lambda f: (rf.principal_features(f)[0].float(), rf.principal_features(f)[1].float()),
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
    grads = rf.gradient_features(model, x)
    return grads["2.weight"], grads["2.bias"]


def second_transposed(model, x):
    gw, gb = second_analytic(model, x)
    return gw.transpose(1, 2), gb


def second_first_layer(model, x):
    grads = rf.gradient_features(model, x)
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
        gw, gb = rf.first_layer_gradients(model, x)
        return gw.as_subclass(Liar), gb

    with pytest.raises(CheckFailure, match="should be a torch.Tensor"):
        check_first_layer_gradients(liar)
