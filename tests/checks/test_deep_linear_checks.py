"""The T1 checks accept every correct answer and reject realistic wrong ones with a precise message.

For each graded exercise: the reference, at least two alternative correct answers, and at least four
wrong answers seen in practice, each with the message it must produce.  The answers here are the
tests' own; the expected values come from the instructor's ``dlnn_reference`` (shipped for the
default settings, live for the hidden ones), and both paths are tested at the end.  The cheating
answers (refused routines, the course's expected data) are in the last section.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import inspect
import json
import math
import os
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import dlnn_helpers as dlnn
import dlnn_reference
from dlnn_helpers.checks import (
    CheckFailure,
    NotImplementedYet,
    ReferenceUnavailable,
    ShortcutUsed,
    _expected,
    check_initializer,
    check_linear_regression,
    check_net_rsm,
    check_net_svd,
    self_check,
)
from dlnn_reference import shipped as shipped_values

# ---------------------------------------------------------------------------------------- answers


def init_reference(model, gamma=1e-12):
    for weight in model.parameters():
        n_out, n_in = weight.shape
        nn.init.normal_(weight, mean=0.0, std=gamma / math.sqrt(n_in + n_out))


def init_tensor_method(model, gamma=1e-12):
    with torch.no_grad():
        for w in model.parameters():
            w.normal_(0.0, gamma / math.sqrt(sum(w.shape)))


def init_copy_randn(model, gamma=1e-12):
    with torch.no_grad():
        for w in model.parameters():
            n_out, n_in = w.shape
            w.copy_(torch.randn(n_out, n_in) * gamma * (n_in + n_out) ** -0.5)


def init_fan_in(model, gamma=1e-12):
    for w in model.parameters():
        nn.init.normal_(w, 0.0, gamma / math.sqrt(w.shape[1]))


def init_no_sqrt(model, gamma=1e-12):
    for w in model.parameters():
        nn.init.normal_(w, 0.0, gamma / sum(w.shape))


def init_variance(model, gamma=1e-12):
    for w in model.parameters():
        nn.init.normal_(w, 0.0, gamma**2 / sum(w.shape))


def init_uniform(model, gamma=1e-12):
    for w in model.parameters():
        bound = math.sqrt(3) * gamma / math.sqrt(sum(w.shape))
        nn.init.uniform_(w, -bound, bound)


def init_first_layer_only(model, gamma=1e-12):
    w = next(iter(model.parameters()))
    nn.init.normal_(w, 0.0, gamma / math.sqrt(sum(w.shape)))


def init_not_in_place(model, gamma=1e-12):
    return [torch.randn(w.shape) * gamma / math.sqrt(sum(w.shape)) for w in model.parameters()]


def init_replaces_parameter(model, gamma=1e-12):
    for module in (model.in_hid, model.hid_out):
        n_out, n_in = module.weight.shape
        module.weight = nn.Parameter(torch.randn(n_out, n_in) * gamma / math.sqrt(n_in + n_out))


def init_ignores_gamma(model, gamma=1e-12):
    for w in model.parameters():
        nn.init.normal_(w, 0.0, 1.0 / math.sqrt(sum(w.shape)))


def _w_tot(model, in_dim):
    w_tot = torch.eye(in_dim)
    for w in model.parameters():
        w_tot = w @ w_tot
    return w_tot


def svd_reference(model, in_dim):
    u, s, vh = torch.linalg.svd(_w_tot(model, in_dim).detach(), full_matrices=False)
    return u, s, vh.mT


def svd_legacy_torch_svd(model, in_dim):
    return torch.svd(_w_tot(model, in_dim))  # V, not Vh; reduced


def svd_flipped_signs(model, in_dim):
    u, s, v = svd_reference(model, in_dim)
    signs = torch.tensor([(-1.0) ** i for i in range(s.shape[0])])
    return u * signs, s, v * signs


def svd_full_matrices(model, in_dim):
    u, s, vh = torch.linalg.svd(_w_tot(model, in_dim))  # full U, which the text forbids
    return u, s, vh.T


def svd_float64(model, in_dim):
    u, s, vh = torch.linalg.svd(_w_tot(model, in_dim).double(), full_matrices=False)
    return u, s, vh.T


def svd_float64_identity(model, in_dim):
    w_tot = torch.eye(in_dim, dtype=torch.float64)
    for w in model.parameters():
        w_tot = w @ w_tot  # float32 @ float64: torch refuses
    u, s, vh = torch.linalg.svd(w_tot, full_matrices=False)
    return u, s, vh.T


def svd_numpy_round_trip(model, in_dim):
    """Through NumPy and back: float32 stays float32, so this is within the contract."""
    u, s, vh = np.linalg.svd(_w_tot(model, in_dim).detach().numpy(), full_matrices=False)
    return torch.from_numpy(u), torch.from_numpy(s), torch.from_numpy(vh.T.copy())


def svd_returns_vh(model, in_dim):
    return tuple(torch.linalg.svd(_w_tot(model, in_dim), full_matrices=False))


def svd_wrong_order(model, in_dim):
    w_tot = torch.eye(in_dim)
    for w in model.parameters():
        w_tot = w_tot @ w
    u, s, vh = torch.linalg.svd(w_tot, full_matrices=False)
    return u, s, vh.T


def svd_last_layer_only(model, in_dim):
    w_tot = torch.eye(in_dim)
    for w in model.parameters():
        w_tot = w.detach()
    u, s, vh = torch.linalg.svd(w_tot, full_matrices=False)
    return u, s, vh.T


def svd_transposed(model, in_dim):
    u, s, vh = torch.linalg.svd(_w_tot(model, in_dim).T, full_matrices=False)
    return u, s, vh.T


def svd_diag_sigma(model, in_dim):
    u, s, v = svd_reference(model, in_dim)
    return u, torch.diag(s), v


def svd_numpy(model, in_dim):
    u, s, vh = np.linalg.svd(_w_tot(model, in_dim).detach().numpy(), full_matrices=False)
    return u, s, vh.T


def svd_one_flip_unpaired(model, in_dim):
    u, s, v = svd_reference(model, in_dim)
    u = u.clone()
    u[:, 0] *= -1
    return u, s, v


def rsm_reference(h):
    return h @ h.T


def rsm_einsum(h):
    return torch.einsum("id,jd->ij", h, h)


def rsm_mm(h):
    return torch.mm(h, h.t())


def rsm_gram(h):
    return h.T @ h


def rsm_cosine(h):
    hn = h / h.norm(dim=1, keepdim=True)
    return hn @ hn.T


def rsm_mean(h):
    return h @ h.T / h.shape[1]


def rsm_centred(h):
    c = h - h.mean(dim=1, keepdim=True)
    return c @ c.T


def rsm_in_place(h):
    h.mul_(1.0)
    h += 0.0
    h[0, 0] = 0.0
    return h @ h.T


def lr_reference(X, Y):
    return np.linalg.solve(X @ X.T, X @ Y.T).T


def lr_inverse(X, Y):
    return Y @ X.T @ np.linalg.inv(X @ X.T)


def lr_lstsq(X, Y):
    return np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T


def lr_solve_transposed(X, Y):
    return np.linalg.solve(X @ X.T, X @ Y.T).T


def lr_inverse_torch(X, Y):
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    return Y @ X.T @ torch.linalg.inv(X @ X.T)


def lr_float32(X, Y):
    return (Y @ X.T @ np.linalg.inv(X @ X.T)).astype(np.float32)


def lr_no_inverse(X, Y):
    return Y @ X.T


def lr_transposed(X, Y):
    return (Y @ X.T @ np.linalg.inv(X @ X.T)).T


def lr_wrong_gram(X, Y):
    return Y @ X.T @ np.linalg.inv(X.T @ X)


def lr_list(X, Y):
    return (Y @ X.T @ np.linalg.inv(X @ X.T)).tolist()


def lr_rounded(X, Y):
    return np.round(Y @ X.T @ np.linalg.inv(X @ X.T))


# ------------------------------------------------------------------------------------------ tests

CORRECT = [
    (check_initializer, f) for f in (init_reference, init_tensor_method, init_copy_randn)
] + [
    (check_net_svd, f)
    for f in (svd_reference, svd_legacy_torch_svd, svd_flipped_signs, svd_numpy_round_trip)
] + [
    (check_net_rsm, f) for f in (rsm_reference, rsm_einsum, rsm_mm)
] + [
    (check_linear_regression, f) for f in (lr_reference, lr_inverse, lr_solve_transposed)
]

HIDDEN_SETTINGS = {
    check_initializer: [{}, {"seed": 7, "dims": (64, 500, 90), "gamma": 0.7},
                        {"seed": 11, "dims": (400, 50, 250), "gamma": 4.0}],
    check_net_svd: [{}, {"seed": 3, "dims": (6, 6, 6)}, {"seed": 5, "dims": (12, 7, 40)},
                    {"seed": 9, "dims": (20, 25, 5)}],
    check_net_rsm: [{}, {"seed": 4, "shape": (12, 12)}, {"seed": 8, "shape": (30, 5)},
                    {"seed": 1, "shape": (1, 9)}],
    check_linear_regression: [{}, {"seed": 6, "shapes": (5, 5, 50)},
                              {"seed": 12, "shapes": (2, 7, 9)}],
}


@pytest.mark.parametrize(("check", "answer"), CORRECT, ids=lambda x: getattr(x, "__name__", x))
def test_correct_answers_pass_every_setting(check, answer):
    for settings in HIDDEN_SETTINGS[check]:
        summary = check(answer, **settings)
        assert "is correct" in summary


WRONG = [
    (check_initializer, init_fan_in, {}, "sqrt(n_in) only"),
    (check_initializer, init_no_sqrt, {}, "forgot the square root"),
    (check_initializer, init_variance, {}, "variance"),
    (check_initializer, init_uniform, {}, "uniform distribution gives 57.7%"),
    (check_initializer, init_first_layer_only, {}, "did not change the weight 'hid_out.weight'"),
    (check_initializer, init_not_in_place, {}, "It returned a value, but the model itself"),
    (check_initializer, init_replaces_parameter, {}, "replaced the parameter"),
    (check_initializer, init_ignores_gamma, {}, "γ is missing"),
    (check_net_svd, svd_returns_vh, {}, "you returned Vh"),
    (check_net_svd, svd_returns_vh, {"dims": (5, 9, 40)}, "you returned Vh"),
    (check_net_svd, svd_wrong_order, {}, "shapes cannot be multiplied"),
    (check_net_svd, svd_wrong_order, {"seed": 3, "dims": (6, 6, 6)}, "wrong order"),
    (check_net_svd, svd_last_layer_only, {}, "only the last layer"),
    (check_net_svd, svd_transposed, {}, "you decomposed W_totᵀ"),
    (check_net_svd, svd_diag_sigma, {}, "not as a diagonal matrix"),
    (check_net_svd, svd_numpy, {}, "U is a np.ndarray of dtype float32 and shape (100, 8); it "
                                   "should be a torch.Tensor of dtype torch.float32"),
    (check_net_svd, svd_full_matrices, {}, "U has shape (100, 100); it should have shape (100, 8) = "
                                           "(out_dim, k) with k = min(in_dim, out_dim): that is the "
                                           "full U of full_matrices=True"),
    (check_net_svd, svd_full_matrices, {"seed": 9, "dims": (20, 25, 5)},
     "V has shape (20, 20); it should have shape (20, 5)"),
    (check_net_svd, svd_float64, {}, "U has dtype torch.float64; it should be torch.float32 (the "
                                     "dtype of the network's weights)"),
    (check_net_svd, svd_float64_identity, {}, "Two tensors of different dtypes met (float32 and "
                                              "float64)"),
    (check_net_svd, svd_one_flip_unpaired, {}, "flip its partner"),
    (check_net_rsm, rsm_gram, {}, "The RSM has shape (17, 17); it should have shape (7, 7) = "
                                  "(n_items, n_items): that is hidden × hidden, Hᵀ H"),
    (check_net_rsm, rsm_gram, {"seed": 4, "shape": (12, 12)}, "you computed Hᵀ H"),
    (check_net_rsm, rsm_cosine, {}, "cosine similarity"),
    (check_net_rsm, rsm_mean, {}, "divided by the number of hidden units"),
    (check_net_rsm, rsm_centred, {}, "you centred the activity"),
    (check_net_rsm, rsm_in_place, {}, "modified its input h in place"),
    (check_linear_regression, lr_no_inverse, {}, "the inverse (X Xᵀ)⁻¹ is missing"),
    (check_linear_regression, lr_transposed, {}, "you returned Wᵀ"),
    (check_linear_regression, lr_transposed, {"seed": 6, "shapes": (5, 5, 50)}, "you returned Wᵀ"),
    (check_linear_regression, lr_wrong_gram, {}, "X Xᵀ is (M, M)"),  # numpy's error + hint
    (check_linear_regression, lr_list, {}, "W is a list of 4 items; it should be a np.ndarray of "
                                           "dtype float64 and shape (4, 3)"),
    (check_linear_regression, lr_inverse_torch, {}, "W is a torch.Tensor of dtype torch.float64 and "
                                                 "shape (4, 3); it should be a np.ndarray of dtype "
                                                 "float64 and shape (4, 3)"),
    (check_linear_regression, lr_float32, {}, "W has dtype float32; it should be float64"),
    (check_linear_regression, lr_rounded, {}, "you rounded W"),
    (check_linear_regression, lr_lstsq, {}, "linear_regression uses numpy.linalg.lstsq: the exercise "
                                           "is to solve the normal equations yourself"),
]


@pytest.mark.parametrize(
    ("check", "answer", "settings", "message"), WRONG,
    ids=[f"{w[1].__name__}-{i}" for i, w in enumerate(WRONG)],
)
def test_wrong_answers_fail_with_specific_message(check, answer, settings, message):
    with pytest.raises(CheckFailure) as info:
        check(answer, **settings)
    assert not isinstance(info.value, NotImplementedYet)
    assert message in str(info.value)
    assert "Faulty implementation" not in str(info.value)


@pytest.mark.parametrize("check", list(HIDDEN_SETTINGS))
def test_unimplemented_exercise_says_not_implemented(check, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(NotImplementedYet, match="not implemented yet"):
        check(stub)
    assert not self_check(check, stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_students_own_error_is_shown_not_hidden(capsys):
    def buggy(model, in_dim):
        return torch.linalg.svd(torch.eye(in_dim) @ next(model.parameters()))

    with pytest.raises(CheckFailure) as info:
        check_net_svd(buggy)
    assert isinstance(info.value.__cause__, RuntimeError)  # chained: the traceback stays visible
    assert "ex_net_svd raised RuntimeError" in str(info.value)
    assert not self_check(check_net_svd, buggy)
    out = capsys.readouterr().out
    assert "The error raised by your code" in out and "Traceback" in out and "in buggy" in out


@pytest.mark.parametrize(("check", "answer"), CORRECT[:1] + CORRECT[3:4] + CORRECT[7:8]
                         + CORRECT[10:11])
def test_correct_answer_writes_nothing_to_stderr(check, answer, capfd):
    assert self_check(check, answer)
    captured = capfd.readouterr()
    assert captured.err == ""
    assert "✅" in captured.out


# ------------------------------------------------------------------------------- against tricks


class LyingTensor(torch.Tensor):
    def __eq__(self, other):  # noqa: D105
        return True

    def __bool__(self):  # noqa: D105
        return True


class Liar:
    def __eq__(self, other):  # noqa: D105
        return True

    def __bool__(self):  # noqa: D105
        return True

    shape = (7, 7)


def test_tensor_subclass_with_lying_eq_is_rejected():
    def tricky(h):
        return torch.zeros(h.shape[0], h.shape[0]).as_subclass(LyingTensor)

    with pytest.raises(CheckFailure, match=r"LyingTensor \(a subclass of torch.Tensor\); it should be "
                       "a torch.Tensor"):
        check_net_rsm(tricky)


def test_non_tensor_lying_object_is_rejected():
    with pytest.raises(CheckFailure, match="should be a torch.Tensor"):
        check_net_rsm(lambda h: Liar())
    with pytest.raises(CheckFailure, match="should return the tuple"):
        check_net_svd(lambda model, in_dim: Liar())


def test_tuple_subclass_cannot_lie_about_its_items():
    class LyingTuple(tuple):
        def __getitem__(self, i):  # noqa: D105
            raise AssertionError("must not be called")

        def __len__(self):  # noqa: D105
            return 3

    def tricky(model, in_dim):
        return LyingTuple(svd_reference(model, in_dim))

    assert "is correct" in check_net_svd(tricky)


def test_monkeypatched_comparisons_do_not_help(monkeypatch):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "isclose", lambda *a, **k: torch.tensor(True))
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    with pytest.raises(CheckFailure):
        check_net_rsm(rsm_cosine)
    with pytest.raises(CheckFailure):
        check_linear_regression(lr_no_inverse)


def test_nan_answers_are_rejected():
    with pytest.raises(CheckFailure, match="NaN"):
        check_net_rsm(lambda h: torch.full((h.shape[0], h.shape[0]), float("nan")))


def test_check_does_not_disturb_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check_initializer(init_reference)
    assert torch.equal(torch.rand(3), expected)


def test_self_check_verdict_is_truthy_and_silent_in_ipython(capsys):
    verdict = self_check(check_net_rsm, rsm_reference)
    assert verdict and not self_check(check_net_rsm, rsm_gram)
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(verdict)
    assert data == {}  # nothing is displayed after the printed verdict


def test_float64_in_net_svd_names_the_dtype_not_the_order_of_multiplication():
    with pytest.raises(CheckFailure) as info:
        check_net_svd(svd_float64_identity)
    message = str(info.value)
    assert "float32 != double" in message or "float != double" in message  # torch's own words
    assert "different dtypes" in message
    assert "from the left" not in message  # the order of multiplication is right


def test_wrong_order_of_multiplication_still_gets_the_order_hint():
    with pytest.raises(CheckFailure) as info:
        check_net_svd(svd_wrong_order)
    assert "from the left: W_tot = weight @ W_tot" in str(info.value)
    assert "dtype" not in str(info.value)


# ------------------------------------------------------------- shipped and live expected values


@pytest.mark.parametrize("check", [check_net_svd, check_net_rsm, check_linear_regression],
                         ids=lambda c: c.__name__)
def test_shipped_values_are_those_the_reference_computes_now(check):
    name = check.__name__
    settings = {k: v.default for k, v in inspect.signature(check).parameters.items()
                if v.kind is inspect.Parameter.KEYWORD_ONLY and k != "name"}
    with _expected.shipped_only():
        shipped = _expected.expected(name, **settings)
    with _expected.live_only():
        live = _expected.expected(name, **settings)
    assert shipped.keys() == live.keys()
    for key, value in live.items():
        if value is None:
            assert shipped[key] is None, key
            continue
        # floats differ in the last bits across CPUs and BLAS: the shipped values' tolerance
        scale = max(float(np.abs(np.asarray(value, dtype=np.float64)).max(initial=0.0)), 1.0)
        assert np.shape(shipped[key]) == np.shape(value), key
        assert np.allclose(shipped[key], value, rtol=0, atol=shipped_values.RTOL * scale), key


ANSWERS = {check_net_svd: svd_reference, check_net_rsm: rsm_reference,
           check_linear_regression: lr_reference}


@pytest.mark.parametrize("check", list(ANSWERS), ids=lambda c: c.__name__)
def test_hidden_settings_are_left_to_the_grader_after_the_student_ran(check):
    calls = []

    def counted(*args):
        calls.append(1)
        return ANSWERS[check](*args)

    hidden = HIDDEN_SETTINGS[check][1]
    with _expected.shipped_only(), pytest.raises(ReferenceUnavailable, match="judged by the course's "
                                                                             "grader"):
        check(counted, **hidden)
    assert calls == [1]  # the student's code ran first (the grader records it, then replays)
    with _expected.live_only():  # the instructor's side computes them
        assert "is correct" in check(ANSWERS[check], **hidden)


def test_the_initializer_check_needs_no_expected_values(monkeypatch):
    def unavailable(*args, **kwargs):
        raise AssertionError("check_initializer asked for expected values")

    monkeypatch.setattr("dlnn_helpers.checks.deep_linear.expected", unavailable)
    for settings in HIDDEN_SETTINGS[check_initializer]:
        assert "is correct" in check_initializer(init_reference, **settings)


def test_the_reference_module_answers_every_t1_check():
    for check in HIDDEN_SETTINGS:
        assert "is correct" in check(dlnn_reference.answer(check.__name__))


# ================================================================================================
# Cheating answers (were test_cheating_deep_linear.py):
# Cheating answers to tutorial 1's exercises, each refused by the self-check with its
# message.
# ================================================================================================

SHIPPED = _expected.SHIPPED / "deep_linear.json"
LSTSQ = "linear_regression uses {}: the exercise is to solve the normal equations yourself"
READS = ("{} reads the course's expected answers (the data the self-check compares with): the "
         "exercise is to compute them yourself")
RSM_KEY = _expected.settings_key("check_net_rsm", {"seed": 2021, "shape": (7, 17)})
LR_KEY = _expected.settings_key("check_linear_regression", {"seed": 2021, "shapes": (3, 4, 37)})


# ------------------------------------------------------------------------- lstsq, however reached


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
    for module in (dlnn, dlnn.deep_linear_nets, dlnn.widgets, dlnn.deep_linear_plots, dlnn.deep_linear_data):
        assert not hasattr(module, name), (module.__name__, name)


def test_the_stand_in_initialisation_is_not_an_answer():
    with pytest.raises(CheckFailure, match=r"should have σ = γ / sqrt\(n_in \+ n_out\)"):
        check_initializer(dlnn.default_init_)


def test_the_package_trains_nothing_itself_its_widgets_run_the_notebooks_loop():
    """No loop of the package computes W_tot or an RSM: the widgets call what the notebook gives."""
    assert not hasattr(dlnn, "train") and not hasattr(dlnn.deep_linear_nets, "train")
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
    from autograder.grading.judge.shortcuts import find

    assert find("W = Y @ np.linalg.pinv(X)", ("lstsq",)) == [("lstsq", "np.linalg.pinv")]
    assert find("pinv = np.linalg.inv(X @ X.T)\nW = Y @ X.T @ pinv", ("lstsq",)) == []
    assert find("w = torch.linalg.multi_dot(ws)", ("multi_dot",)) == [
        ("multi_dot", "torch.linalg.multi_dot")]
    assert find("return torch.inner(h, h)", ("torch.inner",)) == [("torch.inner", "torch.inner")]
    assert find("inner = h @ h.T\nreturn inner", ("torch.inner",)) == []
